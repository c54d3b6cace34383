// The package as users see it: require and import, the `zeroimage` bin, the TypeScript types,
// and one version everywhere.
import assert from 'node:assert/strict'
import { execFileSync, spawnSync } from 'node:child_process'
import fs from 'node:fs'
import { createRequire } from 'node:module'
import path from 'node:path'
import { test } from 'node:test'
import zeroimageDefault, * as zeroimage from 'zeroimage'
import { PACKAGE_DIR, REPO_DIR, helloFixture, inspectArchive, listDir, tempDir } from './support.mjs'

const require = createRequire(import.meta.url)
const pkg = JSON.parse(fs.readFileSync(path.join(PACKAGE_DIR, 'package.json'), 'utf8'))
const cli = path.join(PACKAGE_DIR, 'cli.js')

test('CommonJS require and ESM import give the same binding', async () => {
  const cjs = require('zeroimage')
  assert.equal(typeof cjs.buildImage, 'function')
  assert.equal(typeof cjs.runCli, 'function')
  assert.equal(zeroimage.buildImage, cjs.buildImage)
  assert.equal(zeroimage.runCli, cjs.runCli)
  // ESM names every function the CommonJS module exports.
  const functions = Object.keys(cjs).filter((name) => typeof cjs[name] === 'function').sort()
  assert.deepEqual(functions, ['Image', 'buildImage', 'login', 'logout', 'runCli', 'writeBase'])
  for (const name of functions) assert.equal(zeroimage[name], cjs[name], `ESM export ${name}`)
  assert.equal(zeroimageDefault.buildImage, cjs.buildImage)
  // From a plain .cjs and .mjs file outside the test runner too.
  const dir = tempDir()
  fs.writeFileSync(
    path.join(dir, 'a.cjs'),
    `const { buildImage, VERSION } = require(${JSON.stringify(PACKAGE_DIR)}); console.log(typeof buildImage, VERSION)`,
  )
  fs.writeFileSync(
    path.join(dir, 'b.mjs'),
    `import { buildImage, VERSION } from ${JSON.stringify(path.join(PACKAGE_DIR, 'index.mjs'))}; console.log(typeof buildImage, VERSION)`,
  )
  for (const file of ['a.cjs', 'b.mjs']) {
    assert.equal(execFileSync(process.execPath, [path.join(dir, file)], { encoding: 'utf8' }), `function ${pkg.version}\n`)
  }
})

test('the npm version equals the workspace version', () => {
  const cargo = fs.readFileSync(path.join(REPO_DIR, 'Cargo.toml'), 'utf8')
  const workspacePackage = cargo.slice(cargo.indexOf('[workspace.package]'))
  const version = /^version\s*=\s*"([^"]+)"/m.exec(workspacePackage)[1]
  assert.equal(pkg.version, version)
  assert.equal(zeroimage.VERSION, version)
  const out = spawnSync(process.execPath, [cli, '--version'], { encoding: 'utf8' })
  assert.equal(out.stdout, `zeroimage ${version}\n`)
})

test('package.json declares the bin, engines, napi targets and both module formats', () => {
  assert.deepEqual(pkg.bin, { zeroimage: 'cli.js' })
  assert.equal(pkg.engines.node, '>= 20')
  assert.equal(pkg.napi.binaryName, 'zeroimage')
  assert.ok(pkg.napi.targets.includes('x86_64-unknown-linux-gnu'))
  assert.equal(pkg.exports['.'].require, './native.js')
  assert.equal(pkg.main, 'native.js')
  assert.equal(pkg.exports['.'].import, './index.mjs')
  assert.equal(pkg.exports['.'].types, './index.d.ts')
  assert.ok(fs.readFileSync(cli, 'utf8').startsWith('#!/usr/bin/env node\n'))
  assert.ok(fs.statSync(cli).mode & 0o111, 'cli.js is executable')
})

