// Several programs make one multi-platform image index (`entrypoint` as a list, or an object of
// platform to path). The archive is read with this suite's own tar reader; the runtimes' checks
// of the same images are in tests/tests/multiarch.rs.
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { before, test } from 'node:test'
import { buildImage } from 'zeroimage'
import { readTar, sha256, tempDir, testbed } from './support.mjs'

let dir
let programs // [amd64/server, arm64/server]: one file name, two platforms

before(() => {
  dir = tempDir('zeroimage-multiarch-')
  const made = JSON.parse(execFileSync(testbed(), ['hello', dir], { encoding: 'utf8' }))
  programs = [['amd64', made.static], ['arm64', made.arm64]].map(([arch, file]) => {
    fs.mkdirSync(path.join(dir, arch))
    const out = path.join(dir, arch, 'server')
    fs.copyFileSync(file, out)
    fs.chmodSync(out, 0o755)
    return out
  })
})

function readIndex(archive) {
  const entries = readTar(fs.readFileSync(archive))
  const indexJson = JSON.parse(entries.get('index.json').data)
  const digest = indexJson.manifests[0].digest
  const blob = entries.get(`blobs/sha256/${digest.slice(7)}`).data
  assert.equal(sha256(blob), digest)
  return { indexJson, index: JSON.parse(blob) }
}

test('several programs make one index; an object of platform to path gives the same', async () => {
  const output = path.join(dir, 'multi.tar')
  const result = await buildImage({ entrypoint: programs, output, tag: 'team/server:1.0' })
  const { indexJson, index } = readIndex(output)
  assert.equal(index.mediaType, 'application/vnd.oci.image.index.v1+json')
  assert.deepEqual(index.manifests.map((m) => m.platform.architecture), ['amd64', 'arm64'])
  assert.equal(result.indexDigest, indexJson.manifests[0].digest)
  assert.equal(result.digest, result.indexDigest)
  assert.deepEqual(result.manifests, {
    'linux/amd64': index.manifests[0].digest,
    'linux/arm64': index.manifests[1].digest,
  })
  const again = await buildImage({
    entrypoint: { 'linux/amd64': programs[0], 'linux/arm64': programs[1] },
    output: path.join(dir, 'again.tar'),
    tag: 'team/server:1.0',
  })
  assert.equal(again.digest, result.digest)
})

test('two programs for one platform are refused and nothing is written', async () => {
  const output = path.join(dir, 'bad.tar')
  await assert.rejects(
    buildImage({ entrypoint: [programs[0], programs[0]], output }),
    (err) => err.code === 'invalid_input' && /both for linux\/amd64/.test(err.message),
  )
  assert.ok(!fs.existsSync(output))
})
