#!/usr/bin/env bash
# Benchmark: zeroimage against the tools users would pick instead, on programs that compress
# like real binaries. Prints one table; `--record` also writes it to bench/RESULTS.md.
#
#   bench/run.sh                 64 MiB, 512 MiB and 0.75 MiB programs, 5 interleaved runs
#   bench/run.sh --quick         a small input, 1 run, only the tools present: proves it works
#   bench/run.sh --runs 7 --record
#   bench/run.sh --sizes "64"    only these program sizes (MiB), besides the 0.75 MiB one
#   bench/run.sh --no-install    do not apt-get / npm install missing peers
#
# Environment: BENCH_DIR (work directory, default ${TMPDIR:-/tmp}/zeroimage-bench),
# ZEROIMAGE (a zeroimage binary; default: cargo build --release here).
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$(dirname "$here")"
quick=0 runs=5 record=0 install=1 sizes_arg=""
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) quick=1; runs=1 ;;
    --runs) runs="$2"; shift ;;
    --sizes) sizes_arg="$2"; shift ;;
    --record) record=1 ;;
    --no-install) install=0 ;;
    -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
  shift
done

work="${BENCH_DIR:-${TMPDIR:-/tmp}/zeroimage-bench}"
mkdir -p "$work"
say() { echo "bench: $*" >&2; }

