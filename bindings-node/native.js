// The package's CommonJS entry: the native addon, loaded by napi-rs's generated index.js.
// When no addon loads, the error names the platform package this system needs and what to do,
// instead of napi's generic "Cannot find native binding".
'use strict'

const { optionalDependencies = {}, version } = require('./package.json')

/** The platform package napi-rs's loader looks for on this system, e.g. zeroimage-linux-x64-gnu. */
function platformPackage() {
  let abi = ''
  if (process.platform === 'linux') {
    const report = typeof process.report?.getReport === 'function' ? process.report.getReport() : null
    abi = report?.header?.glibcVersionRuntime ? '-gnu' : '-musl'
  } else if (process.platform === 'win32') {
    abi = '-msvc'
  }
  return `zeroimage-${process.platform}-${process.arch}${abi}`
}

try {
  module.exports = require('./index.js')
} catch (cause) {
  const wanted = platformPackage()
  const known = Object.keys(optionalDependencies)
  const published = known.length > 0 ? known : null
  const message =
    published && !published.includes(wanted)
      ? `zeroimage ${version} has no native addon for this system (${wanted}); ` +
        `prebuilt: ${published.map((p) => p.replace('zeroimage-', '')).join(', ')}. ` +
        'Use the zeroimage CLI or the Python package on a supported system, or build the addon from source (README: "Building from source").'
      : `zeroimage ${version} cannot load its native addon: the package ${wanted}@${version} is not installed or does not load. ` +
        `Install it next to zeroimage (npm install ${wanted}@${version}); if npm skipped it, reinstall without ` +
        '--omit=optional / --no-optional and make sure the lockfile was not created on another platform.'
  const error = new Error(message)
  error.code = 'ERR_ZEROIMAGE_NATIVE_ADDON'
  error.cause = cause
  throw error
}
