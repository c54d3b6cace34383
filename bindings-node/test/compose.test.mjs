// Files beside the program (`add`), the `Image` class, and the one option schema: unknown keys,
// wrong shapes, numeric bounds, throwing callbacks, AbortError. Images run with umoci + runc
// (as the builtin base's non-root user); archives are read with this suite's own tar reader.
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { before, describe, test } from 'node:test'
import { Image, buildImage } from 'zeroimage'
import { bigProgram, helloFixture, inspectArchive, listDir, runWithRunc, tempDir, testbed } from './support.mjs'

const NONROOT = 'uid=65532 gid=65532'
let hello // the test bed's `hello`: prints its first line, then handles --uid, --cat FILE, --env NAME, …
let plainHello

before(() => {
  const dir = tempDir('zeroimage-testbed-programs-')
  hello = JSON.parse(execFileSync(testbed(), ['hello', dir], { encoding: 'utf8' })).static
  plainHello = path.join(helloFixture(), 'hello')
})

/** A directory holding ./assets (a nested file, a relative symlink) and ./config.txt. */
function assetsDir() {
  const dir = tempDir()
  fs.mkdirSync(path.join(dir, 'assets', 'sub'), { recursive: true })
  fs.writeFileSync(path.join(dir, 'assets', 'greeting.txt'), 'hello from an asset\n')
  fs.writeFileSync(path.join(dir, 'assets', 'sub', 'deep.txt'), 'deep\n')
  fs.symlinkSync('greeting.txt', path.join(dir, 'assets', 'link.txt'))
  fs.writeFileSync(path.join(dir, 'config.txt'), 'debug = false\n')
  return dir
}

describe('add', () => {
  test('the program reads added files at run time, as the non-root builtin user (umoci + runc)', async () => {
    const dir = assetsDir()
    const output = path.join(dir, 'add.tar')
    const result = await buildImage({
      entrypoint: hello,
      base: 'builtin:static',
      add: [`${dir}/assets:/srv/assets`, { src: path.join(dir, 'config.txt'), dest: '/etc/app/config.txt' }],
      output,
      tag: 'add:node',
      args: ['--uid', '--cat', '/srv/assets/greeting.txt', '--cat', '/srv/assets/link.txt', '--cat', '/etc/app/config.txt'],
    })
    assert.equal(
      runWithRunc(output, 'node'),
      `hello from zeroimage\n${NONROOT}\nhello from an asset\nhello from an asset\ndebug = false\n`,
    )
    const image = inspectArchive(output)
    assert.equal(image.manifestDigest, result.digest)
    assert.equal(image.layers.length, 3, 'base, assets, program')
    assert.deepEqual([...image.layers[1].files.keys()], [
      'etc/',
      'etc/app/',
      'etc/app/config.txt',
      'srv/',
      'srv/assets/',
      'srv/assets/greeting.txt',
      'srv/assets/link.txt',
      'srv/assets/sub/',
      'srv/assets/sub/deep.txt',
    ])
    assert.equal(image.layers[1].files.get('srv/assets/link.txt').type, '2', 'a symlink stays a symlink')
    assert.deepEqual([...image.layers[2].files.keys()], ['hello'], 'the program layer is on top, alone')
  })

  test('an asset change leaves the program layer digest as it was', async () => {
    const dir = assetsDir()
    const build = (name) => buildImage({ entrypoint: plainHello, add: `${dir}/assets:/srv/assets`, output: path.join(dir, name) })
    const a = await build('a.tar')
    fs.writeFileSync(path.join(dir, 'assets', 'greeting.txt'), 'changed\n')
    const b = await build('b.tar')
    assert.notEqual(a.digest, b.digest)
    const [la, lb] = ['a.tar', 'b.tar'].map((f) => inspectArchive(path.join(dir, f)).manifest.layers.map((l) => l.digest))
    assert.notEqual(la[0], lb[0], 'the assets layer changed')
    assert.equal(la[1], lb[1], 'the program layer did not')
  })

  test('bad adds reject and write nothing', async () => {
    const dir = assetsDir()
    const cases = [
      [`${dir}/missing:/srv/x`, 'does not exist'],
      [`${dir}/assets:srv`, 'expected SRC:DEST'],
      [`${dir}/config.txt:/hello`, 'where the program goes'],
      [{ src: `${dir}/assets` }, '{src, dest}'],
    ]
    for (const [add, fragment] of cases) {
      const err = await buildImage({ entrypoint: plainHello, add, output: path.join(dir, 'x.tar') }).catch((e) => e)
      assert.equal(err.code, 'invalid_input', err.message)
      assert.ok(err.message.includes(fragment), `${JSON.stringify(err.message)} mentions ${fragment}`)
    }
    assert.deepEqual(listDir(dir), ['assets', 'config.txt'])
  })
})

