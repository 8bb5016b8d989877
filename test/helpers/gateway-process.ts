import { spawn, type ChildProcess } from 'node:child_process'
import path from 'node:path'
import readline from 'node:readline'

export const ROOT = path.resolve(import.meta.dirname, '../..')

export interface GatewayProcess {
  child: ChildProcess
  mqttPort: number
  httpPort: number
  /** Every stdout line so far. */
  output: string[]
  exited: Promise<{ code: number | null, signal: NodeJS.Signals | null }>
}

/**
 * Runs a command that starts a gateway (`node bin/vgw.js start`, `npm start`) as its own
 * process and resolves once it logs that it listens, with the ports it bound.
 */
export async function spawnGateway (command: string, args: string[], env: NodeJS.ProcessEnv, cwd = ROOT, timeoutMs = 60_000): Promise<GatewayProcess> {
  const child = spawn(command, args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] })
  const output: string[] = []
  const exited = new Promise<{ code: number | null, signal: NodeJS.Signals | null }>((resolve) => {
    child.once('exit', (code, signal) => resolve({ code, signal }))
  })
  const stderr: string[] = []
  child.stderr?.on('data', (d: Buffer) => stderr.push(d.toString()))
  return await new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL')
      reject(new Error(`gateway did not listen within ${timeoutMs} ms:\n${output.join('\n')}\n${stderr.join('')}`))
    }, timeoutMs)
    void exited.then(({ code, signal }) => {
      clearTimeout(timer)
      reject(new Error(`gateway exited (${code ?? signal}) before listening:\n${output.join('\n')}\n${stderr.join('')}`))
    })
    const lines = readline.createInterface({ input: child.stdout as NodeJS.ReadableStream })
    lines.on('line', (line) => {
      output.push(line)
      if (!line.startsWith('{')) return
      const parsed = JSON.parse(line) as { msg?: string, mqttPort?: number, httpPort?: number }
      if (parsed.msg === 'gateway listening' && parsed.mqttPort !== undefined && parsed.httpPort !== undefined) {
        clearTimeout(timer)
        resolve({ child, mqttPort: parsed.mqttPort, httpPort: parsed.httpPort, output, exited })
      }
    })
  })
}
