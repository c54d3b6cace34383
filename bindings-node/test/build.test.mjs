// buildImage: the archive it writes, checked without zeroimage's own code, and run by real runtimes.
import assert from 'node:assert/strict'
import fs from 'node:fs'
import path from 'node:path'
import { before, describe, test } from 'node:test'
import { buildImage } from 'zeroimage'
import {
  HELLO_OUTPUT,
  helloFixture,
  inspectArchive,
  listDir,
  runWithRunc,
  sha256,
  startDockerd,
  tempDir,
} from './support.mjs'

let hello
before(() => {
  hello = path.join(helloFixture(), 'hello')
})

describe('buildImage', () => {
  test('writes an OCI archive whose blobs, diff_ids and config match the result', async () => {
    const dir = tempDir()
    const output = path.join(dir, 'server.tar')
    const result = await buildImage({
      entrypoint: hello,
      output,
      tag: 'registry.example.com/server:1.0',
      env: { RUST_LOG: 'info', A_FIRST: 'kept in order' },
      args: ['--port', '8080'],
      user: '65532',
      workdir: '/srv',
      path: '/app/server',
      labels: { 'org.example.team': 'build' },
      annotations: { 'org.opencontainers.image.source': 'https://example.com/repo' },
      sourceDateEpoch: 0,
    })
    for (const key of ['configDigest', 'digest', 'digests', 'manifests', 'bundled', 'output', 'outputs', 'platform', 'pushed', 'size', 'tags']) {
      assert.ok(key in result, key)
    }
    assert.equal(result.output, `oci-archive:${output}`)
    assert.deepEqual(result.outputs, [result.output])
    assert.deepEqual(result.digests, { [result.output]: result.digest })
    assert.deepEqual(result.tags, ['registry.example.com/server:1.0'])
    assert.deepEqual(result.pushed, [])
    assert.equal(result.platform, 'linux/amd64')

    const image = inspectArchive(output)
    assert.equal(image.manifestDigest, result.digest)
    assert.equal(image.configDigest, result.configDigest)
    assert.equal(image.size, result.size)
    assert.equal(image.manifest.mediaType, 'application/vnd.oci.image.manifest.v1+json')
    assert.deepEqual(image.manifest.annotations, { 'org.opencontainers.image.source': 'https://example.com/repo' })
    assert.equal(image.index.manifests[0].annotations['org.opencontainers.image.ref.name'], '1.0')
    assert.deepEqual(image.dockerManifest[0].RepoTags, ['registry.example.com/server:1.0'])

    const { config } = image
    assert.equal(config.architecture, 'amd64')
    assert.equal(config.os, 'linux')
    assert.equal(config.created, '1970-01-01T00:00:00Z')
    assert.deepEqual(config.config.Entrypoint, ['/app/server'])
    assert.deepEqual(config.config.Cmd, ['--port', '8080'])
    assert.deepEqual(config.config.Env, ['RUST_LOG=info', 'A_FIRST=kept in order'])
    assert.equal(config.config.User, '65532')
    assert.equal(config.config.WorkingDir, '/srv')
    assert.deepEqual(config.config.Labels, { 'org.example.team': 'build' })

    assert.equal(image.layers.length, 1)
    const files = image.layers[0].files
    assert.deepEqual([...files.keys()], ['app/', 'app/server'])
    const program = files.get('app/server')
    assert.equal(program.mode & 0o777, 0o755)
    assert.equal(program.uid, 0)
    assert.equal(sha256(program.data), sha256(fs.readFileSync(hello)))
  })

  test('is reproducible: the same inputs give the same bytes', async () => {
    const dir = tempDir()
    const a = await buildImage({ entrypoint: hello, output: path.join(dir, 'a.tar'), tag: 'hello:1' })
    const b = await buildImage({ entrypoint: hello, output: path.join(dir, 'b.tar'), tag: 'hello:1' })
    assert.equal(a.digest, b.digest)
    assert.ok(fs.readFileSync(path.join(dir, 'a.tar')).equals(fs.readFileSync(path.join(dir, 'b.tar'))))
    const c = await buildImage({ entrypoint: hello, output: path.join(dir, 'c.tar'), tag: 'hello:1', args: ['x'] })
    assert.notEqual(c.digest, a.digest)
    const d = await buildImage({ entrypoint: hello, output: path.join(dir, 'd.tar'), sourceDateEpoch: 1700000000 })
    assert.equal(inspectArchive(path.join(dir, 'd.tar')).config.created, '2023-11-14T22:13:20Z')
  })

  test('takes the CLI compression options: same bytes for any jobs, none, bad values reject', async () => {
    const dir = tempDir()
    const one = await buildImage({ entrypoint: hello, output: path.join(dir, 'j1.tar'), jobs: 1 })
    const two = await buildImage({ entrypoint: hello, output: path.join(dir, 'j2.tar'), jobs: 2, compression: 'gzip' })
    assert.equal(one.digest, two.digest)
    assert.ok(fs.readFileSync(path.join(dir, 'j1.tar')).equals(fs.readFileSync(path.join(dir, 'j2.tar'))))
    await buildImage({ entrypoint: hello, output: path.join(dir, 'none.tar'), compression: 'none' })
    const plain = inspectArchive(path.join(dir, 'none.tar'))
    assert.equal(plain.manifest.layers[0].mediaType, 'application/vnd.oci.image.layer.v1.tar')
    for (const bad of [{ compression: 'lz4' }, { jobs: 0 }, { compressionLevel: 10 }]) {
      await assert.rejects(buildImage({ entrypoint: hello, output: path.join(dir, 'bad.tar'), ...bad }), {
        code: 'invalid_input',
      })
    }
    assert.ok(!fs.existsSync(path.join(dir, 'bad.tar')))
  })

  test('takes several tags, a platform and a layout directory output (always OCI)', async () => {
    const dir = tempDir()
    const result = await buildImage({
      entrypoint: hello,
      output: `oci:${path.join(dir, 'layout')}:v1`,
      tag: ['hello:1', 'hello:latest'],
      platform: 'linux/x86_64',
      compressionLevel: 9,
    })
    assert.equal(result.platform, 'linux/amd64')
    assert.deepEqual(result.tags, ['docker.io/library/hello:1', 'docker.io/library/hello:latest'])
    assert.equal(result.output, `oci:${path.join(dir, 'layout')}:v1`)
    const index = JSON.parse(fs.readFileSync(path.join(dir, 'layout', 'index.json'), 'utf8'))
    const descriptor = index.manifests.find((m) => m.annotations['org.opencontainers.image.ref.name'] === 'v1')
    assert.equal(descriptor.digest, result.digest)
    const manifestBytes = fs.readFileSync(path.join(dir, 'layout', 'blobs', 'sha256', result.digest.slice(7)))
    assert.equal(sha256(manifestBytes), result.digest)
    assert.equal(JSON.parse(manifestBytes).mediaType, 'application/vnd.oci.image.manifest.v1+json')
    assert.deepEqual(result.digests, { [result.output]: result.digest })
    // format: 'docker' only changes pushes; without one it is refused.
    await assert.rejects(
      buildImage({ entrypoint: hello, output: `oci:${path.join(dir, 'docker')}:v1`, format: 'docker' }),
      (e) => e.code === 'invalid_input' && /always hold OCI manifests/.test(e.message),
    )
  })

  test('reports progress from the build thread', async () => {
    const dir = tempDir()
    const events = []
    await buildImage({ entrypoint: hello, output: path.join(dir, 'p.tar'), onProgress: (e) => events.push(e) })
    // Events are queued to the JS thread; any still queued arrive before the next macrotask.
    await new Promise((resolve) => setImmediate(resolve))
    const size = fs.statSync(hello).size
    const layer = events.filter((e) => e.stage === 'layer')
    const write = events.filter((e) => e.stage === 'write')
    assert.ok(layer.length >= 1 && write.length >= 1, JSON.stringify(events))
    assert.deepEqual(layer.at(-1), { stage: 'layer', current: size, total: size })
    assert.equal(write.at(-1).current, write.at(-1).total)
    for (const list of [layer, write]) {
      for (let i = 1; i < list.length; i++) assert.ok(list[i].current >= list[i - 1].current)
    }
  })
})

