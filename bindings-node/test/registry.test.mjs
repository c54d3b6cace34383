// Registries: push (with and without an archive, several tags, TLS + Basic auth), login/logout
// through a private DOCKER_CONFIG, and the error codes of bad push input. Every pushed image is
// checked with skopeo, against a real registry (Debian's docker-registry, from the test bed).
import assert from 'node:assert/strict'
import fs from 'node:fs'
import path from 'node:path'
import { after, before, test } from 'node:test'
import { buildImage, login, logout } from 'zeroimage'
import {
  HELLO_OUTPUT,
  helloFixture,
  inspectArchive,
  listDir,
  runWithRunc,
  sha256,
  skopeoInspect,
  startRegistry,
  tempDir,
} from './support.mjs'

const USER = 'nodeuser'
const PASSWORD = 'pw-Node-7x-never-printed'

// Credentials live only here: this file runs in its own process (node --test), and the core
// reads DOCKER_CONFIG from this process's environment.
const home = tempDir('zeroimage-home-')
const dockerConfig = path.join(home, 'docker')
process.env.DOCKER_CONFIG = dockerConfig
process.env.HOME = home
delete process.env.REGISTRY_AUTH_FILE
delete process.env.XDG_RUNTIME_DIR
const configFile = path.join(dockerConfig, 'config.json')

let plain // loopback, plain HTTP, anonymous
let secure // TLS with a private CA, htpasswd Basic auth
let hello
before(async () => {
  hello = path.join(helloFixture(), 'hello')
  plain = await startRegistry()
  secure = await startRegistry('--auth', `${USER}:${PASSWORD}`, '--tls')
})
after(async () => {
  await plain?.stop()
  await secure?.stop()
})

/** Each pushed ref resolves, through skopeo, to `digest`, and its raw manifest hashes to it. */
function assertPushed(refs, digest, flags) {
  for (const ref of refs) {
    assert.equal(skopeoInspect(ref, flags).Digest, digest, `skopeo inspect ${ref}`)
    assert.equal(sha256(skopeoInspect(ref, flags, { raw: true })), digest, `manifest bytes of ${ref}`)
  }
}

test('push with output: the archive and two tags on a TLS + Basic auth registry', async () => {
  const dir = tempDir()
  const archive = path.join(dir, 'hello.tar')
  const repo = `${secure.info.addr}/node/hello`
  const lines = []
  const result = await buildImage({
    entrypoint: hello,
    output: archive,
    push: [`${repo}:1.0`, `docker://${repo}:latest`],
    caCert: secure.info.ca_cert,
    creds: `${USER}:${PASSWORD}`,
    timeout: 30,
    onLog: (line) => lines.push(line),
  })
  assert.deepEqual(result.pushed, [`${repo}@${result.digest}`, `${repo}@${result.digest}`])
  assert.deepEqual(result.outputs, [`oci-archive:${archive}`, `docker://${repo}:1.0`, `docker://${repo}:latest`])
  assert.equal(result.output, `oci-archive:${archive}`)
  // The archive is the same image as the one pushed.
  const image = inspectArchive(archive)
  assert.equal(image.manifestDigest, result.digest)
  assertPushed([`${repo}:1.0`, `${repo}:latest`], result.digest, secure.info.flags)
  const config = skopeoInspect(`${repo}:1.0`, [...secure.info.flags, '--config'])
  assert.deepEqual(config.config.Entrypoint, ['/hello'])
  assert.equal(runWithRunc(archive, 'latest'), HELLO_OUTPUT)
  // onLog says what happened, on the JS thread, without the secret.
  await new Promise((resolve) => setImmediate(resolve))
  assert.ok(lines.some((line) => line.includes(`user ${USER}`)), lines.join('\n'))
  assert.ok(lines.some((line) => /uploaded/.test(line)), lines.join('\n'))
  assert.ok(!lines.join('\n').includes(PASSWORD))
})

test('push alone writes no archive (as the CLI), to a loopback registry over plain HTTP', async (t) => {
  const dir = tempDir()
  const cwd = process.cwd()
  process.chdir(dir)
  t.after(() => process.chdir(cwd))
  fs.copyFileSync(hello, path.join(dir, 'hello'))
  const ref = `${plain.info.addr}/node/only-push:1`
  const result = await buildImage({ entrypoint: './hello', push: ref })
  assert.deepEqual(listDir(dir), ['hello'], 'no hello.tar next to the program')
  assert.deepEqual(result.outputs, [`docker://${ref}`])
  assert.deepEqual(result.pushed, [`${plain.info.addr}/node/only-push@${result.digest}`])
  assertPushed([ref], result.digest, plain.info.flags)
})