describe('the option schema', () => {
  const reject = async (options, fragment) => {
    const dir = tempDir()
    const output = path.join(dir, 'x.tar')
    const err = await buildImage({ entrypoint: plainHello, output, ...options }).then(
      () => assert.fail(`expected a rejection for ${JSON.stringify(options)}`),
      (e) => e,
    )
    assert.equal(err.code, 'invalid_input', err.message)
    assert.ok(err.message.includes(fragment), `${JSON.stringify(err.message)} mentions ${fragment}`)
    assert.doesNotMatch(err.message, /BuildImageOptions|napi|Napi|serde_json|i64|u32|f64/, 'no internal type names')
    assert.deepEqual(listDir(dir), [], 'nothing written')
    return err
  }

  test('unknown keys are rejected with the nearest valid key', async () => {
    await reject({ bse: 'scratch' }, 'did you mean base?')
    await reject({ allowDynamik: true }, 'did you mean allowDynamic?')
    await reject({ zzzzzzzzzz: 1 }, 'it is not an option')
  })

  test('wrong shapes are rejected', async () => {
    await reject({ env: [1] }, 'env')
    await reject({ env: { A: 1 } }, 'env')
    await reject({ env: 'A=1' }, 'env')
    await reject({ tag: 5 }, 'tag')
    await reject({ args: 'x' }, 'args')
    await reject({ jobs: 'many' }, 'jobs')
    await reject({ jobs: 1.5 }, 'jobs')
    await reject({ timeout: Number.NaN }, 'timeout')
    await reject({ add: [{ src: 'a', dest: '/b', colour: 'red' }] }, 'add')
    await reject({ base: () => 'scratch' }, 'base')
    await reject({ onProgress: 'print' }, 'onProgress')
    await reject({ signal: 'stop' }, 'signal')
  })

  test('env as KEY=VALUE strings builds the variables asked for', async () => {
    const dir = tempDir()
    await buildImage({ entrypoint: plainHello, output: path.join(dir, 'e.tar'), env: ['A=1', 'B=x=y'], labels: ['t=v'] })
    const { config } = inspectArchive(path.join(dir, 'e.tar'))
    assert.deepEqual(config.config.Env, ['A=1', 'B=x=y'])
    assert.deepEqual(config.config.Labels, { t: 'v' })
  })

  test('numbers out of bounds are rejected, never an abort', async () => {
    for (const [options, fragment] of [
      [{ jobs: -1 }, 'jobs'],
      [{ jobs: 0 }, 'jobs'],
      [{ jobs: 4294967295 }, 'jobs'],
      [{ jobs: 2 ** 60 }, 'jobs'],
      [{ compressionLevel: -1 }, 'compression'],
      [{ sourceDateEpoch: 253402300800 }, 'SOURCE_DATE_EPOCH'],
      [{ sourceDateEpoch: -1 }, 'SOURCE_DATE_EPOCH'],
      [{ timeout: 0 }, 'timeout'],
      [{ timeout: 1e300 }, 'timeout'],
    ]) {
      await reject(options, fragment)
    }
    const dir = tempDir()
    await buildImage({ entrypoint: plainHello, output: path.join(dir, 'm.tar'), jobs: 256, sourceDateEpoch: 253402300799 })
    assert.equal(inspectArchive(path.join(dir, 'm.tar')).config.created, '9999-12-31T23:59:59Z')
  })

  test('hints name options the Node way', async () => {
    const dir = tempDir()
    execFileSync('gcc', ['-O2', '-o', path.join(dir, 'dynamic'), path.join(helloFixture(), 'hello.c')])
    const err = await buildImage({ entrypoint: path.join(dir, 'dynamic'), output: path.join(dir, 'd.tar') }).catch((e) => e)
    assert.match(err.message, /allowDynamic: true/)
    assert.doesNotMatch(err.message, /--allow-dynamic/)
  })
})

describe('callbacks and abort', () => {
  let dir
  let big
  before(() => {
    dir = tempDir()
    big = bigProgram(dir, 32)
  })

  test('a throwing onProgress cancels the build: nothing written, the error is the cause', async () => {
    const boom = new Error('boom')
    let calls = 0
    const err = await buildImage({
      entrypoint: big,
      output: path.join(dir, 'thrown.tar'),
      onProgress: (event) => {
        calls++
        if (event.current > 0) throw boom
      },
    }).catch((e) => e)
    assert.equal(err.code, 'cancelled')
    assert.equal(err.cause, boom)
    assert.match(err.message, /onProgress threw; nothing was written/)
    assert.ok(calls >= 2 && calls < 10, `${calls} calls: the build stopped after the throw`)
    assert.deepEqual(listDir(dir), ['big'])
  })

  test('a throwing onLog cancels the build too, even one thrown value that is no Error', async () => {
    const err = await buildImage({
      entrypoint: big,
      output: path.join(dir, 'logged.tar'),
      creds: 'me:secret',
      onLog: () => {
        throw 'not an Error' // eslint-disable-line no-throw-literal
      },
    }).catch((e) => e)
    assert.equal(err.code, 'cancelled')
    assert.equal(err.cause, 'not an Error')
    assert.deepEqual(listDir(dir), ['big'])
  })

  test('abort rejects with an AbortError carrying signal.reason, as fetch does', async () => {
    const controller = new AbortController()
    const reason = new Error('changed my mind')
    const err = await buildImage({
      entrypoint: big,
      output: path.join(dir, 'aborted.tar'),
      signal: controller.signal,
      onProgress: (event) => event.current > 0 && controller.abort(reason),
    }).catch((e) => e)
    assert.equal(err.name, 'AbortError')
    assert.equal(err.code, 'cancelled')
    assert.equal(err.cause, reason)
    const pre = await buildImage({ entrypoint: big, output: path.join(dir, 'pre.tar'), signal: AbortSignal.abort() }).catch((e) => e)
    assert.equal(pre.name, 'AbortError')
    assert.equal(pre.cause.name, 'AbortError', 'the default reason is a DOMException named AbortError')
    assert.deepEqual(listDir(dir), ['big'])
  })
})