# --- peers -----------------------------------------------------------------------------
if [ "$install" = 1 ] && [ "$quick" = 0 ]; then
  missing=()
  for pair in umoci:umoci skopeo:skopeo pigz:pigz zstd:zstd buildah:buildah gcc:gcc /usr/bin/time:time; do
    command -v "${pair%%:*}" >/dev/null || missing+=("${pair#*:}")
  done
  if [ ${#missing[@]} -gt 0 ] && command -v apt-get >/dev/null; then
    say "installing ${missing[*]}"
    SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq || true
    for pkg in "${missing[@]}"; do
      $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$pkg" >/dev/null || say "could not install $pkg"
    done
  fi
  if [ ! -x "$work/node_modules/.bin/containerify" ] && command -v npm >/dev/null; then
    say "installing containerify from npm"
    (cd "$work" && timeout 120 npm install --no-audit --no-fund --silent containerify >/dev/null 2>&1) \
      || say "containerify not installable; skipped"
  fi
fi
for tool in tar gzip sha256sum gcc python3 /usr/bin/time; do
  command -v "$tool" >/dev/null || { echo "bench: $tool is required" >&2; exit 1; }
done

# --- zeroimage -------------------------------------------------------------------------
if [ -z "${ZEROIMAGE:-}" ]; then
  say "building zeroimage (release)"
  cargo build --release --quiet -p zeroimage --manifest-path "$root/Cargo.toml"
  ZEROIMAGE="$(cargo metadata --format-version 1 --no-deps --manifest-path "$root/Cargo.toml" \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')/release/zeroimage"
fi
"$ZEROIMAGE" --version >/dev/null

# --- inputs ----------------------------------------------------------------------------
# hello: a static C program (0.75 MiB, the common small service); progN: hello followed by the
# ELF files of /usr/bin and /usr/lib in sorted order, cut to N MiB (compresses ~2.6x with gzip -6).
cd "$work"
if [ ! -x hello ]; then
  printf '#include <stdio.h>\nint main(void) { puts("hello from zeroimage"); return 0; }\n' > hello.c
  gcc -static -O2 -o hello hello.c
fi
if [ -n "$sizes_arg" ]; then read -r -a sizes <<< "$sizes_arg"
elif [ "$quick" = 1 ]; then sizes=(8); else sizes=(64 512); fi
for mib in "${sizes[@]}"; do
  [ -x "prog$mib" ] && [ "$(stat -c %s "prog$mib")" = $((mib << 20)) ] || {
    say "making prog$mib"
    python3 "$here/mkinput.py" hello $((mib << 20)) "prog$mib"
  }
done

# --- cases -----------------------------------------------------------------------------
cases="$work/cases.tsv"
: > "$cases"
add() { # name label input reference prep cmd size-kind size-arg
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$@" >> "$cases"
}
has() { command -v "$1" >/dev/null; }
umoci_cmd() { # program → an OCI archive, the way a umoci user would
  echo "umoci init --layout u-$1 && umoci new --image u-$1:latest && umoci insert --image u-$1:latest $1 /$1 && umoci config --image u-$1:latest --config.entrypoint /$1 && skopeo copy -q oci:u-$1:latest oci-archive:u-$1.tar"
}
buildah_cmd() {
  local b="buildah --root $work/buildah-root --runroot $work/buildah-run --storage-driver vfs"
  echo "c=\$($b from scratch) && $b copy \$c $1 /$1 && $b config --entrypoint '[\"/$1\"]' \$c && $b commit -q --disable-compression=false \$c oci-archive:b-$1.tar && $b rm \$c >/dev/null"
}
# containerify needs its base from a registry: a private docker-registry on loopback serving a
# 1-file base image (a tiny static program), stopped by PID on exit.
containerify=""
if [ -x "$work/node_modules/.bin/containerify" ] && has docker-registry && has skopeo; then
  port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
  rm -rf "$work/registry" && mkdir -p "$work/registry" "$work/capp"
  printf 'version: 0.1\nstorage: {filesystem: {rootdirectory: %s}}\nhttp: {addr: "127.0.0.1:%s"}\n' \
    "$work/registry/data" "$port" > "$work/registry/config.yml"
  docker-registry serve "$work/registry/config.yml" > "$work/registry/log" 2>&1 &
  registry_pid=$!
  trap 'kill "$registry_pid" 2>/dev/null || true' EXIT
  printf 'void _start(void) { __asm__ volatile ("mov $60, %%eax\\n xor %%edi, %%edi\\n syscall"); }\n' > tiny.c
  gcc -static -nostdlib -O2 -o tiny tiny.c
  "$ZEROIMAGE" build tiny -o tiny.tar -q >/dev/null
  for _ in $(seq 50); do
    skopeo copy -q --dest-tls-verify=false oci-archive:tiny.tar "docker://127.0.0.1:$port/base:1" 2>/dev/null && break
    sleep 0.1
  done
  echo '{"name": "bench", "version": "1.0.0"}' > "$work/capp/package.json"
  containerify="$work/node_modules/.bin/containerify --fromRegistry http://127.0.0.1:$port/v2/ --fromImage base:1 --toImage out:1 --folder $work/capp --layerCacheFolder $work/ccache"
fi

for prog in "${sizes[@]/#/prog}" hello; do
  case "$prog" in hello) input="hello (0.73 MiB static)" ;; *) input="${prog#prog} MiB" ;; esac
  ref="pipeline-$prog"
  add "$ref" 'tar -c | gzip -6 | sha256sum' "$input" "$ref" "" \
    "tar -c $prog | gzip -6 | sha256sum" cmd "tar -c $prog | gzip -6 | wc -c"
  add "zeroimage-$prog" "zeroimage build" "$input" "$ref" "rm -f z-$prog.tar" \
    "$ZEROIMAGE build $prog -o z-$prog.tar -q" archive "z-$prog.tar"
  if [ "$prog" != hello ] || [ "$quick" = 1 ]; then
    add "zeroimage-l1-$prog" "zeroimage build --compression-level 1" "$input" "$ref" "rm -f z1-$prog.tar" \
      "$ZEROIMAGE build $prog -o z1-$prog.tar -q --compression-level 1" archive "z1-$prog.tar"
    add "zeroimage-j1-$prog" "zeroimage build --jobs 1" "$input" "$ref" "rm -f zj-$prog.tar" \
      "$ZEROIMAGE build $prog -o zj-$prog.tar -q --jobs 1" archive "zj-$prog.tar"
  fi
  has pigz && add "pigz-$prog" 'tar -c | pigz -6 -p2 | sha256sum' "$input" "$ref" "" \
    "tar -c $prog | pigz -6 -p2 | sha256sum" cmd "tar -c $prog | pigz -6 -p2 | wc -c"
  has umoci && has skopeo && add "umoci-$prog" "umoci + skopeo" "$input" "$ref" "rm -rf u-$prog u-$prog.tar" \
    "$(umoci_cmd "$prog")" archive "u-$prog.tar"
  if [ -n "$containerify" ] && [ "$prog" != prog512 ]; then
    ln -f "$prog" "capp/$prog"
    add "containerify-$prog" "containerify" "$input" "$ref" "rm -f c-$prog.tar" \
      "$containerify --customContent $prog,/$prog --entrypoint /$prog --toTar c-$prog.tar" archive "c-$prog.tar"
  fi
  if has buildah && [ "$prog" != prog512 ]; then
    add "buildah-$prog" "buildah (gzip)" "$input" "$ref" "rm -f b-$prog.tar" "$(buildah_cmd "$prog")" \
      archive "b-$prog.tar"
  fi
