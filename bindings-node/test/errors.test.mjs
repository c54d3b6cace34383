// Bad input rejects (never throws) with `code` = the core's error kind and the CLI's message.
import assert from 'node:assert/strict'
import { execFileSync, spawnSync } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { before, test } from 'node:test'
import { buildImage } from 'zeroimage'
import { PACKAGE_DIR, helloFixture, listDir, requireTool, tempDir } from './support.mjs'

let dir
let hello
before(() => {
  hello = path.join(helloFixture(), 'hello')
  dir = tempDir()
  fs.mkdirSync(path.join(dir, 'a-directory'))
  fs.writeFileSync(path.join(dir, 'script.sh'), '#!/bin/sh\necho hi\n', { mode: 0o755 })
  fs.writeFileSync(path.join(dir, 'text'), 'not a program\n', { mode: 0o755 })
  requireTool('gcc')
  execFileSync('gcc', ['-O2', '-o', path.join(dir, 'dynamic'), path.join(helloFixture(), 'hello.c')])
})

// [name, options (a function of the fixture paths), code, a piece of the message]
const cases = [
  ['missing program', () => ({ entrypoint: path.join(dir, 'nope') }), 'not_found', 'not found'],
  ['directory as program', () => ({ entrypoint: path.join(dir, 'a-directory') }), 'invalid_input', 'not a regular file'],
  ['script', () => ({ entrypoint: path.join(dir, 'script.sh') }), 'invalid_input', 'it is a script'],
  ['not an ELF file', () => ({ entrypoint: path.join(dir, 'text') }), 'invalid_input', 'not an ELF executable'],
  ['dynamic program on scratch', () => ({ entrypoint: path.join(dir, 'dynamic') }), 'invalid_input', 'dynamically linked'],
  ['unknown architecture', () => ({ entrypoint: hello, platform: 'linux/foo' }), 'invalid_input', 'invalid platform'],
  ['foreign OS', () => ({ entrypoint: hello, platform: 'windows/amd64' }), 'invalid_input', 'only linux'],
  ['architecture mismatch', () => ({ entrypoint: hello, platform: 'linux/arm64' }), 'invalid_input', 'built for amd64'],
  ['empty base', () => ({ entrypoint: hello, base: '' }), 'invalid_input', 'invalid base'],
  ['empty archive path', () => ({ entrypoint: hello, output: 'oci-archive:' }), 'invalid_input', 'invalid output'],
  ['output transport not written', () => ({ entrypoint: hello, output: 'dir:x' }), 'unsupported', 'not supported'],
  ['output directory missing', () => ({ entrypoint: hello, output: path.join(dir, 'no', 'x.tar') }), 'io', 'cannot write into'],
  ['output is a directory', () => ({ entrypoint: hello, output: path.join(dir, 'a-directory') }), 'invalid_input', 'it is a directory'],
  ['bad tag', () => ({ entrypoint: hello, tag: 'Upper/Case:1' }), 'invalid_input', 'invalid image reference'],
  ['bad tag in a list', () => ({ entrypoint: hello, tag: ['ok:1', 'bad tag'] }), 'invalid_input', 'invalid image reference'],
  ['env name with =', () => ({ entrypoint: hello, env: { 'A=B': 'x' } }), 'invalid_input', 'invalid env'],
  ['relative path in image', () => ({ entrypoint: hello, path: 'app/x' }), 'invalid_input', 'invalid path'],
  ['relative workdir', () => ({ entrypoint: hello, workdir: 'srv' }), 'invalid_input', 'invalid workdir'],
  ['user with space', () => ({ entrypoint: hello, user: 'a b' }), 'invalid_input', 'invalid user'],
  ['empty label key', () => ({ entrypoint: hello, labels: { '': 'x' } }), 'invalid_input', 'invalid label'],
  ['compression level', () => ({ entrypoint: hello, compressionLevel: 12 }), 'invalid_input', 'compression-level'],
  ['format', () => ({ entrypoint: hello, format: 'zip' }), 'invalid_input', 'zip'],
  ['profile', () => ({ entrypoint: hello, profile: 'gcp' }), 'invalid_input', 'invalid profile'],
  ['lambda profile violation', () => ({ entrypoint: hello, profile: 'lambda', compression: 'zstd' }), 'invalid_input', 'zstd-compressed'],
  ['negative epoch', () => ({ entrypoint: hello, sourceDateEpoch: -1 }), 'invalid_input', 'invalid sourceDateEpoch'],
  ['entrypoint of the wrong type', () => ({ entrypoint: 42 }), 'invalid_input', 'BuildImageOptions.entrypoint'],
  ['no entrypoint', () => ({ output: 'x.tar' }), 'invalid_input', 'entrypoint'],
  ['args of the wrong type', () => ({ entrypoint: hello, args: 'not-a-list' }), 'invalid_input', 'args'],
  ['options not an object', () => 'hello', 'invalid_input', 'expected an object'],
  ['no options', () => undefined, 'invalid_input', 'expected an object'],
  ['null options', () => null, 'invalid_input', 'expected an object'],
]

for (const [name, options, code, fragment] of cases) {
  test(`${name} rejects with code ${code}`, async () => {
    const output = path.join(dir, `${name.replace(/\W+/g, '-')}.tar`)
    let opts = options()
    if (opts && typeof opts === 'object' && !('output' in opts)) opts = { ...opts, output }
    let promise
    assert.doesNotThrow(() => {
      promise = buildImage(opts)
    })
    assert.ok(promise instanceof Promise)
    const err = await promise.then(
      () => assert.fail('expected a rejection'),
      (e) => e,
    )
    assert.ok(err instanceof Error, 'an Error object')
    assert.equal(err.code, code, err.message)
    assert.ok(err.message.includes(fragment), `${JSON.stringify(err.message)} mentions ${fragment}`)
    assert.ok(!fs.existsSync(output), 'nothing written')
  })
}

test('the message is exactly what the CLI prints after "error: "', async () => {
  const flags = [
    [{ platform: 'linux/foo' }, ['--platform', 'linux/foo']],
    [{ platform: 'linux/arm64' }, ['--platform', 'linux/arm64']],
    [{ base: 'docker://example.com/x' }, ['--from', 'docker://example.com/x']],
    [{ output: 'dir:x' }, ['--output', 'dir:x']],
  ]
  for (const [options, cliFlags] of flags) {
    const err = await buildImage({ entrypoint: hello, ...options }).catch((e) => e)
    const cli = spawnSync(process.execPath, [path.join(PACKAGE_DIR, 'cli.js'), 'build', hello, ...cliFlags], {
      cwd: dir,
      encoding: 'utf8',
    })
    assert.equal(cli.status, 1)
    assert.equal(cli.stderr, `error: ${err.message}\n`)
  }
  const missing = path.join(dir, 'missing')
  const err = await buildImage({ entrypoint: missing, output: path.join(dir, 'm.tar') }).catch((e) => e)
  const cli = spawnSync(process.execPath, [path.join(PACKAGE_DIR, 'cli.js'), 'build', missing], { encoding: 'utf8' })
  assert.equal(cli.stderr, `error: ${err.message}\n`)
})

test('failed builds leave nothing behind', () => {
  assert.deepEqual(
    listDir(dir).filter((f) => !['a-directory', 'script.sh', 'text', 'dynamic'].includes(f)),
    [],
  )
})
