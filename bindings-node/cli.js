#!/usr/bin/env node
// The `zeroimage` command: the same CLI as the Rust binary and `python -m zeroimage`.
'use strict'

const { runCli } = require('./native.js')

// Ctrl-C cancels a running build (nothing is written, exit code 1) instead of killing the process
// and leaving temporary files; a second Ctrl-C falls through to Node's default and exits at once.
const controller = new AbortController()
process.once('SIGINT', () => controller.abort())

runCli(process.argv.slice(2), controller.signal).then(
  (code) => {
    process.exitCode = code
  },
  (err) => {
    console.error(`error: ${err && err.message ? err.message : err}`)
    process.exitCode = 1
  },
)
