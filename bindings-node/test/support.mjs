// Test support: a static C test program, an independent reader of the archives zeroimage writes
// (tar + node:crypto + zlib, nothing of ours), and the real runtimes that run the images.
// Not a test file itself: the suite runs `node --test test/*.test.mjs`.
import assert from 'node:assert/strict'
import { execFileSync, spawn, spawnSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { gunzipSync } from 'node:zlib'

export const PACKAGE_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
export const REPO_DIR = path.resolve(PACKAGE_DIR, '..')
export const HELLO_OUTPUT = 'hello from zeroimage\n'

const HELLO_C = `#include <stdio.h>
int main(int argc, char **argv) {
  printf("hello from zeroimage\\n");
  for (int i = 1; i < argc; i++) printf("arg %s\\n", argv[i]);
  return 0;
}
`

/** A fresh temporary directory, removed when the test process exits. */
export function tempDir(prefix = 'zeroimage-node-') {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix))
  process.once('exit', () => fs.rmSync(dir, { recursive: true, force: true }))
  return dir
}

/** Fail (never skip) when a tool the tests need is missing. */
export function requireTool(name) {
  const found = spawnSync('sh', ['-c', `command -v ${name}`], { encoding: 'utf8' })
  assert.equal(
    found.status,
    0,
    `${name} is not installed: run scripts/install-test-deps.sh (installs gcc, umoci, runc, docker.io, jq)`,
  )
  return found.stdout.trim()
}

let helloDir
/** A directory holding `hello` (a static C program) and `hello.c`; built once per process. */
export function helloFixture() {
  if (!helloDir) {
    requireTool('gcc')
    helloDir = tempDir('zeroimage-hello-')
    fs.writeFileSync(path.join(helloDir, 'hello.c'), HELLO_C)
    execFileSync('gcc', ['-static', '-O2', '-o', 'hello', 'hello.c'], { cwd: helloDir })
  }
  return helloDir
}

/** A static program of at least `mib` MiB: `hello` with random bytes appended (still runs). */
export function bigProgram(dir, mib) {
  const file = path.join(dir, 'big')
  fs.copyFileSync(path.join(helloFixture(), 'hello'), file)
  const chunk = Buffer.alloc(1 << 20)
  const fd = fs.openSync(file, 'a')
  for (let i = 0; i < mib; i++) {
    // Pseudo-random but cheap: incompressible enough to keep gzip busy.
    for (let j = 0; j < chunk.length; j += 4) chunk.writeUInt32LE((Math.random() * 0x100000000) >>> 0, j)
    fs.writeSync(fd, chunk)
  }
  fs.closeSync(fd)
  fs.chmodSync(file, 0o755)
  return file
}