done

# Multi-platform: two programs of the first size (amd64 + arm64, same file name) make one index
# in one build, against one build of one program of that size. The work doubles; on 2 cores the
# two layers compress concurrently, so the target is at most 2.0x ("wall / ref").
if has aarch64-linux-gnu-gcc; then
  mib=${sizes[0]}
  mkdir -p amd64 arm64
  [ -x arm64/hello ] || aarch64-linux-gnu-gcc -static -O2 -o arm64/hello hello.c
  [ -s arm64/prog$mib ] || python3 "$here/mkinput.py" arm64/hello $((mib << 20)) "arm64/prog$mib"
  ln -f "prog$mib" "amd64/prog$mib"
  add "zeroimage-multi-prog$mib" "zeroimage build (amd64 + arm64, one index)" "2 x $mib MiB" \
    "zeroimage-prog$mib" "rm -f zm-$mib.tar" \
    "$ZEROIMAGE build amd64/prog$mib arm64/prog$mib -o zm-$mib.tar -q" archive "zm-$mib.tar"
else
  say "aarch64-linux-gnu-gcc missing: the multi-platform case is skipped (scripts/install-test-deps.sh installs it)"
fi

# Extending a base from an OCI archive: base layers pass through untouched, so the cost should be
# a file copy of the base blobs plus our own layer. References: `cp` of the base archive (with
# `sync` of the copy, since zeroimage fsyncs its output before renaming it into place, and
# without) followed by a FROM-scratch build of the same program.
if [ "$quick" = 1 ]; then base_mib=8; else base_mib=256; fi
if [ ! -s "base$base_mib.tar" ]; then
  [ -s "prog$base_mib" ] || python3 "$here/mkinput.py" hello $((base_mib << 20)) "prog$base_mib"
  "$ZEROIMAGE" build "prog$base_mib" -o "base$base_mib.tar" -q >/dev/null
fi
base_blobs="$(python3 -c 'import sys, tarfile; print(round(sum(m.size for m in tarfile.open(sys.argv[1]) if m.name.startswith("blobs/")) / 1e6))' "base$base_mib.tar")"
input="hello on a ${base_blobs} MB base"
add "cp-base" "cp base archive + sync + build (scratch)" "$input" "cp-base" "rm -f cpb.tar zh.tar" \
  "cp base$base_mib.tar cpb.tar && sync cpb.tar && $ZEROIMAGE build hello -o zh.tar -q" archive "cpb.tar"
add "cp-base-nosync" "cp base archive + build (scratch), no sync" "$input" "cp-base" "rm -f cpb.tar zh.tar" \
  "cp base$base_mib.tar cpb.tar && $ZEROIMAGE build hello -o zh.tar -q" archive "cpb.tar"
add "zeroimage-extend" "zeroimage build --from oci-archive:base.tar" "$input" "cp-base" "rm -f ze.tar" \
  "$ZEROIMAGE build hello --from oci-archive:base$base_mib.tar -o ze.tar -q" archive "ze.tar"

