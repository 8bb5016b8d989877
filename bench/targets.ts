import { spawn, type ChildProcess } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import readline from 'node:readline'
import { fileURLToPath } from 'node:url'
import { startMosquitto } from './peers/mosquitto.ts'
import { withPassword } from '../test/helpers/database-url.ts'

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')

export interface Target {
  name: string
  mqttUrl: string
  /** Processes whose CPU counts as the broker's: the broker first, then (vgw) its PostgreSQL's. */
  pids: () => number[]
  stop: () => Promise<void>
}

async function firstLine (child: ChildProcess, match: RegExp, timeoutMs: number): Promise<RegExpExecArray> {
  const lines = readline.createInterface({ input: child.stdout as NodeJS.ReadableStream })
  return await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no line matching ${String(match)} within ${timeoutMs} ms`)), timeoutMs)
    lines.on('line', (line) => {
      const m = match.exec(line)
      if (m !== null) {
        clearTimeout(timer)
        resolve(m)
      }
    })
    child.once('exit', (code) => reject(new Error(`exited with ${String(code)} before it listened`)))
  })
}

async function stopChild (child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return
  const exited = new Promise((resolve) => child.once('exit', resolve))
  child.kill('SIGTERM')
  await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 20_000))])
  if (child.exitCode === null) child.kill('SIGKILL')
}

/** The postmaster serving dataDir and its children (backends, WAL writer, checkpointer…), whose command lines do not name the directory. */
function postgresPids (dataDir: string): number[] {
  const postmasters = new Set<number>()
  const parents = new Map<number, number>()
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue
    try {
      if (fs.readFileSync(`/proc/${entry}/cmdline`, 'utf8').includes(dataDir)) postmasters.add(Number(entry))
      parents.set(Number(entry), Number(/PPid:\s+(\d+)/.exec(fs.readFileSync(`/proc/${entry}/status`, 'utf8'))?.[1] ?? 0))
    } catch {
      // gone
    }
  }
  return [...parents].filter(([pid, ppid]) => postmasters.has(pid) || postmasters.has(ppid)).map(([pid]) => pid)
}

export type VgwTarget = Target & { apiUrl: string, apiKey: string, databaseUrl: () => string | null }

/** vgw as a user runs it: mutual TLS, protobuf, PUBACK after commit, embedded PostgreSQL unless DATABASE_URL. */
export async function startVgw (workDir: string, certDir: string, nodeArgs: string[] = []): Promise<VgwTarget> {
  const dataDir = path.join(workDir, 'data')
  const child = spawn(process.execPath, [...nodeArgs, path.join(ROOT, 'bin/vgw.js'), 'start'], {
    cwd: workDir,
    env: {
      ...process.env,
      ...(process.env.DATABASE_URL !== undefined && process.env.DATABASE_URL !== '' ? { DATABASE_URL: withPassword(process.env.DATABASE_URL) } : {}),
      VGW_DATA_DIR: dataDir,
      VGW_HOST: '127.0.0.1',
      VGW_MQTT_PORT: '0',
      VGW_HTTP_PORT: '0',
      VGW_LOG_LEVEL: 'warn',
      VGW_TLS_CA: path.join(certDir, 'ca.crt'),
      VGW_TLS_CERT: path.join(certDir, 'server.crt'),
      VGW_TLS_KEY: path.join(certDir, 'server.key'),
      VGW_TLS_CRL: path.join(certDir, 'crl.pem'),
      // The whole fleet connects from 127.0.0.1: the per-address bounds are for production peers.
      VGW_MAX_CONNECTIONS_PER_ADDRESS: '10000000',
      VGW_HANDSHAKE_RATE_PER_ADDRESS: '1000000',
      // R3 offers more than the default 5,000 requests/s per key, and a key's first lookups count
      // against its address's budget: the bench measures load shedding, not the rate limits.
      VGW_API_RATE_LIMIT_PER_KEY: '1000000',
      VGW_API_RATE_LIMIT_PER_ADDRESS: '1000000',
      // The open-loop REST scenarios hold thousands of keep-alive connections from 127.0.0.1.
      VGW_HTTP_MAX_CONNECTIONS_PER_ADDRESS: '10000000'
    },
    stdio: ['ignore', 'pipe', 'inherit']
  })
  const m = await firstLine(child, /^vgw ready: MQTT over mutual TLS on [^:]+:(\d+), HTTP on [^:]+:(\d+)/, 120_000)
  return {
    name: 'vgw (mTLS, PUBACK after commit)',
    mqttUrl: `mqtts://127.0.0.1:${m[1] as string}`,
    apiUrl: `http://127.0.0.1:${m[2] as string}`,
    apiKey: fs.readFileSync(path.join(dataDir, 'admin.key'), 'utf8').trim(),
    databaseUrl: () => (process.env.DATABASE_URL !== undefined && process.env.DATABASE_URL !== '' ? withPassword(process.env.DATABASE_URL) : null) ?? (fs.existsSync(path.join(dataDir, 'postgres.url')) ? fs.readFileSync(path.join(dataDir, 'postgres.url'), 'utf8').trim() : null),
    pids: () => [child.pid as number, ...postgresPids(path.join(dataDir, 'pg'))],
    stop: () => stopChild(child)
  }
}

export async function startBareAedes (certDir: string | null): Promise<Target> {
  const child = spawn(process.execPath, ['--import', import.meta.resolve('tsx'), path.join(ROOT, 'bench/peers/bare-aedes.ts'), ...(certDir !== null ? ['--tls', certDir] : [])], {
    stdio: ['ignore', 'pipe', 'inherit']
  })
  const m = await firstLine(child, /^\{"port":(\d+)\}/, 30_000)
  return {
    name: certDir !== null ? 'bare Aedes, mTLS, no database' : 'bare Aedes, plain TCP, no database',
    mqttUrl: `${certDir !== null ? 'mqtts' : 'mqtt'}://127.0.0.1:${m[1] as string}`,
    pids: () => [child.pid as number],
    stop: () => stopChild(child)
  }
}

export async function startMosquittoTarget (certDir: string, workDir: string): Promise<Target | null> {
  const m = await startMosquitto(certDir, workDir)
  if (m === null) return null
  return { name: 'Mosquitto, mTLS, no persistence', mqttUrl: `mqtts://127.0.0.1:${m.port}`, pids: () => [m.child.pid as number], stop: () => stopChild(m.child) }
}

/** CPU seconds and resident memory of processes, from /proc (Linux). */
export function usage (pids: number[]): { cpuSeconds: number, rssMiB: number } {
  let ticks = 0
  let rss = 0
  for (const pid of pids) {
    try {
      const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8')
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
      // utime, stime and the reaped children's (a PostgreSQL backend that exits between two samples keeps counting in its postmaster's)
      ticks += Number(fields[11]) + Number(fields[12]) + Number(fields[13]) + Number(fields[14])
      const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8')
      rss += Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0)
    } catch {
      // gone
    }
  }
  return { cpuSeconds: ticks / 100, rssMiB: Math.round(rss / 1024) }
}
