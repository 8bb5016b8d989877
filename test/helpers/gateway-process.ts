import os from 'node:os'
import { spawn, type ChildProcess } from 'node:child_process'
import path from 'node:path'
import readline from 'node:readline'
import type { Test } from 'tap'
import { withPassword } from './database-url.ts'

export const ROOT = path.resolve(import.meta.dirname, '../..')

/** `node bin/vgw.js start [args]` as its own process, as a user runs it. */
export async function startVgw (env: NodeJS.ProcessEnv, args: string[] = []): Promise<GatewayProcess> {
  return await spawnGateway(process.execPath, [path.join(ROOT, 'bin/vgw.js'), 'start', ...args], env)
}

/** startVgw, stopped (SIGTERM, then waited for) when the test ends. */
export async function startVgwForTest (t: Test, env: NodeJS.ProcessEnv, args: string[] = []): Promise<GatewayProcess> {
  const gw = await startVgw(env, args)
  t.teardown(async () => {
    signalGroup(gw, 'SIGTERM')
    await gw.exited
  })
  return gw
}

/** Sends a signal to the whole process group (npm, its shell and the gateway). */
export function signalGroup (p: GatewayProcess, signal: NodeJS.Signals): void {
  try {
    process.kill(-(p.child.pid as number), signal)
  } catch {
    // already gone
  }
}

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
  // Its own process group, so that a signal can reach npm and the gateway under it, as a terminal's would.
  const child = spawn(command, args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'], detached: true })
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

/** The environment of a gateway process under test: its PKI's files, loopback, ports 0. */
export function gatewayEnv (paths: { caCert: string, serverCert: string, serverKey: string, crl: string }, extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const inherited = process.env.DATABASE_URL
  return {
    ...process.env,
    ...(inherited !== undefined && inherited !== '' ? { DATABASE_URL: withPassword(inherited) } : {}),
    VGW_HOST: '127.0.0.1',
    VGW_MQTT_PORT: '0',
    VGW_HTTP_PORT: '0',
    VGW_TLS_CA: paths.caCert,
    VGW_TLS_CERT: paths.serverCert,
    VGW_TLS_KEY: paths.serverKey,
    VGW_TLS_CRL: paths.crl,
    // Used only when a test sets VGW_REDIS_URL: the gateways of a test cluster share it.
    VGW_CLUSTER_SECRET: TEST_CLUSTER_SECRET,
    // The ledger's checkpoints of test gateways go to the temporary directory, not the repository's .data.
    VGW_LEDGER_DIR: path.join(os.tmpdir(), `vgw-test-ledger-${process.pid}`),
    ...extra
  }
}

/** The bus secret of test clusters (at least 32 characters). */
export const TEST_CLUSTER_SECRET = 'vgw-test-cluster-secret-0123456789abcdef'