# --bundle-libs: a dynamically linked program the size of a PyInstaller one-file program
# (17 MiB: a small C program using zlib, padded like the programs above), built on builtin:static
# with its loader and libraries bundled (libz, libc and glibc's companions: ~3 MB), against the
# same build with --allow-dynamic. Its "wall / pipeline" column is that ratio (target <= 1.3).
if [ "$quick" = 1 ]; then dyn_mib=4; else dyn_mib=17; fi
if [ ! -s "dyn$dyn_mib" ]; then
  printf '#include <stdio.h>\n#include <zlib.h>\nint main(void) { printf("zlib %%s\\n", zlibVersion()); return 0; }\n' > dyn.c
  gcc -O2 -o dynhead dyn.c -lz
  python3 "$here/mkinput.py" dynhead $((dyn_mib << 20)) "dyn$dyn_mib"
fi
input="dynamic, $dyn_mib MiB + libz, libc"
add "zeroimage-allow-dynamic" "zeroimage build --from builtin:static --allow-dynamic" "$input" \
  "zeroimage-allow-dynamic" "rm -f zad.tar" \
  "$ZEROIMAGE build dyn$dyn_mib --from builtin:static --allow-dynamic -o zad.tar -q" archive "zad.tar"
add "zeroimage-bundle-libs" "zeroimage build --from builtin:static --bundle-libs (/ --allow-dynamic)" "$input" \
  "zeroimage-allow-dynamic" "rm -f zbl.tar" \
  "$ZEROIMAGE build dyn$dyn_mib --from builtin:static --bundle-libs -o zbl.tar -q" archive "zbl.tar"

# The same with a real PyInstaller one-file program (Python's ssl and zoneinfo inside), when
# PyInstaller can be installed into a venv here (pip, from PyPI; not in --quick mode).
if [ "$quick" = 0 ] && [ ! -x pyi/dist/app ]; then
  if [ ! -x pyi-venv/bin/pyinstaller ] && [ "$install" = 1 ]; then
    say "installing PyInstaller into $work/pyi-venv"
    { python3 -m venv pyi-venv && pyi-venv/bin/pip install -q pyinstaller; } >/dev/null 2>&1 \
      || say "PyInstaller not installable; its case is skipped"
  fi
  if [ -x pyi-venv/bin/pyinstaller ]; then
    mkdir -p pyi
    printf 'import ssl, zoneinfo\nprint(ssl.OPENSSL_VERSION, zoneinfo.ZoneInfo("Europe/Paris"))\n' > pyi/app.py
    (cd pyi && ../pyi-venv/bin/pyinstaller --onefile --noconfirm --log-level WARN app.py >/dev/null 2>&1) \
      || say "PyInstaller failed; its case is skipped"
  fi
fi
if [ -x pyi/dist/app ]; then
  input="PyInstaller one-file, $(( $(stat -c %s pyi/dist/app) >> 20 )) MiB"
  add "pyi-allow-dynamic" "zeroimage build --from builtin:static --allow-dynamic" "$input" \
    "pyi-allow-dynamic" "rm -f pad.tar" \
    "$ZEROIMAGE build pyi/dist/app --from builtin:static --allow-dynamic -o pad.tar -q" archive "pad.tar"
  add "pyi-bundle-libs" "zeroimage build --from builtin:static --bundle-libs (/ --allow-dynamic)" "$input" \
    "pyi-allow-dynamic" "rm -f pbl.tar" \
    "$ZEROIMAGE build pyi/dist/app --from builtin:static --bundle-libs -o pbl.tar -q" archive "pbl.tar"
fi

say "running $(wc -l < "$cases") cases x $runs runs in $work (load average: $(cut -d' ' -f1-3 /proc/loadavg))"
md=()
[ "$record" = 1 ] && md=(--markdown "$work/table.md")
python3 "$here/bench.py" --cases "$cases" --workdir "$work" --runs "$runs" "${md[@]}"
if [ "$record" = 1 ]; then
  {
    echo "# Benchmark results"
    echo
    echo "Produced by \`bench/run.sh --record\` (zeroimage $("$ZEROIMAGE" --version | cut -d' ' -f2)," \
      "release build). Programs: see bench/mkinput.py. \"wall / pipeline\" compares with" \
      "\`tar -c PROG | gzip -6 | sha256sum\` on the same program; \"size / gzip -6\" compares the" \
      "layer blob with that pipeline's gzip output."
    echo
    cat "$work/table.md"
  } > "$here/RESULTS.md"
  say "wrote $here/RESULTS.md"
fi
