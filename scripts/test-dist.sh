#!/usr/bin/env bash
# Test the artifacts of `make dist` the way users get them, with no Rust on PATH:
#   1. Python: the wheel into a fresh venv; the `zeroimage` script and the module build images that
#      run (umoci + runc). The sdist without cargo stops at once with our message (no toolchain
#      download); with cargo it builds.
#   2. Node: the main + linux-x64-gnu tarballs into a fresh project; `npx zeroimage` and
#      `require`/`import` build images that run. The main tarball alone fails naming the package.
#   3. The static CLI: an image of itself FROM scratch runs `zeroimage --version`, then builds an
#      image inside the container, which runs too.
#   4. `cargo publish --dry-run -p zeroimage` and actionlint on .github/workflows/release.yml.
# Usage: scripts/test-dist.sh [DIST_DIR]   (default dist/, made by `make dist`). About 6 minutes on
# the shared 2-core machine, 4 of them the sdist's Rust build.
# Needs: python3, node/npm, gcc, skopeo, umoci, runc, jq (scripts/install-test-deps.sh), cargo for
# step 4 and the sdist build, network to PyPI/npm/crates.io.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
dist=$(cd "${1:-dist}" && pwd)
version=$(sed -n '/^\[workspace.package\]/,/^\[/s/^version = "\(.*\)"/\1/p' Cargo.toml)
work=$(mktemp -d /tmp/zeroimage-test-dist.XXXXXX)
runc_root=$work/runc
cleanup() {
  # Containers are run in the foreground with --rm semantics; delete any left behind, by our root.
  for c in $(runc --root "$runc_root" list -q 2>/dev/null); do runc --root "$runc_root" delete -f "$c" || true; done
  rm -rf "$work"
}
trap cleanup EXIT
start=$(date +%s)
step() { printf '\n==> [test-dist %4ss] %s\n' "$(($(date +%s) - start))" "$*"; }
fail() { echo "test-dist: FAILED: $*" >&2; exit 1; }
passed=0
ok() { passed=$((passed + 1)); echo "  ok: $*"; }
seconds() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(seconds)" 'BEGIN { printf "%.1f", b - a }'; }

for f in "zeroimage-$version-cp310-abi3-manylinux2014_x86_64.manylinux_2_17_x86_64.whl" "zeroimage-$version.tar.gz" \
  "zeroimage-$version.tgz" "zeroimage-linux-x64-gnu-$version.tgz" zeroimage; do
  [ -e "$dist/$f" ] || fail "$dist/$f is missing: run make dist first"
done
for tool in gcc skopeo umoci runc jq; do command -v "$tool" >/dev/null || fail "$tool is missing: scripts/install-test-deps.sh"; done

# A PATH without Rust: the system directories only, then a check that cargo and rustc are gone.
norust_path=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
if PATH=$norust_path command -v cargo >/dev/null || PATH=$norust_path command -v rustc >/dev/null; then
  fail "cargo or rustc is in $norust_path: cannot test an install without Rust here"
fi

gcc -static -O2 -o "$work/hello" examples/hello/hello.c
# What examples/hello prints first, whatever the uid (builtin:static runs it as 65532).
hello_line="hello from a zeroimage container"

# run_image ARCHIVE [jq-edit of config.json]: unpack with umoci, run with runc, print stdout.
# (Each step is checked by hand: errexit does not apply inside `f || fail` or `$(f)`.)
run_image() {
  local dir
  dir=$(mktemp -d "$work/run.XXXXXX") || return 1
  skopeo copy -q "oci-archive:$1" "oci:$dir/layout:image" >/dev/null || return 1
  umoci unpack --image "$dir/layout:image" "$dir/bundle" >/dev/null || return 1
  jq ".process.terminal = false ${2:-}" "$dir/bundle/config.json" > "$dir/config.json" || return 1
  mv "$dir/config.json" "$dir/bundle/config.json" || return 1
  runc --root "$runc_root" run -b "$dir/bundle" "zeroimage-test-dist-${dir##*.}" </dev/null
}
# runs_hello ARCHIVE: the image runs examples/hello.
runs_hello() {
  local out
  out=$(run_image "$1") || { echo "  running $1 failed: $out" >&2; return 1; }
  case "$out" in "$hello_line"*) return 0 ;; esac
  echo "  the container printed: $out" >&2
  return 1
}

