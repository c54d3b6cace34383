#!/usr/bin/env bash
# The one test command (`make test`): installs what the tests need, then runs every suite.
# Works on a fresh Debian 12 machine as root, non-interactively (CI=true, no stdin).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR=${CARGO_TERM_COLOR:-never}
start=$(date +%s)
step() { printf '\n==> [%4ss] %s\n' "$(( $(date +%s) - start ))" "$*"; }

step "install test dependencies (apt packages, via scripts/install-test-deps.sh)"
bash scripts/install-test-deps.sh

step "format and lints"
cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings
RUSTDOCFLAGS="-D warnings" cargo doc --no-deps -p zeroimage

step "Rust: unit tests and real-tool integration tests"
cargo build -p zeroimage
cargo test

step "fuzzing, short pass: every saved crash replayed, each target 5 s (scripts/fuzz.sh)"
bash scripts/fuzz.sh short

if [ -f bindings-python/scripts/test.sh ]; then
  step "Python package"
  bash bindings-python/scripts/test.sh
fi

if [ -f bindings-node/scripts/test.sh ]; then
  step "Node package"
  bash bindings-node/scripts/test.sh
fi

if [ -f bench/run.sh ]; then
  step "benchmark, quick mode (proves the script works; figures are not checked)"
  bash bench/run.sh --quick
fi

step "the README's main-job command: make demo (then skopeo reads its archive)"
make demo
skopeo inspect oci-archive:target/hello.tar >/dev/null

step "the composable API's example, as its documentation runs it (then skopeo reads its archive)"
mkdir -p target/compose-assets && echo "composed" > target/compose-assets/index.html
cargo run --release -p zeroimage --example compose -- target/hello target/compose-assets target/compose.tar
skopeo inspect oci-archive:target/compose.tar >/dev/null

step "release artifacts: make dist, then install each with no Rust on PATH (scripts/test-dist.sh)"
bash scripts/dist.sh
bash scripts/test-dist.sh dist

step "all suites passed"
