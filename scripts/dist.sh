#!/usr/bin/env bash
# `make dist`: the release artifacts this machine can build, into dist/ (gitignored):
#   zeroimage-VERSION-cp310-abi3-manylinux2014_x86_64.manylinux_2_17_x86_64.whl  (abi3, glibc >= 2.17)
#   zeroimage-VERSION.tar.gz                                  the Python sdist (builds with a local Rust)
#   zeroimage-VERSION.tgz                                     the npm main package (JS + types)
#   zeroimage-linux-x64-gnu-VERSION.tgz                       its Linux x86-64 glibc >= 2.17 addon
#   zeroimage-VERSION-x86_64-unknown-linux-gnu.tar.gz, zeroimage   the static CLI (no shared libraries)
#   SHA256SUMS
# Each artifact is built once, then checked: auditwheel and objdump for the glibc floor, ldd and
# readelf for the static CLI, the npm tarballs' file lists.
#
# Needs: cargo (the host toolchain only: no `rustup target add`, no other toolchain download),
# python3 with venv, node >= 20 with npm, binutils. Build tools come from PyPI into
# target/dist-tools: maturin, ziglang (zig links against glibc 2.17 stubs), cargo-zigbuild,
# auditwheel. Three release builds (CLI, wheel, addon): about 24 minutes from a cold target/ on
# 2 busy cores (9 CPU-minutes); 35 seconds when nothing changed.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
out=${DIST_DIR:-$root/dist}
tools=$root/target/dist-tools
version=$(sed -n '/^\[workspace.package\]/,/^\[/s/^version = "\(.*\)"/\1/p' Cargo.toml)
target=x86_64-unknown-linux-gnu
start=$(date +%s)
step() { printf '\n==> [dist %4ss] %s\n' "$(($(date +%s) - start))" "$*"; }
fail() { echo "dist: $*" >&2; exit 1; }

# The newest GLIBC_x.y symbol version a shared library needs, or "none".
max_glibc() { { objdump -T "$1" | grep -o 'GLIBC_[0-9][0-9.]*' | sed 's/GLIBC_//' | sort -uV | tail -1; } || true; }
check_glibc_floor() { # FILE: no GLIBC symbol version above 2.17
  local max; max=$(max_glibc "$1")
  [ -n "$max" ] || fail "$1: no GLIBC symbol versions at all (not a glibc library?)"
  [ "$(printf '%s\n2.17\n' "$max" | sort -V | tail -1)" = 2.17 ] \
    || fail "$1 needs GLIBC_$max, above the 2.17 floor"
  echo "  $(basename "$1"): newest GLIBC symbol version $max (floor 2.17)"
}

step "build tools from PyPI into $tools"
if [ ! -x "$tools/bin/cargo-zigbuild" ] || [ ! -x "$tools/bin/maturin" ] || [ ! -x "$tools/bin/auditwheel" ]; then
  python3 -m venv "$tools"
  "$tools/bin/pip" install --disable-pip-version-check --progress-bar off \
    "maturin==1.16.0" "ziglang==0.17.1" "cargo-zigbuild==0.24.1" "auditwheel==6.8.2"
fi
# cargo-zigbuild runs `python3 -m ziglang` when zig is not on PATH: the venv's python3 has it.
export PATH="$tools/bin:$PATH"
rm -rf "$out" && mkdir -p "$out"
# npm pack skips symbolic links, so bindings-node holds a copy of LICENSE: it must stay the same.
cmp -s LICENSE bindings-node/LICENSE || fail "bindings-node/LICENSE differs from LICENSE: copy it"

step "static CLI ($target, +crt-static)"
RUSTFLAGS='-C target-feature=+crt-static' CARGO_TARGET_DIR=target/dist/cli \
  cargo build --release --locked -p zeroimage --target "$target"
cli_name=zeroimage-$version-$target
mkdir -p "target/dist/$cli_name"
strip -o "target/dist/$cli_name/zeroimage" "target/dist/cli/$target/release/zeroimage"
cp LICENSE README.md "target/dist/$cli_name/"
ldd "target/dist/$cli_name/zeroimage" 2>&1 | grep -Eq 'not a dynamic executable|statically linked' \
  || fail "the CLI is dynamically linked: $(ldd "target/dist/$cli_name/zeroimage" 2>&1)"
if readelf -lW "target/dist/$cli_name/zeroimage" | grep -q 'Requesting program interpreter' \
  || readelf -dW "target/dist/$cli_name/zeroimage" | grep -q '(NEEDED)'; then
  fail "the CLI has a program interpreter or needs shared libraries"
fi
cp "target/dist/$cli_name/zeroimage" "$out/zeroimage"
tar -C target/dist --owner=0 --group=0 --numeric-owner -czf "$out/$cli_name.tar.gz" "$cli_name"
echo "  ldd: $(ldd "$out/zeroimage" 2>&1 | xargs); $("$out/zeroimage" --version)"

