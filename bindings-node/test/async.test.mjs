// Off the JS thread: the event loop keeps turning during a large build, and an AbortSignal
// stops a running build through the core's cancel token, leaving no output behind.
import assert from 'node:assert/strict'
import { getEventListeners } from 'node:events'
import path from 'node:path'
import { before, test } from 'node:test'
import { buildImage } from 'zeroimage'
import { bigProgram, helloFixture, listDir, tempDir } from './support.mjs'

const MIB = 64
let dir
let big
let hello
before(() => {
  hello = path.join(helloFixture(), 'hello')
  dir = tempDir()
  big = bigProgram(dir, MIB)
})

test(`a timer keeps firing while a ${MIB} MiB program is built`, async (t) => {
  let ticks = 0
  const timer = setInterval(() => ticks++, 5)
  const started = performance.now()
  let progress = 0
  const result = await buildImage({
    entrypoint: big,
    output: path.join(dir, 'big.tar'),
    compressionLevel: 9,
    onProgress: () => progress++,
  })
  const elapsed = performance.now() - started
  clearInterval(timer)
  t.diagnostic(`${MIB} MiB build: ${elapsed.toFixed(0)} ms, ${ticks} ticks of a 5 ms timer, ${progress} progress events`)
  assert.ok(result.size > MIB * 1024 * 1024)
  // A build on the JS thread would let no tick through; off it, the 5 ms timer fires
  // throughout (allowing generously for a loaded machine).
  assert.ok(elapsed > 200, `the build took ${elapsed.toFixed(0)} ms: too short to tell`)
  assert.ok(ticks >= Math.min(20, elapsed / 50), `${ticks} ticks in ${elapsed.toFixed(0)} ms`)
  assert.ok(progress > 10, `${progress} progress events`)
})

test('aborting a running build rejects with code cancelled and writes nothing', async () => {
  const before = listDir(dir)
  const controller = new AbortController()
  const events = []
  const output = path.join(dir, 'aborted.tar')
  const promise = buildImage({
    entrypoint: big,
    output,
    compressionLevel: 9,
    signal: controller.signal,
    onProgress: (event) => {
      events.push(event)
      // Abort once the build is well under way (the layer is being compressed).
      if (event.stage === 'layer' && event.current > 0) controller.abort()
    },
  })
  const err = await promise.then(
    () => assert.fail('expected a rejection'),
    (e) => e,
  )
  assert.equal(err.code, 'cancelled', err.message)
  assert.equal(err.name, 'AbortError')
  assert.equal(err.message, 'build cancelled; nothing was written')
  assert.ok(events.length > 0, 'the build had started')
  assert.ok(events.every((e) => e.stage === 'layer' && e.current < e.total), 'stopped before the end')
  assert.deepEqual(listDir(dir), before, 'no output and no temporary file left')
  assert.equal(getEventListeners(controller.signal, 'abort').length, 0)
})

test('an already aborted signal rejects with code cancelled', async () => {
  const before = listDir(dir)
  const err = await buildImage({
    entrypoint: big,
    output: path.join(dir, 'pre-aborted.tar'),
    signal: AbortSignal.abort(),
  }).catch((e) => e)
  assert.equal(err.code, 'cancelled')
  assert.deepEqual(listDir(dir), before)
})

test('a signal that never fires changes nothing, and its listener is removed afterwards', async () => {
  const controller = new AbortController()
  const promise = buildImage({ entrypoint: hello, output: path.join(dir, 'kept.tar'), signal: controller.signal })
  assert.equal(getEventListeners(controller.signal, 'abort').length, 1)
  const result = await promise
  assert.match(result.digest, /^sha256:[0-9a-f]{64}$/)
  assert.equal(getEventListeners(controller.signal, 'abort').length, 0)
  controller.abort()
  assert.ok(listDir(dir).includes('kept.tar'))
})

test('builds run concurrently', async () => {
  const results = await Promise.all(
    [1, 2, 3].map((i) => buildImage({ entrypoint: hello, output: path.join(dir, `c${i}.tar`) })),
  )
  assert.equal(new Set(results.map((r) => r.digest)).size, 1)
})
