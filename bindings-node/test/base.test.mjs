// writeBase: `zeroimage base` from JS. The archive is checked with the test's own tar reader.
import assert from 'node:assert/strict'
import path from 'node:path'
import { test } from 'node:test'
import { writeBase } from 'zeroimage'
import { inspectArchive, listDir, tempDir } from './support.mjs'

test('writeBase writes builtin:static with the given tag, platform and annotations (always OCI)', async () => {
  const dir = tempDir()
  const archive = path.join(dir, 'static.tar')
  const result = await writeBase({
    base: 'builtin:static',
    output: archive,
    tag: ['static:1', 'registry.example.com/base/static:1'],
    platform: 'linux/arm64',
    annotations: { 'org.example.note': 'node' },
  })
  const image = inspectArchive(archive)
  assert.equal(result.digest, image.manifestDigest)
  assert.equal(result.configDigest, image.configDigest)
  assert.equal(result.size, image.size)
  assert.equal(result.platform, 'linux/arm64')
  assert.deepEqual(result.outputs, [`oci-archive:${archive}`])
  assert.deepEqual(result.pushed, [])
  assert.equal(image.manifest.mediaType, 'application/vnd.oci.image.manifest.v1+json')
  assert.equal(image.manifest.annotations['org.example.note'], 'node')
  assert.equal(image.config.architecture, 'arm64')
  assert.deepEqual(image.dockerManifest[0].RepoTags, ['static:1', 'registry.example.com/base/static:1'])
  const files = image.layers[0].files
  for (const file of ['etc/passwd', 'etc/group', 'etc/ssl/certs/ca-certificates.crt']) {
    assert.ok([...files.keys()].some((name) => name.replace(/^\.?\//, '') === file), `${file} in the layer`)
  }
  // Deterministic: the same call gives the same digest.
  const again = await writeBase({
    base: 'builtin:static',
    output: path.join(dir, 'again.tar'),
    tag: ['static:1', 'registry.example.com/base/static:1'],
    platform: 'linux/arm64',
    annotations: { 'org.example.note': 'node' },
  })
  assert.equal(again.digest, result.digest)
})

test('writeBase defaults: <builtin name>.tar in the current directory, OCI, the default name', async (t) => {
  const dir = tempDir()
  const cwd = process.cwd()
  process.chdir(dir)
  t.after(() => process.chdir(cwd))
  const result = await writeBase({ base: 'builtin:static' })
  assert.deepEqual(listDir(dir), ['static.tar'])
  const image = inspectArchive(path.join(dir, 'static.tar'))
  assert.equal(image.manifestDigest, result.digest)
  assert.equal(image.manifest.mediaType, 'application/vnd.oci.image.manifest.v1+json')
  assert.match(result.tags[0], /zeroimage-builtin-static:\d+\.\d+\.\d+/)
})

const cases = [
  ['no base', () => ({ output: 'x.tar' }), 'invalid_input', 'base'],
  ['not an object', () => 'builtin:static', 'invalid_input', 'expected an object'],
  ['unknown builtin', () => ({ base: 'builtin:nope' }), 'invalid_input', 'nope'],
  ['scratch without output', () => ({ base: 'scratch' }), 'invalid_input', 'no output given'],
  ['bad platform', () => ({ base: 'builtin:static', platform: 'linux/foo' }), 'invalid_input', 'invalid platform'],
  ['bad format', () => ({ base: 'builtin:static', format: 'zip' }), 'invalid_input', 'zip'],
  ['bad tag', () => ({ base: 'builtin:static', tag: 'Bad Tag' }), 'invalid_input', 'invalid image reference'],
  ['missing output directory', () => ({ base: 'builtin:static', output: '/nonexistent/dir/x.tar' }), 'io', 'cannot write into'],
]

for (const [name, options, code, fragment] of cases) {
  test(`writeBase: ${name} rejects with code ${code}`, async () => {
    let promise
    assert.doesNotThrow(() => {
      promise = writeBase(options())
    })
    await assert.rejects(promise, (err) => {
      assert.equal(err.code, code, err.message)
      assert.ok(err.message.includes(fragment), `${JSON.stringify(fragment)} in ${JSON.stringify(err.message)}`)
      return true
    })
  })
}
