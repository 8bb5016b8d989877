// The legal export at scale: one VIN with N rows (default 1,000,000) exported through the CLI
// (`vgw export`) and over REST (GET /v1/vehicles/{vin}/export on `vgw start`), each verified
// with `vgw export verify`; reports the times and the gateway's peak RSS during the REST export.
// npx tsx bench/export-bench.ts [rows=1000000]
// DATABASE_URL names the PostgreSQL server to use (a database of its own is created in it and
// dropped afterwards); unset: an embedded one.
import { execFile } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { pipeline } from 'node:stream/promises'
import { Readable } from 'node:stream'
import pg from 'pg'
import { v7 as uuidv7 } from 'uuid'
import { openStore } from '../store/index.ts'
import { fillVehicleRows } from '../test/helpers/bulk-rows.ts'
import { ROOT, signalGroup, startVgw } from '../test/helpers/gateway-process.ts'
import { benchDatabase } from './bench-database.ts'

const rows = Number(process.argv[2] ?? 1_000_000)
const VIN = 'WVWZZZ1JZXW001000'
const to = new Date(Date.now() - 24 * 3600_000)
const from = new Date(to.getTime() - 30 * 24 * 3600_000)

function vgw (args: string[], env: NodeJS.ProcessEnv): Promise<{ seconds: number, stdout: string }> {
  const started = performance.now()
  return new Promise((resolve, reject) => {
    execFile(process.execPath, ['bin/vgw.js', ...args], { cwd: ROOT, env, encoding: 'utf8', maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (err !== null) reject(new Error(`vgw ${args.join(' ')}: ${err.message}\n${stderr}`))
      else resolve({ seconds: (performance.now() - started) / 1000, stdout })
    })
  })
}

/** kB from /proc/PID/status (VmHWM: the peak resident set since the process started). */
function procStatus (pid: number, field: 'VmHWM' | 'VmRSS'): number {
  const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))
  return Number(m?.[1] ?? NaN)
}

/** The response body to DIR/transactions.ndjson, its last line (the manifest) to DIR/manifest.json. */
async function restExport (baseUrl: string, key: string, dir: string): Promise<number> {
  const started = performance.now()
  const res = await fetch(`${baseUrl}/v1/vehicles/${VIN}/export?from=${from.toISOString()}&to=${to.toISOString()}`, { headers: { authorization: `Bearer ${key}` } })
  if (res.status !== 200 || res.body === null) throw new Error(`REST export: ${res.status} ${await res.text()}`)
  const file = path.join(dir, 'transactions.ndjson')
  await pipeline(Readable.fromWeb(res.body as import('node:stream/web').ReadableStream<Uint8Array>), fs.createWriteStream(file))
  const seconds = (performance.now() - started) / 1000
  const size = fs.statSync(file).size
  const fd = fs.openSync(file, 'r+')
  const tail = Buffer.alloc(Math.min(size, 64 * 1024))
  fs.readSync(fd, tail, 0, tail.length, size - tail.length)
  const lastStart = tail.lastIndexOf('\n', tail.length - 2) + 1
  const last = JSON.parse(tail.subarray(lastStart).toString('utf8')) as { manifest?: unknown }
  if (last.manifest === undefined) throw new Error(`REST export did not end with its manifest: ${tail.subarray(lastStart).toString('utf8').slice(0, 300)}`)
  fs.ftruncateSync(fd, size - tail.length + lastStart)
  fs.closeSync(fd)
  fs.writeFileSync(path.join(dir, 'manifest.json'), JSON.stringify(last.manifest, null, 2) + '\n')
  return seconds
}

const server = await benchDatabase('vgw-export-bench-')
const name = `vgw_export_bench_${randomBytes(4).toString('hex')}`
const admin = new pg.Client({ connectionString: server.url })
await admin.connect()
await admin.query(`CREATE DATABASE ${name}`)
const url = new URL(server.url)
url.pathname = `/${name}`
const dbUrl = url.toString()
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'vgw-export-bench-'))
try {
  const store = openStore({ url: dbUrl, newId: uuidv7 })
  await store.migrate()
  const key = (await store.apiKeys.create('export-bench', ['legal'], 'bench')).key
  await store.close()
  const fillStarted = performance.now()
  await fillVehicleRows(dbUrl, VIN, rows, from, to)
  const fillSeconds = (performance.now() - fillStarted) / 1000
  const env = { ...process.env, DATABASE_URL: dbUrl, VGW_LOG_LEVEL: 'warn' }

  const cliDir = path.join(work, 'cli')
  const cli = await vgw(['export', '--vin', VIN, '--from', from.toISOString(), '--to', to.toISOString(), '--out', cliDir], env)
  const cliVerify = await vgw(['export', 'verify', cliDir], env)

  const gw = await startVgw({ ...env, VGW_HOST: '127.0.0.1', VGW_MQTT_PORT: '0', VGW_HTTP_PORT: '0', VGW_LOG_LEVEL: 'info', VGW_DATA_DIR: path.join(work, 'data') })
  const pid = gw.child.pid as number
  const restDir = path.join(work, 'rest')
  fs.mkdirSync(restDir)
  let restSeconds: number
  let rssBefore: number
  let rssPeak: number
  let hwm: number
  try {
    rssBefore = procStatus(pid, 'VmRSS')
    rssPeak = rssBefore
    const sampler = setInterval(() => { rssPeak = Math.max(rssPeak, procStatus(pid, 'VmRSS')) }, 100)
    try {
      restSeconds = await restExport(`http://127.0.0.1:${gw.httpPort}`, key, restDir)
    } finally {
      clearInterval(sampler)
    }
    hwm = procStatus(pid, 'VmHWM')
  } finally {
    signalGroup(gw, 'SIGTERM')
    await gw.exited
  }
  const restVerify = await vgw(['export', 'verify', restDir], env)
  const bytes = fs.statSync(path.join(cliDir, 'transactions.ndjson')).size
  console.log(JSON.stringify({
    rows,
    ndjsonMiB: Math.round(bytes / 1048576),
    fillSeconds: Number(fillSeconds.toFixed(1)),
    cli: { exportSeconds: Number(cli.seconds.toFixed(1)), rowsPerSecond: Math.round(rows / cli.seconds), verifySeconds: Number(cliVerify.seconds.toFixed(1)), verify: cliVerify.stdout.trim() },
    rest: { exportSeconds: Number(restSeconds.toFixed(1)), rowsPerSecond: Math.round(rows / restSeconds), verifySeconds: Number(restVerify.seconds.toFixed(1)), verify: restVerify.stdout.trim() },
    gatewayRssMiB: { beforeExport: Math.round(rssBefore / 1024), peakDuringExport: Math.round(rssPeak / 1024), vmHWM: Math.round(hwm / 1024) }
  }, null, 2))
} finally {
  fs.rmSync(work, { recursive: true, force: true })
  await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)
  await admin.end()
  await server.stop()
}