describe('the image runs', () => {
  test('with umoci + runc', async () => {
    const dir = tempDir()
    const output = path.join(dir, 'hello.tar')
    await buildImage({ entrypoint: hello, output, tag: 'hello:runc', args: ['from-runc'] })
    assert.equal(runWithRunc(output, 'runc'), `${HELLO_OUTPUT}arg from-runc\n`)
  })

  test('on the builtin:static base, as its nonroot user, with umoci + runc', async () => {
    const dir = tempDir()
    const output = path.join(dir, 'static.tar')
    const result = await buildImage({ entrypoint: hello, base: 'builtin:static', output, tag: 'hello:static' })
    const image = inspectArchive(output)
    assert.equal(image.manifestDigest, result.digest)
    assert.equal(image.layers.length, 2)
    assert.equal(image.config.config.User, '65532:65532')
    assert.ok(image.layers[0].files.has('etc/ssl/certs/ca-certificates.crt'))
    assert.deepEqual([...image.layers[1].files.keys()], ['hello'])
    assert.equal(runWithRunc(output, 'static'), HELLO_OUTPUT)
  })

  test('with docker load + docker run (Docker 20.10)', async (t) => {
    const dir = tempDir()
    const output = path.join(dir, 'hello.tar')
    const result = await buildImage({ entrypoint: hello, output, tag: 'zeroimage-node/hello:docker' })
    const { docker, stop } = await startDockerd()
    t.after(stop)
    const load = docker(['load', '-i', output])
    assert.equal(load.status, 0, load.stderr)
    const inspect = docker(['image', 'inspect', '--format', '{{.Id}}', 'zeroimage-node/hello:docker'])
    assert.equal(inspect.stdout.trim(), result.configDigest)
    const run = docker(['run', '--rm', '--network', 'none', '--pull', 'never', 'zeroimage-node/hello:docker', 'x'])
    assert.equal(run.status, 0, run.stderr)
    assert.equal(run.stdout, `${HELLO_OUTPUT}arg x\n`)
    assert.deepEqual(listDir(dir), ['hello.tar'])
  })
})
