#!/usr/bin/env bash
# Fuzz every parser of outside input with cargo-fuzz (libFuzzer): the targets in fuzz/.
#
#   scripts/fuzz.sh short          each target for 5 s, after replaying every saved crash
#                                  (fuzz/regressions/); `make test` runs this
#   scripts/fuzz.sh long [SECONDS] each target for SECONDS (default 1800); `make fuzz`
#   scripts/fuzz.sh run TARGET [SECONDS] [libFuzzer flags…]
#
# Stable Rust: cargo-fuzz passes the nightly-only flag -Zsanitizer=address, so this script sets
# RUSTC_BOOTSTRAP=1 for its own cargo runs (nothing else is built with it). cargo-fuzz is
# installed from crates.io into ~/.cargo/bin the first time.
#
# The committed seeds (fuzz/seeds/TARGET) are read, never written: what the fuzzer learns
# goes to target/fuzz/corpus/TARGET, crashes to target/fuzz/artifacts/TARGET/. A crash is
# fixed, then its input is saved in fuzz/regressions/TARGET/ (and gets a unit test).
set -euo pipefail
cd "$(dirname "$0")/.."

TARGETS=(reference platform option_strings manifest_json docker_manifest_json tar elf www_authenticate credentials outside_text)

export PATH="$HOME/.cargo/bin:$PATH"
if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "==> installing cargo-fuzz from crates.io (once, into ~/.cargo/bin)"
  cargo install cargo-fuzz --locked
fi
export RUSTC_BOOTSTRAP=1
ROOT=$PWD
WORK=$ROOT/target/fuzz

max_len() {
  case $1 in
    tar | docker_manifest_json | manifest_json) echo 65536 ;;
    elf) echo 16384 ;;
    *) echo 4096 ;;
  esac
}

build() {
  (cd fuzz && cargo fuzz build --release --debug-assertions "$@")
}

# run TARGET SECONDS [flags…]: fuzz one target; fails on a crash, leak, timeout or OOM.
run() {
  local target=$1 seconds=$2
  shift 2
  mkdir -p "$WORK/corpus/$target" "$WORK/artifacts/$target"
  local seeds=()
  [ -d "fuzz/seeds/$target" ] && seeds=("$ROOT/fuzz/seeds/$target")
  echo "==> fuzz $target for ${seconds}s"
  (cd fuzz && cargo fuzz run --release --debug-assertions "$target" "$WORK/corpus/$target" "${seeds[@]}" -- \
    -max_total_time="$seconds" -max_len="$(max_len "$target")" -timeout=10 -rss_limit_mb=2048 \
    -artifact_prefix="$WORK/artifacts/$target/" -print_final_stats=1 "$@") 2>&1 | tail -n 25
}

# replay TARGET: run every saved crash input once; each must now pass.
replay() {
  local target=$1 dir=fuzz/regressions/$1
  [ -d "$dir" ] || return 0
  local inputs=("$dir"/*)
  [ -e "${inputs[0]}" ] || return 0
  echo "==> replay ${#inputs[@]} saved crash input(s) of $target"
  (cd fuzz && cargo fuzz run --release --debug-assertions "$target" "${inputs[@]/#/$ROOT/}" -- -runs=1 >/dev/null 2>&1) || {
    echo "a saved crash input of $target fails again:" >&2
    (cd fuzz && cargo fuzz run --release --debug-assertions "$target" "${inputs[@]/#/$ROOT/}" -- -runs=1) >&2 || true
    exit 1
  }
}

mode=${1:-short}
case $mode in
  short)
    build
    for t in "${TARGETS[@]}"; do replay "$t"; done
    for t in "${TARGETS[@]}"; do run "$t" 5; done
    ;;
  long)
    seconds=${2:-1800}
    build
    for t in "${TARGETS[@]}"; do replay "$t"; done
    for t in "${TARGETS[@]}"; do run "$t" "$seconds"; done
    ;;
  run)
    target=${2:?usage: scripts/fuzz.sh run TARGET [SECONDS] [flags…]}
    seconds=${3:-60}
    shift 3 || shift $#
    build "$target"
    run "$target" "$seconds" "$@"
    ;;
  *)
    echo "usage: scripts/fuzz.sh short | long [SECONDS] | run TARGET [SECONDS]" >&2
    exit 2
    ;;
esac
echo "==> fuzzing: ${#TARGETS[@]} targets clean"