test('cli.js is the core CLI: help, usage errors, builds, exit codes', () => {
  const run = (args, cwd) => spawnSync(process.execPath, [cli, ...args], { cwd, encoding: 'utf8' })
  const help = run(['--help'])
  assert.equal(help.status, 0)
  assert.match(help.stdout, /Usage: zeroimage <COMMAND>/)
  assert.match(run(['build', '--help']).stdout, /--compression-level <LEVEL>/)
  const usage = run(['build'])
  assert.equal(usage.status, 2)
  assert.match(usage.stderr, /required arguments were not provided/)
  assert.equal(run(['frobnicate']).status, 2)

  const dir = tempDir()
  const hello = path.join(helloFixture(), 'hello')
  const built = run(['build', hello, '--tag', 'hello:cli', '--json', '--', 'a'], dir)
  assert.equal(built.status, 0, built.stderr)
  const json = JSON.parse(built.stdout)
  assert.equal(json.output, 'oci-archive:hello.tar')
  assert.deepEqual(listDir(dir), ['hello.tar'])
  const image = inspectArchive(path.join(dir, 'hello.tar'))
  assert.equal(image.manifestDigest, json.digest)
  assert.deepEqual(image.config.config.Cmd, ['a'])

  const failed = run(['build', path.join(dir, 'missing')], dir)
  assert.equal(failed.status, 1)
  assert.match(failed.stderr, /^error: program .*missing not found\n$/)
})