test('login checks the password, stores it in DOCKER_CONFIG; push uses it; logout erases it', async () => {
  const registry = secure.info.addr
  const options = { caCert: secure.info.ca_cert }
  // Wrong password: rejected by the registry, nothing written.
  await assert.rejects(login(registry, USER, 'wrong-password', options), (err) => {
    assert.equal(err.code, 'auth')
    assert.match(err.message, /nothing was stored/)
    assert.ok(!err.message.includes('wrong-password'))
    return true
  })
  assert.ok(!fs.existsSync(configFile), 'no config.json after a refused login')
  // Without the CA, TLS fails before any credential is sent.
  await assert.rejects(login(registry, USER, PASSWORD), (err) => {
    assert.notEqual(err.code, 'auth')
    assert.ok(['network', 'registry'].includes(err.code), `${err.code}: ${err.message}`)
    return true
  })
  assert.ok(!fs.existsSync(configFile))

  const source = await login(`https://${registry}/`, USER, PASSWORD, options)
  assert.equal(source, `${configFile} (auths)`)
  const stored = JSON.parse(fs.readFileSync(configFile, 'utf8'))
  assert.equal(Buffer.from(stored.auths[registry].auth, 'base64').toString(), `${USER}:${PASSWORD}`)
  assert.equal(fs.statSync(configFile).mode & 0o777, 0o600)

  // A push without creds finds them there (and says so).
  const lines = []
  const ref = `${registry}/node/after-login:1`
  const result = await buildImage({ entrypoint: hello, push: ref, caCert: secure.info.ca_cert, onLog: (l) => lines.push(l) })
  assertPushed([ref], result.digest, secure.info.flags)
  await new Promise((resolve) => setImmediate(resolve))
  assert.ok(lines.some((line) => line.includes(configFile)), lines.join('\n'))

  assert.equal(await logout(registry), true)
  assert.deepEqual(JSON.parse(fs.readFileSync(configFile, 'utf8')).auths, {})
  assert.equal(await logout(registry), false)
  // Logged out: the same push is refused.
  await assert.rejects(buildImage({ entrypoint: hello, push: ref, caCert: secure.info.ca_cert }), { code: 'auth' })
})

// [name, call, code, a piece of the message]
const cases = [
  ['push ref with upper case', () => buildImage({ entrypoint: hello, push: 'Upper/Case:1' }), 'invalid_input', 'invalid image reference'],
  ['push ref with a space', () => buildImage({ entrypoint: hello, push: ['localhost:5000/ok:1', 'bad ref'] }), 'invalid_input', 'invalid image reference'],
  ['push ref with another transport', () => buildImage({ entrypoint: hello, push: 'oci:./dir' }), 'invalid_input', 'invalid image reference'],
  ['push of the wrong type', () => buildImage({ entrypoint: hello, push: 42 }), 'invalid_input', 'push'],
  ['caCert of the wrong type', () => buildImage({ entrypoint: hello, push: 'localhost:5000/x:1', caCert: [1] }), 'invalid_input', 'caCert'],
  ['creds without a colon', () => buildImage({ entrypoint: hello, push: 'localhost:5000/x:1', creds: 'justauser' }), 'invalid_input', 'creds'],
  ['zero timeout', () => buildImage({ entrypoint: hello, push: 'localhost:5000/x:1', timeout: 0 }), 'invalid_input', 'invalid timeout'],
  ['missing CA file', () => buildImage({ entrypoint: hello, push: 'localhost:5000/x:1', caCert: '/nonexistent/ca.pem' }), 'io', '/nonexistent/ca.pem'],
  ['wrong creds', () => buildImage({ entrypoint: hello, push: `${secure.info.addr}/node/x:1`, caCert: secure.info.ca_cert, creds: `${USER}:nope` }), 'auth', () => secure.info.addr],
  ['login: empty password', () => login(plain.info.addr, USER, ''), 'invalid_input', 'password'],
  ['login: missing password', () => login(plain.info.addr, USER), 'invalid_input', 'expected a string'],
  ['login: registry not a string', () => login(5000, USER, PASSWORD), 'invalid_input', 'expected a string'],
  ['login: bad registry', () => login('a b', USER, PASSWORD), 'invalid_input', 'invalid registry'],
  ['login: options not an object', () => login(plain.info.addr, USER, PASSWORD, 'insecure'), 'invalid_input', 'expected an object'],
  ['logout: no registry', () => logout(), 'invalid_input', 'expected a string'],
]

for (const [name, call, code, fragment] of cases) {
  test(`${name} rejects with code ${code}`, async () => {
    let promise
    assert.doesNotThrow(() => {
      promise = call()
    }, 'bad input rejects, never throws')
    const piece = typeof fragment === 'function' ? fragment() : fragment
    await assert.rejects(promise, (err) => {
      assert.ok(err instanceof Error)
      assert.equal(err.code, code, err.message)
      assert.ok(err.message.includes(piece), `${JSON.stringify(piece)} in ${JSON.stringify(err.message)}`)
      assert.ok(!err.message.includes(PASSWORD))
      return true
    })
  })
}