step "Python: the wheel into a fresh venv, no Rust on PATH"
python=$(python3 -c 'import sys; print(sys.executable)')
"$python" -m venv "$work/venv"
t=$(seconds)
PATH=$work/venv/bin:$norust_path pip install --disable-pip-version-check --progress-bar off --no-index \
  "$dist/zeroimage-$version-cp310-abi3-manylinux2014_x86_64.manylinux_2_17_x86_64.whl" >/dev/null
echo "  pip install of the wheel: $(elapsed "$t") s"
(
  cd "$work" && export PATH=$work/venv/bin:$norust_path
  [ "$(zeroimage --version)" = "zeroimage $version" ] || fail "zeroimage --version from the wheel"
  zeroimage build ./hello --from builtin:static -o py-cli.tar --quiet >/dev/null
  python -c 'import zeroimage; r = zeroimage.build_image("./hello", output="py-api.tar"); print(r.digest)' >/dev/null
)
runs_hello "$work/py-cli.tar" || fail "the image built by the wheel's CLI does not run"
runs_hello "$work/py-api.tar" || fail "the image built by zeroimage.build_image does not run"
ok "wheel installs without Rust; its CLI and build_image make images that run under runc"
wheel_files=$("$python" -m zipfile -l "$dist/zeroimage-$version-cp310-abi3-manylinux2014_x86_64.manylinux_2_17_x86_64.whl")
grep -q "dist-info/licenses/LICENSE" <<<"$wheel_files" || fail "the wheel has no LICENSE"
ok "the wheel carries LICENSE"

step "Python: the sdist without cargo stops with a message, downloads no toolchain"
"$python" -m venv "$work/venv-sdist"
export_home=$work/home && mkdir -p "$export_home"
t=$(seconds)
if HOME=$export_home PATH=$work/venv-sdist/bin:$norust_path pip install --disable-pip-version-check \
  --progress-bar off "$dist/zeroimage-$version.tar.gz" > "$work/sdist.log" 2>&1; then
  fail "the sdist installed without cargo?"
fi
grep -q "ZEROIMAGE_INSTALL_RUST=1" "$work/sdist.log" || { cat "$work/sdist.log"; fail "no zeroimage message in the sdist failure"; }
# maturin's download: pip collects puccinialin, which says "Rust not found, installing…".
if grep -qE "Collecting puccinialin|Rust not found, installing" "$work/sdist.log" || [ -e "$export_home/.cache/puccinialin" ]; then
  fail "maturin started a Rust download"
fi
ok "sdist without cargo: fails in $(elapsed "$t") s with the zeroimage message, no download"

step "Python: the sdist builds with the local Rust"
t=$(seconds)
# The workspace target dir: the registry dependencies are already built there (release profile).
CARGO_TARGET_DIR=$root/target "$work/venv-sdist/bin/pip" wheel --disable-pip-version-check --progress-bar off \
  --no-deps -w "$work/sdist-wheel" "$dist/zeroimage-$version.tar.gz" > "$work/sdist-build.log" 2>&1 \
  || { tail -30 "$work/sdist-build.log"; fail "the sdist does not build with cargo"; }
ls "$work/sdist-wheel"/zeroimage-"$version"-cp310-abi3-*.whl >/dev/null
ok "the sdist builds a wheel with cargo ($(elapsed "$t") s)"

step "Node: main + platform tarballs into a fresh project, no Rust on PATH"
project=$work/node-project
mkdir -p "$project" && cp "$work/hello" "$project/"
echo '{"name": "consumer", "version": "1.0.0", "private": true}' > "$project/package.json"
t=$(seconds)
(cd "$project" && PATH=$norust_path npm install --no-audit --no-fund \
  "$dist/zeroimage-$version.tgz" "$dist/zeroimage-linux-x64-gnu-$version.tgz") > "$work/npm-install.log" 2>&1 \
  || { cat "$work/npm-install.log"; fail "npm install of the tarballs"; }