test('runCli resolves to the exit code and sets no process state', async () => {
  assert.equal(await zeroimage.runCli(['build']), 2)
  assert.equal(await zeroimage.runCli(['build', '/nonexistent/program']), 1)
  assert.equal(process.exitCode, undefined)
  const src = fs.readFileSync(cli, 'utf8')
  assert.ok(!/process\.exit\(/.test(src), 'cli.js sets process.exitCode instead of calling process.exit()')
})

test('Ctrl-C on the bin cancels the build: exit 1, nothing written', async () => {
  const { bigProgram } = await import('./support.mjs')
  const dir = tempDir()
  const big = bigProgram(dir, 64)
  const { spawn } = await import('node:child_process')
  const child = spawn(process.execPath, [cli, 'build', big, '--compression-level', '9', '-o', 'out.tar'], { cwd: dir })
  let stderr = ''
  child.stderr.on('data', (d) => {
    stderr += d
  })
  // Wait until the build is under way (its temporary layer file appears), then interrupt.
  const deadline = Date.now() + 60_000
  while (listDir(dir).length < 2 && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
  child.kill('SIGINT')
  const code = await new Promise((resolve) => child.on('exit', (c) => resolve(c)))
  assert.equal(code, 1, stderr)
  assert.match(stderr, /error: build cancelled; nothing was written/)
  assert.deepEqual(listDir(dir), ['big'])
})

test('index.d.ts type-checks a usage file, and rejects a wrong one (tsc --strict)', () => {
  const tsc = path.join(PACKAGE_DIR, 'node_modules', 'typescript', 'bin', 'tsc')
  assert.ok(fs.existsSync(tsc), 'typescript is a devDependency: run npm install in bindings-node')
  const dir = tempDir('zeroimage-tsc-')
  const good = `import { Image, buildImage, login, logout, runCli, writeBase, VERSION, type BuildImageOptions, type BuildResult, type LoginOptions, type ProgressEvent, type WriteBaseOptions } from 'zeroimage'
const controller = new AbortController()
const options: BuildImageOptions = {
  entrypoint: './dist/server', base: 'scratch', platform: 'linux/arm64', output: 'server.tar',
  tag: ['registry.example.com/server:1.0'], env: { RUST_LOG: 'info' }, args: ['--port', '8080'],
  user: '65532', workdir: '/srv', path: '/app/server', labels: {}, annotations: {}, allowDynamic: false,
  format: 'oci', compressionLevel: 9, signal: controller.signal, add: ['./static:/srv/static'], addOwner: '65532',
  addFollowSymlinks: false, sourceDateEpoch: 0,
  onProgress: (event: ProgressEvent) => { const s: 'layer' | 'write' = event.stage; void s; void event.total },
  push: ['localhost:5000/server:1.0', 'docker://localhost:5000/server:latest'], insecure: true,
  caCert: '/etc/ssl/private-ca.pem', creds: 'me:secret', timeout: 30, onLog: (line: string) => { void line.length },
}
const loginOptions: LoginOptions = { insecure: false, caCert: ['/etc/ssl/a.pem'], timeout: 10 }
const baseOptions: WriteBaseOptions = {
  base: 'builtin:static', output: 'static.tar', tag: 'static:1', platform: 'linux/arm64', format: 'docker',
  annotations: { a: 'b' },
}
export async function main(): Promise<string> {
  const result: BuildResult = await buildImage(options)
  const pushed: string[] = result.pushed
  const source: string = await login('localhost:5000', 'me', 'secret', loginOptions)
  const erased: boolean = await logout('localhost:5000')
  const base: BuildResult = await writeBase(baseOptions)
  const image: Image = await Image.fromBase('builtin:static', { platform: 'linux/amd64', compression: 'zstd', jobs: 2 })
  await image.addFiles(['./static:/srv/static', { src: './config.yaml', dest: '/etc/app/config.yaml', owner: '65532' }], { followSymlinks: true })
  await image.addProgram('./server', { path: '/app/server' })
  image.setEnv('A', 'b'); image.setCmd(['--port', '8080'])
  const written: BuildResult = await image.write({ output: 'server.tar', push: ['localhost:5000/server:1'], tag: 'server:1' })
  const layers: number = image.layerCount + written.size
  const code: number = await runCli(['--help'])
  const size: number = result.size
  return layers + result.digest + result.configDigest + result.platform + result.output + result.outputs.join() + result.tags.join() + code + size + VERSION + pushed.join() + source + erased + base.digest
}
`
  const bad = `import { buildImage, login, logout, writeBase } from 'zeroimage'
export const a = buildImage({ output: 'x.tar' })
export const b = buildImage({ entrypoint: './x', tag: 1 })
export async function c(): Promise<string> {
  return (await buildImage({ entrypoint: './x' })).size
}
export const d = buildImage({ entrypoint: './x', push: 5 })
export const e = login('localhost:5000', 'me')
export async function f(): Promise<string> {
  return await logout('localhost:5000')
}
export const g = writeBase({ output: 'x.tar' })
export const h = buildImage({ entrypoint: './x', format: 'zip' })
export const i = buildImage({ entrypoint: './x', compression: 'gzp' })
export const j = buildImage({ entrypoint: './x', add: 5 })
`
  fs.mkdirSync(path.join(dir, 'node_modules'))
  fs.symlinkSync(PACKAGE_DIR, path.join(dir, 'node_modules', 'zeroimage'))
  fs.writeFileSync(path.join(dir, 'good.ts'), good)
  fs.writeFileSync(path.join(dir, 'bad.ts'), bad)
  // lib dom for AbortController/AbortSignal, so @types/node is not needed.
  const args = ['--noEmit', '--strict', '--module', 'nodenext', '--moduleResolution', 'nodenext', '--target', 'es2022', '--lib', 'es2022,dom']
  const ok = spawnSync(process.execPath, [tsc, ...args, 'good.ts'], { cwd: dir, encoding: 'utf8' })
  assert.equal(ok.status, 0, ok.stdout + ok.stderr)
  const ko = spawnSync(process.execPath, [tsc, ...args, 'bad.ts'], { cwd: dir, encoding: 'utf8' })
  assert.notEqual(ko.status, 0)
  assert.match(ko.stdout, /bad\.ts\(2,\d+\): error TS2345/)
  assert.match(ko.stdout, /bad\.ts\(3,/)
  assert.match(ko.stdout, /bad\.ts\(5,/)
  for (const line of [7, 8, 10, 12, 13, 14, 15]) assert.match(ko.stdout, new RegExp(`bad\\.ts\\(${line},`))
})
