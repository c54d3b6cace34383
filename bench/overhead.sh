#!/usr/bin/env bash
# Per-build overhead of the Python and Node bindings against the Rust CLI, on a 1 MiB static
# program (issue 9: ≤ 5 ms extra per build). Each front end builds the same image N times in a
# row; the figure is the median per-build wall time. The CLI pays a process start per build,
# the bindings one in-process call.
#
#   bench/overhead.sh [N]        default N=30
#
# Needs the release CLI (cargo build --release), the Python package in target/python-test-venv
# (bindings-python/scripts/test.sh makes it) and the built Node addon (bindings-node/scripts/test.sh).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(dirname "$here")"
n="${1:-30}"
work="$(mktemp -d "${TMPDIR:-/tmp}/zeroimage-overhead-XXXXXX")"
trap 'rm -rf "$work"' EXIT
cli="$root/target/release/zeroimage"
python="$root/target/python-test-venv/bin/python"
cargo build --release -q -p zeroimage --manifest-path "$root/Cargo.toml"
[ -x "$python" ] || { echo "overhead: run bindings-python/scripts/test.sh first (it makes $python)" >&2; exit 1; }
ls "$root"/bindings-node/*.node >/dev/null 2>&1 || { echo "overhead: run bindings-node/scripts/test.sh first" >&2; exit 1; }

# A 1 MiB static program: hello followed by padding bytes that compress like code.
gcc -static -O2 -o "$work/hello" "$root/examples/hello/hello.c"
python3 "$here/mkinput.py" "$work/hello" 1048576 "$work/prog"
cd "$work"

median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }

cli_ms=$(for i in $(seq "$n"); do
  s=$(date +%s%N); "$cli" build prog -o cli.tar -q >/dev/null; e=$(date +%s%N)
  echo $(( (e - s) / 1000 ))
done | median)

py_ms=$("$python" - "$n" <<'PY'
import statistics, sys, time, zeroimage
n = int(sys.argv[1])
times = []
for _ in range(n):
    s = time.perf_counter_ns(); zeroimage.build_image("prog", output="py.tar"); times.append((time.perf_counter_ns() - s) // 1000)
print(int(statistics.median(times)))
PY
)

node_ms=$(NODE_PATH="$root/bindings-node/.." node --input-type=module - "$n" <<JS
import { createRequire } from 'node:module'
const require = createRequire('$root/bindings-node/package.json')
const { buildImage } = require('$root/bindings-node/index.js')
const n = Number(process.argv[2] ?? $n)
const times = []
for (let i = 0; i < $n; i++) {
  const s = process.hrtime.bigint(); await buildImage({ entrypoint: 'prog', output: 'node.tar' })
  times.push(Number((process.hrtime.bigint() - s) / 1000n))
}
times.sort((a, b) => a - b)
console.log(times[Math.floor(times.length / 2)])
JS
)

for f in py.tar node.tar; do cmp -s cli.tar "$f" || echo "overhead: warning: $f differs from the CLI's archive (a stale build of that binding?)" >&2; done
printf '| front end | median per build (1 MiB program, %s builds) | vs CLI |\n|---|---|---|\n' "$n"
awk -v c="$cli_ms" -v p="$py_ms" -v j="$node_ms" 'BEGIN {
  printf "| Rust CLI (a process per build) | %.1f ms | |\n", c/1000
  printf "| Python build_image | %.1f ms | %+.1f ms |\n", p/1000, (p-c)/1000
  printf "| Node buildImage | %.1f ms | %+.1f ms |\n", j/1000, (j-c)/1000
}'