describe('Image', () => {
  test('composes an image that runs: files, the program, config edits, two outputs', async () => {
    const dir = assetsDir()
    const image = await Image.fromBase('builtin:static', { platform: 'linux/amd64', sourceDateEpoch: 7 })
    assert.equal(image.platform, 'linux/amd64')
    assert.equal(image.format, 'oci')
    assert.equal(image.layerCount, 1)
    await image.addFiles(`${dir}/assets:/srv/assets`, { owner: '65532' })
    await image.addProgram(hello, { path: '/app/hello' })
    image.setCmd(['--uid', '--env', 'GREETING', '--cwd', '--cat', '/srv/assets/greeting.txt'])
    image.setEnv('GREETING', 'from the image class')
    image.setWorkdir('/srv')
    image.setLabel('org.example.team', 'node')
    image.setAnnotation('org.example.note', 'composed')
    assert.equal(image.layerCount, 3)
    const output = path.join(dir, 'image.tar')
    const result = await image.write({ output, tag: 'image:node' })
    assert.equal(
      runWithRunc(output, 'node'),
      `hello from zeroimage\n${NONROOT}\nenv GREETING=from the image class\ncwd=/srv\nhello from an asset\n`,
    )
    const read = inspectArchive(output)
    assert.equal(read.manifestDigest, result.digest)
    assert.equal(read.manifest.annotations['org.example.note'], 'composed')
    assert.deepEqual(read.config.config.Entrypoint, ['/app/hello'])
    assert.equal(read.config.created, '1970-01-01T00:00:07Z')
    assert.equal(read.layers[1].files.get('srv/assets/greeting.txt').uid, 65532)
    const again = await image.write({ output: `oci:${path.join(dir, 'layout')}:v1` })
    assert.equal(again.digest, result.digest)
  })

  test('gives the same bytes as buildImage for the same steps', async () => {
    const dir = assetsDir()
    const oneCall = await buildImage({
      entrypoint: plainHello,
      base: 'builtin:static',
      add: `${dir}/assets:/srv/assets`,
      output: path.join(dir, 'a.tar'),
      sourceDateEpoch: 3,
    })
    const image = await Image.fromBase('builtin:static', { sourceDateEpoch: 3 })
    await image.addFiles(`${dir}/assets:/srv/assets`)
    await image.addProgram(plainHello)
    const composed = await image.write({ output: path.join(dir, 'b.tar'), tag: 'hello:latest' })
    assert.equal(composed.digest, oneCall.digest)
    assert.ok(fs.readFileSync(path.join(dir, 'a.tar')).equals(fs.readFileSync(path.join(dir, 'b.tar'))))
  })

  test('checks its input', async () => {
    await assert.rejects(Image.fromBase('scratch', { platfrom: 'linux/amd64' }), /did you mean platform\?/)
    await assert.rejects(Image.fromBase('scratch', { jobs: -1 }), { code: 'invalid_input' })
    await assert.rejects(Image.fromBase('builtin:nope'), { code: 'invalid_input' })
    const arm = await Image.fromBase('scratch', { platform: 'linux/arm64' })
    await assert.rejects(arm.addProgram(plainHello), /built for amd64/)
    const image = await Image.fromBase()
    await image.addProgram(plainHello)
    await assert.rejects(image.addProgram(plainHello), /one program per image/)
    await assert.rejects(image.addFiles(`${plainHello}:/hello`), /where the program goes/)
    assert.throws(() => image.setWorkdir('relative'), (e) => e.code === 'invalid_input' && /workdir/.test(e.message))
    await assert.rejects(image.write({ output: 'x.tar', puhs: 'x' }), /did you mean push\?/)
    const controller = new AbortController()
    controller.abort()
    const dir = tempDir()
    const err = await image.write({ output: path.join(dir, 'c.tar'), signal: controller.signal }).catch((e) => e)
    assert.equal(err.name, 'AbortError')
    assert.deepEqual(listDir(dir), [])
  })
})
