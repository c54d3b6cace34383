// Every ```js snippet of this package's README and of the repository's README runs as written,
// in a fresh directory holding ./dist/server (a static program) and `zeroimage` in node_modules.
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { test } from 'node:test'
import { PACKAGE_DIR, REPO_DIR, helloFixture, jsSnippets, tempDir } from './support.mjs'

const readmes = [path.join(PACKAGE_DIR, 'README.md'), path.join(REPO_DIR, 'README.md')]

test('the package README has JS snippets', () => {
  assert.ok(jsSnippets(readmes[0]).length >= 4)
})

for (const readme of readmes) {
  jsSnippets(readme).forEach((snippet, i) => {
    test(`${path.relative(REPO_DIR, readme)} snippet ${i + 1} runs`, () => {
      const dir = tempDir('zeroimage-snippet-')
      fs.mkdirSync(path.join(dir, 'dist'))
      fs.copyFileSync(path.join(helloFixture(), 'hello'), path.join(dir, 'dist', 'server'))
      fs.copyFileSync(path.join(helloFixture(), 'hello'), path.join(dir, 'hello'))
      fs.mkdirSync(path.join(dir, 'node_modules'))
      fs.symlinkSync(PACKAGE_DIR, path.join(dir, 'node_modules', 'zeroimage'))
      const file = path.join(dir, /\brequire\(/.test(snippet) ? 'snippet.cjs' : 'snippet.mjs')
      fs.writeFileSync(file, snippet)
      const run = spawnSync(process.execPath, [file], { cwd: dir, encoding: 'utf8', timeout: 120_000 })
      assert.equal(run.status, 0, `snippet failed:\n${snippet}\nstdout: ${run.stdout}\nstderr: ${run.stderr}`)
    })
  })
}
