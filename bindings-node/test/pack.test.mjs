// `npm pack` gives the napi-rs layout: a main package of JS and types, and a platform package
// (npm/linux-x64-gnu + the addon, as `napi artifacts` fills it). Both install into a fresh project
// and work there: the bin, a build from code (ESM and CommonJS). scripts/test-dist.sh does the
// same with the release tarballs of `make dist`.
import assert from 'node:assert/strict'
import { execFileSync, spawnSync } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { before, test } from 'node:test'
import { HELLO_OUTPUT, PACKAGE_DIR, helloFixture, inspectArchive, runWithRunc, tempDir } from './support.mjs'

const pkg = JSON.parse(fs.readFileSync(path.join(PACKAGE_DIR, 'package.json'), 'utf8'))
const npm = (args, cwd) => {
  const run = spawnSync('npm', ['--no-audit', '--no-fund', '--loglevel=error', ...args], { cwd, encoding: 'utf8' })
  assert.equal(run.status, 0, `npm ${args.join(' ')}: ${run.stdout}${run.stderr}`)
  return run.stdout
}

let project
let tarball
let platformTarball
before(() => {
  const packDir = tempDir('zeroimage-pack-')
  const packed = JSON.parse(npm(['pack', '--json', '--pack-destination', packDir], PACKAGE_DIR))
  tarball = path.join(packDir, packed[0].filename)
  const platformDir = tempDir('zeroimage-platform-')
  for (const file of ['package.json', 'README.md']) {
    fs.copyFileSync(path.join(PACKAGE_DIR, 'npm', 'linux-x64-gnu', file), path.join(platformDir, file))
  }
  fs.copyFileSync(path.join(PACKAGE_DIR, 'LICENSE'), path.join(platformDir, 'LICENSE'))
  fs.copyFileSync(path.join(PACKAGE_DIR, 'zeroimage.linux-x64-gnu.node'), path.join(platformDir, 'zeroimage.linux-x64-gnu.node'))
  const platformPacked = JSON.parse(npm(['pack', '--json', '--pack-destination', packDir], platformDir))
  platformTarball = path.join(packDir, platformPacked[0].filename)
  project = tempDir('zeroimage-project-')
  fs.writeFileSync(path.join(project, 'package.json'), JSON.stringify({ name: 'consumer', version: '1.0.0', private: true }))
  npm(['install', tarball, platformTarball], project)
  fs.copyFileSync(path.join(helloFixture(), 'hello'), path.join(project, 'hello'))
})

test('the main tarball holds the loaders, types, ESM wrapper, bin, README and LICENSE, and no addon', () => {
  assert.equal(path.basename(tarball), `zeroimage-${pkg.version}.tgz`)
  const files = execFileSync('tar', ['-tzf', tarball], { encoding: 'utf8' }).trim().split('\n').sort()
  assert.deepEqual(files, [
    'package/LICENSE',
    'package/README.md',
    'package/cli.js',
    'package/index.d.ts',
    'package/index.js',
    'package/index.mjs',
    'package/native.js',
    'package/package.json',
  ])
})

test('the platform tarball is zeroimage-linux-x64-gnu: the addon, os/cpu/libc, LICENSE', () => {
  assert.equal(path.basename(platformTarball), `zeroimage-linux-x64-gnu-${pkg.version}.tgz`)
  const files = execFileSync('tar', ['-tzf', platformTarball], { encoding: 'utf8' }).trim().split('\n').sort()
  assert.deepEqual(files, ['package/LICENSE', 'package/README.md', 'package/package.json', 'package/zeroimage.linux-x64-gnu.node'])
  const platform = JSON.parse(fs.readFileSync(path.join(project, 'node_modules', 'zeroimage-linux-x64-gnu', 'package.json'), 'utf8'))
  assert.deepEqual([platform.os, platform.cpu, platform.libc], [['linux'], ['x64'], ['glibc']])
  assert.equal(platform.version, pkg.version)
  assert.deepEqual(platform.engines, pkg.engines)
})

test('npx zeroimage --help works in the installed project', () => {
  const help = spawnSync('npx', ['--no-install', 'zeroimage', '--help'], { cwd: project, encoding: 'utf8' })
  assert.equal(help.status, 0, help.stderr)
  assert.match(help.stdout, /Usage: zeroimage <COMMAND>/)
  const version = spawnSync('npx', ['--no-install', 'zeroimage', '--version'], { cwd: project, encoding: 'utf8' })
  assert.equal(version.stdout, `zeroimage ${pkg.version}\n`)
})

test('npx zeroimage build makes an image that runs', () => {
  const build = spawnSync('npx', ['--no-install', 'zeroimage', 'build', './hello', '--tag', 'hello:packed', '--quiet'], {
    cwd: project,
    encoding: 'utf8',
  })
  assert.equal(build.status, 0, build.stderr)
  const image = inspectArchive(path.join(project, 'hello.tar'))
  assert.equal(build.stdout.trim(), image.manifestDigest)
  assert.equal(runWithRunc(path.join(project, 'hello.tar'), 'packed'), HELLO_OUTPUT)
})

test('import and require of the installed package build images', () => {
  fs.writeFileSync(
    path.join(project, 'build.mjs'),
    `import { buildImage } from 'zeroimage'
const r = await buildImage({ entrypoint: './hello', output: 'esm.tar' })
console.log(r.digest)
`,
  )
  fs.writeFileSync(
    path.join(project, 'build.cjs'),
    `const { buildImage } = require('zeroimage')
buildImage({ entrypoint: './hello', output: 'cjs.tar' }).then((r) => console.log(r.digest))
`,
  )
  const esm = execFileSync(process.execPath, ['build.mjs'], { cwd: project, encoding: 'utf8' }).trim()
  const cjs = execFileSync(process.execPath, ['build.cjs'], { cwd: project, encoding: 'utf8' }).trim()
  assert.equal(esm, cjs)
  assert.equal(inspectArchive(path.join(project, 'esm.tar')).manifestDigest, esm)
  assert.ok(fs.realpathSync(path.join(project, 'node_modules', 'zeroimage')).startsWith(project), 'a copy, not a link')
})