echo "  npm install of the two tarballs: $(elapsed "$t") s (node $(node --version))"
! grep -q EBADENGINE "$work/npm-install.log" || { cat "$work/npm-install.log"; fail "npm warns EBADENGINE"; }
[ -f "$project/node_modules/zeroimage-linux-x64-gnu/zeroimage.linux-x64-gnu.node" ] || fail "the platform package is not installed"
(
  cd "$project" && export PATH=$norust_path
  [ "$(npx --no-install zeroimage --version)" = "zeroimage $version" ] || fail "npx zeroimage --version"
  npx --no-install zeroimage build ./hello --from builtin:static -o npx.tar --quiet >/dev/null
  node -e 'require("zeroimage").buildImage({ entrypoint: "./hello", output: "cjs.tar" }).then((r) => console.log(r.digest))' >/dev/null
  echo 'import { buildImage } from "zeroimage"; console.log((await buildImage({ entrypoint: "./hello", output: "esm.tar" })).digest)' > esm.mjs
  node esm.mjs >/dev/null
)
for image in npx cjs esm; do
  runs_hello "$project/$image.tar" || fail "the image built by Node ($image) does not run"
done
ok "npm tarballs install without Rust; npx, require and import make images that run under runc"

step "Node: the main tarball without its platform package names the missing package"
lonely=$work/node-lonely
mkdir -p "$lonely" && echo '{"name": "lonely", "version": "1.0.0", "private": true}' > "$lonely/package.json"
(cd "$lonely" && PATH=$norust_path npm install --no-audit --no-fund --loglevel=error --omit=optional \
  "$dist/zeroimage-$version.tgz" >/dev/null 2>&1)
[ ! -e "$lonely/node_modules/zeroimage-linux-x64-gnu" ] || fail "--omit=optional installed the addon anyway"
if (cd "$lonely" && node -e 'require("zeroimage")') > "$work/lonely.log" 2>&1; then fail "require without the addon worked?"; fi
grep -q "the package zeroimage-linux-x64-gnu@$version is not installed" "$work/lonely.log" \
  || { cat "$work/lonely.log"; fail "the loader error does not name zeroimage-linux-x64-gnu"; }
ok "the loader error names zeroimage-linux-x64-gnu@$version"

step "static CLI: an image of itself FROM scratch"
cp "$dist/zeroimage" "$work/zeroimage"
(cd "$work" && PATH=$norust_path ./zeroimage build ./zeroimage --from scratch -o self.tar --tag zeroimage:self --quiet -- --version >/dev/null)
[ "$(run_image "$work/self.tar")" = "zeroimage $version" ] || fail "the self-hosted image does not print its version"
ok "the self-hosted image runs zeroimage --version"
mkdir -p "$work/inner" && cp "$work/hello" "$work/inner/hello"
run_image "$work/self.tar" \
  "| .process.args = [\"/zeroimage\", \"build\", \"/work/hello\", \"--from\", \"builtin:static\", \"-o\", \"/work/inner.tar\", \"--quiet\"]
   | .mounts += [{\"destination\": \"/work\", \"type\": \"bind\", \"source\": \"$work/inner\", \"options\": [\"rbind\", \"rw\"]}]" >/dev/null
skopeo inspect "oci-archive:$work/inner/inner.tar" >/dev/null
runs_hello "$work/inner/inner.tar" || fail "the image built inside the container does not run"
ok "zeroimage inside its own image builds an image that runs"

step "cargo publish --dry-run -p zeroimage"
cargo publish --dry-run --locked --allow-dirty -p zeroimage > "$work/publish.log" 2>&1 \
  || { tail -30 "$work/publish.log"; fail "cargo publish --dry-run"; }
cargo package --list --allow-dirty -p zeroimage > "$work/package.list" 2>/dev/null
grep -qx README.md "$work/package.list" && grep -qx LICENSE "$work/package.list" || fail "the crate lacks README.md or LICENSE"
ok "cargo publish --dry-run passes; the crate carries README.md and LICENSE"

step "actionlint .github/workflows/release.yml"
bash scripts/actionlint.sh .github/workflows/release.yml
ok "actionlint passes on the release workflow"

step "$passed passed, 0 failed"
