// ESM entry point: the same native binding as `require('zeroimage')`.
import { createRequire } from 'node:module'

const binding = createRequire(import.meta.url)('./native.js')

export const { Image, buildImage, writeBase, login, logout, runCli, VERSION } = binding
export default binding