export function sha256(bytes) {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`
}

/** Read a tar (ustar, with pax and GNU long names) into a Map of path → { type, mode, data }. */
export function readTar(buffer) {
  const entries = new Map()
  let offset = 0
  let longName = null
  const str = (start, len) => {
    const raw = buffer.subarray(offset + start, offset + start + len)
    const nul = raw.indexOf(0)
    return raw.subarray(0, nul === -1 ? raw.length : nul).toString('utf8')
  }
  const octal = (start, len) => parseInt(str(start, len).trim() || '0', 8)
  while (offset + 512 <= buffer.length) {
    const header = buffer.subarray(offset, offset + 512)
    if (header.every((b) => b === 0)) break
    const sum = header.reduce((acc, b, i) => acc + (i >= 148 && i < 156 ? 32 : b), 0)
    assert.equal(octal(148, 8), sum, `tar header checksum at offset ${offset}`)
    const size = octal(124, 12)
    const type = String.fromCharCode(header[156] || 48)
    const prefix = str(345, 155)
    let name = prefix ? `${prefix}/${str(0, 100)}` : str(0, 100)
    const data = buffer.subarray(offset + 512, offset + 512 + size)
    const meta = { type, mode: octal(100, 8), uid: octal(108, 8), gid: octal(116, 8) }
    offset += 512 + Math.ceil(size / 512) * 512
    if (type === 'x') {
      const m = /\d+ path=([^\n]*)\n/.exec(data.toString('utf8'))
      if (m) longName = m[1]
      continue
    }
    if (type === 'L') {
      longName = data.toString('utf8').replace(/\0+$/, '')
      continue
    }
    if (longName) [name, longName] = [longName, null]
    entries.set(name, { ...meta, data: Buffer.from(data) })
  }
  return entries
}

/**
 * Check an OCI archive the way a registry or runtime would, without any zeroimage code:
 * every blob's sha256 is its name and its descriptor's size, the layers' uncompressed sha256
 * are the config's diff_ids, Docker's manifest.json points at the same blobs.
 */
export function inspectArchive(file) {
  const entries = readTar(fs.readFileSync(file))
  const blob = (digest) => {
    const entry = entries.get(`blobs/sha256/${digest.replace(/^sha256:/, '')}`)
    assert.ok(entry, `blob ${digest} is in the archive`)
    assert.equal(sha256(entry.data), digest, `blob ${digest} hashes to its name`)
    return entry.data
  }
  const described = (descriptor) => {
    const data = blob(descriptor.digest)
    assert.equal(data.length, descriptor.size, `size of ${descriptor.digest}`)
    return data
  }
  for (const [name, entry] of entries) {
    if (name.startsWith('blobs/sha256/') && entry.type === '0') blob(`sha256:${name.slice(13)}`)
  }
  assert.deepEqual(JSON.parse(entries.get('oci-layout').data), { imageLayoutVersion: '1.0.0' })
  const index = JSON.parse(entries.get('index.json').data)
  assert.equal(index.schemaVersion, 2)
  assert.ok(index.manifests.length >= 1)
  const manifestBytes = described(index.manifests[0])
  const manifest = JSON.parse(manifestBytes)
  const configBytes = described(manifest.config)
  const config = JSON.parse(configBytes)
  const layers = manifest.layers.map((descriptor, i) => {
    const compressed = described(descriptor)
    const tar = descriptor.mediaType.endsWith('gzip') ? gunzipSync(compressed) : compressed
    assert.equal(sha256(tar), config.rootfs.diff_ids[i], `layer ${i} diff_id`)
    return { descriptor, files: readTar(tar) }
  })
  assert.equal(config.rootfs.diff_ids.length, manifest.layers.length)
  const dockerManifest = JSON.parse(entries.get('manifest.json').data)
  assert.equal(dockerManifest.length, 1)
  assert.equal(dockerManifest[0].Config, `blobs/sha256/${manifest.config.digest.slice(7)}`)
  assert.deepEqual(
    dockerManifest[0].Layers,
    manifest.layers.map((l) => `blobs/sha256/${l.digest.slice(7)}`),
  )
  const size = manifestBytes.length + manifest.config.size + manifest.layers.reduce((n, l) => n + l.size, 0)
  return {
    entries,
    index,
    manifest,
    manifestDigest: index.manifests[0].digest,
    config,
    configDigest: manifest.config.digest,
    layers,
    dockerManifest,
    size,
  }
}

/** The files of a directory (names only), to check that nothing was left behind. */
export function listDir(dir) {
  return fs.readdirSync(dir).sort()
}

/** Run an OCI archive's image with umoci + runc and return the container's stdout. */
export function runWithRunc(archive, ref) {
  for (const tool of ['umoci', 'runc', 'jq']) requireTool(tool)
  const work = tempDir('zeroimage-runc-')
  const layout = path.join(work, 'layout')
  const bundle = path.join(work, 'bundle')
  fs.mkdirSync(layout)
  execFileSync('tar', ['-xf', archive, '-C', layout])
  execFileSync('umoci', ['unpack', '--image', `${layout}:${ref}`, bundle], { stdio: 'pipe' })
  const configPath = path.join(bundle, 'config.json')
  const runtimeConfig = JSON.parse(fs.readFileSync(configPath, 'utf8'))
  runtimeConfig.process.terminal = false
  fs.writeFileSync(configPath, JSON.stringify(runtimeConfig))
  const name = `zeroimage-node-${process.pid}-${Date.now()}`
  const run = spawnSync('runc', ['run', '-b', bundle, name], { encoding: 'utf8', timeout: 60_000 })
  spawnSync('runc', ['delete', '-f', name])
  assert.equal(run.status, 0, `runc run failed: ${run.stderr}`)
  return run.stdout
}

/**
 * A private Docker engine (dockerd 20.10 via /usr/bin/docker, not a newer client on PATH) on its
 * own socket and directories; `stop()` ends exactly the daemon it started.
 */
export async function startDockerd() {
  requireTool('dockerd')
  assert.ok(fs.existsSync('/usr/bin/docker'), '/usr/bin/docker is missing: run scripts/install-test-deps.sh')
  const root = tempDir('zeroimage-dockerd-')
  const socket = path.join(root, 'docker.sock')
  const log = fs.openSync(path.join(root, 'dockerd.log'), 'w')
  const daemon = spawn(
    'dockerd',
    [
      '--iptables=false',
      '--ip6tables=false',
      '--bridge=none',
      '--storage-driver=vfs',
      `--data-root=${path.join(root, 'data')}`,
      `--exec-root=${path.join(root, 'exec')}`,
      `--pidfile=${path.join(root, 'docker.pid')}`,
      `--host=unix://${socket}`,
    ],
    { stdio: ['ignore', log, log] },
  )
  let exited = null
  daemon.on('exit', (code) => {
    exited = code
  })
  const docker = (args, options = {}) =>
    spawnSync('/usr/bin/docker', ['-H', `unix://${socket}`, ...args], { encoding: 'utf8', timeout: 120_000, ...options })
  const stop = async () => {
    if (exited !== null) return
    const done = new Promise((resolve) => daemon.once('exit', resolve))
    daemon.kill('SIGTERM')
    const timer = setTimeout(() => daemon.kill('SIGKILL'), 20_000)
    await done
    clearTimeout(timer)
  }
  process.once('exit', () => exited === null && daemon.kill('SIGKILL'))
  const deadline = Date.now() + 60_000
  while (Date.now() < deadline) {
    if (exited !== null) break
    if (fs.existsSync(socket) && docker(['version']).status === 0) return { docker, stop }
    await new Promise((resolve) => setTimeout(resolve, 250))
  }
  await stop()
  assert.fail(`dockerd did not start: ${fs.readFileSync(path.join(root, 'dockerd.log'), 'utf8').slice(-2000)}`)
}