step "Python: abi3 manylinux2014 wheel (maturin --zig) and sdist"
(cd bindings-python && CARGO_TARGET_DIR="$root/target/dist/wheel" maturin build --release --locked \
  --zig --compatibility manylinux2014 --target "$target" --out "$out")
(cd bindings-python && maturin sdist --out "$out")
wheel=$(ls "$out"/zeroimage-"$version"-cp310-abi3-*manylinux2014_x86_64*.whl)
auditwheel show "$wheel" | tee "target/dist/auditwheel.txt"
tr -s ' \n' '  ' < target/dist/auditwheel.txt \
  | grep -q 'is consistent with the following platform tag: "manylinux_2_17_x86_64"' \
  || fail "auditwheel does not place $wheel at manylinux_2_17 (manylinux2014)"
rm -rf target/dist/wheel-files && mkdir -p target/dist/wheel-files
python3 -m zipfile -e "$wheel" target/dist/wheel-files
check_glibc_floor target/dist/wheel-files/zeroimage/_zeroimage.abi3.so
ls target/dist/wheel-files/zeroimage-"$version".dist-info/licenses/LICENSE >/dev/null \
  || fail "the wheel lacks LICENSE"

step "Node: linux-x64-gnu addon (napi build -x: cargo-zigbuild, glibc 2.17)"
(
  cd bindings-node
  [ -d node_modules/@napi-rs/cli ] || npm ci --no-audit --no-fund --loglevel=error
  rm -rf "$root/target/dist/napi-out"
  npx napi build --platform --release -x --target "$target.2.17" \
    --target-dir "$root/target/dist/node" --output-dir "$root/target/dist/napi-out"
)
addon=target/dist/napi-out/zeroimage.linux-x64-gnu.node
check_glibc_floor "$addon"
for generated in index.js index.d.ts; do
  cmp -s "target/dist/napi-out/$generated" "bindings-node/$generated" \
    || fail "bindings-node/$generated differs from what napi build generates: rebuild and commit it"
done

step "npm tarballs: the main package (JS, types) and zeroimage-linux-x64-gnu (the addon)"
stage=target/dist/npm
rm -rf "$stage" && mkdir -p "$stage/zeroimage" "$stage/linux-x64-gnu"
(cd bindings-node && cp index.js index.mjs index.d.ts native.js cli.js README.md package.json "$root/$stage/zeroimage/")
cp LICENSE "$stage/zeroimage/"
# napi-rs's convention (what `napi pre-publish` does): the main package pulls in every platform
# package of the same version as an optional dependency; npm installs only the one whose
# os/cpu/libc fit.
node -e '
  const fs = require("fs"), path = require("path")
  const [stage, npmDir] = process.argv.slice(1)
  const file = path.join(stage, "zeroimage", "package.json")
  const pkg = JSON.parse(fs.readFileSync(file, "utf8"))
  pkg.optionalDependencies = {}
  for (const dir of fs.readdirSync(npmDir).sort()) {
    const platform = JSON.parse(fs.readFileSync(path.join(npmDir, dir, "package.json"), "utf8"))
    if (platform.version !== pkg.version) throw new Error(`${dir}: version ${platform.version}, not ${pkg.version}`)
    pkg.optionalDependencies[platform.name] = pkg.version
  }
  delete pkg.devDependencies; delete pkg.overrides; delete pkg.scripts
  fs.writeFileSync(file, JSON.stringify(pkg, null, 2) + "\n")
' "$stage" bindings-node/npm
cp bindings-node/npm/linux-x64-gnu/package.json bindings-node/npm/linux-x64-gnu/README.md LICENSE \
  "$addon" "$stage/linux-x64-gnu/"
for pkg in zeroimage linux-x64-gnu; do
  (cd "$stage/$pkg" && npm pack --silent --pack-destination "$out" >/dev/null)
done
main_files=$(tar -tzf "$out/zeroimage-$version.tgz" | sort)
platform_files=$(tar -tzf "$out/zeroimage-linux-x64-gnu-$version.tgz" | sort)
echo "  zeroimage-$version.tgz:" $main_files
echo "  zeroimage-linux-x64-gnu-$version.tgz:" $platform_files
! grep -q '\.node$' <<<"$main_files" || fail "the main npm package carries an addon"
grep -qx package/zeroimage.linux-x64-gnu.node <<<"$platform_files" || fail "the platform package lacks its addon"
grep -qx package/LICENSE <<<"$main_files" && grep -qx package/LICENSE <<<"$platform_files" \
  || fail "an npm tarball lacks LICENSE"

(cd "$out" && sha256sum -- * > SHA256SUMS)
step "done: $out"
ls -l "$out"
