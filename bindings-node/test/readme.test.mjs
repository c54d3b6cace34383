// Every ```js snippet of this package's README and of the repository's README runs as written,
// in a fresh directory holding ./dist/server (a static program) and `zeroimage` in node_modules,
// with a private DOCKER_CONFIG. Snippets that name the registry `localhost:5000` run against a
// real registry from the test bed: only the port is changed to the one it got.
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { after, test } from 'node:test'
import { PACKAGE_DIR, REPO_DIR, helloFixture, jsSnippets, startRegistry, tempDir } from './support.mjs'

let registry
async function registryAddr() {
  registry ??= await startRegistry()
  return registry.info.addr
}
after(async () => registry?.stop())

const readmes = [path.join(PACKAGE_DIR, 'README.md'), path.join(REPO_DIR, 'README.md')]

test('the package README has JS snippets', () => {
  assert.ok(jsSnippets(readmes[0]).length >= 4)
})

for (const readme of readmes) {
  jsSnippets(readme).forEach((snippet, i) => {
    test(`${path.relative(REPO_DIR, readme)} snippet ${i + 1} runs`, async () => {
      const dir = tempDir('zeroimage-snippet-')
      fs.mkdirSync(path.join(dir, 'dist'))
      fs.copyFileSync(path.join(helloFixture(), 'hello'), path.join(dir, 'dist', 'server'))
      fs.copyFileSync(path.join(helloFixture(), 'hello'), path.join(dir, 'hello'))
      fs.mkdirSync(path.join(dir, 'node_modules'))
      fs.symlinkSync(PACKAGE_DIR, path.join(dir, 'node_modules', 'zeroimage'))
      const file = path.join(dir, /\brequire\(/.test(snippet) ? 'snippet.cjs' : 'snippet.mjs')
      const code = snippet.includes('localhost:5000') ? snippet.replaceAll('localhost:5000', await registryAddr()) : snippet
      fs.writeFileSync(file, code)
      const env = { ...process.env, DOCKER_CONFIG: path.join(dir, 'docker-config') }
      delete env.REGISTRY_AUTH_FILE
      delete env.XDG_RUNTIME_DIR
      const run = spawnSync(process.execPath, [file], { cwd: dir, env, encoding: 'utf8', timeout: 120_000 })
      assert.equal(run.status, 0, `snippet failed:\n${snippet}\nstdout: ${run.stdout}\nstderr: ${run.stderr}`)
    })
  })
}