/** The ```js blocks of a markdown file (none when the file does not exist). */
export function jsSnippets(file) {
  if (!fs.existsSync(file)) return []
  const text = fs.readFileSync(file, 'utf8')
  return [...text.matchAll(/^```(?:js|javascript|mjs|cjs)\n([\s\S]*?)^```/gm)].map((m) => m[1])
}

/** The test bed's binary (`cargo build -p zeroimage-tests`; scripts/test.sh builds it). */
export function testbed() {
  const target = process.env.CARGO_TARGET_DIR || path.join(REPO_DIR, 'target')
  const bin = process.env.ZEROIMAGE_TESTBED || path.join(target, 'debug', 'zeroimage-testbed')
  assert.ok(fs.existsSync(bin), `${bin} is missing: run cargo build -p zeroimage-tests (bindings-node/scripts/test.sh does)`)
  return bin
}

/**
 * A private registry from the test bed (`zeroimage-testbed registry [--auth U:P] [--tls]`):
 * `info` is its JSON line (`addr`, `ca_cert`, `flags` for skopeo, `log`, …); `stop()` closes
 * its stdin, which stops exactly that registry and removes its files.
 */
export async function startRegistry(...args) {
  requireTool('docker-registry')
  const child = spawn(testbed(), ['registry', ...args], { stdio: ['pipe', 'pipe', 'inherit'] })
  process.once('exit', () => child.exitCode === null && child.kill('SIGKILL'))
  const line = await new Promise((resolve, reject) => {
    let buffered = ''
    child.stdout.on('data', (chunk) => {
      buffered += chunk
      const end = buffered.indexOf('\n')
      if (end !== -1) resolve(buffered.slice(0, end))
    })
    child.once('exit', (code) => reject(new Error(`zeroimage-testbed registry exited with ${code}`)))
  })
  const stop = async () => {
    if (child.exitCode !== null) return
    const done = new Promise((resolve) => child.once('exit', resolve))
    child.stdin.end()
    await done
  }
  return { info: JSON.parse(line), stop }
}

/** `skopeo inspect [--raw] FLAGS… docker://REF`: the image facts, or with `raw` the manifest bytes. */
export function skopeoInspect(ref, flags = [], { raw = false } = {}) {
  requireTool('skopeo')
  const args = ['inspect', ...(raw ? ['--raw'] : []), ...flags, `docker://${ref}`]
  const out = spawnSync('skopeo', args, { timeout: 60_000 })
  assert.equal(out.status, 0, `skopeo ${args.join(' ')}: ${out.stderr}`)
  return raw ? out.stdout : JSON.parse(out.stdout.toString('utf8'))
}
