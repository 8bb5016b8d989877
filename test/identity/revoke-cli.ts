import { execFile } from 'node:child_process'
import path from 'node:path'
import { promisify } from 'node:util'
import { ROOT } from '../helpers/gateway-process.ts'

const run = promisify(execFile)

/** `vgw certs revoke` as an operator runs it; resolves with the time the command took. */
export async function revokeWithCli (pkiDir: string, vin: string): Promise<number> {
  const started = performance.now()
  await run(process.execPath, [path.join(ROOT, 'bin/vgw.js'), 'certs', 'revoke', '--vin', vin, '--dir', pkiDir], { cwd: ROOT })
  return performance.now() - started
}

