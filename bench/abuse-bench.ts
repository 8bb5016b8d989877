// Careless and hostile clients against a real `vgw start` (issue #11): what four cheap actions
// do to the gateway, and what a 200-vehicle fleet's PUBACK latency is alone and with 10,000
// made-up-token requests and 20 aborted exports beside it. `--only issue20`: the fleet alone,
// beside 700 keep-alive connections looping GET /ready, and beside ~190 made-up tokens a second
// from the fleet's address, each with a rarely used key's calls and new vehicles' connects
// during the attack (issue #20, items 1 and 3; about 2 minutes).
//   npx tsx bench/abuse-bench.ts [--vgw-root DIR] [--json FILE] [--only issue20]
// --vgw-root runs another checkout's bin/vgw.js (e.g. the code before a change) with this harness.
import { spawn } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import readline from 'node:readline'
import tls from 'node:tls'
import { fileURLToPath } from 'node:url'
import mqtt from 'mqtt'
import mqttPacket from 'mqtt-packet'
import pg from 'pg'
import { createAuthority, initDevPki, issueLeaf, issueVehicleCertificate, loadAuthority } from '../certs/index.ts'
import { encodeEnvelope, newUuidV7 } from '../protocol/index.ts'
import { runFleet } from '../simulators/index.ts'
import { fillVehicleRows } from '../test/helpers/bulk-rows.ts'
import { startFlood, type FloodOptions } from '../test/helpers/http-flood.ts'
import { fleetOptions } from './bench-row.ts'

const HERE = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const arg = (name: string): string | undefined => {
  const i = process.argv.indexOf(name)
  return i < 0 ? undefined : process.argv[i + 1]
}
const root = path.resolve(arg('--vgw-root') ?? HERE)
const EXPORT_VIN = 'WVWZZZ1JZXW099001'
const VICTIM_VIN = 'WVWZZZ1JZXW099002'
const FLOODER_VIN = 'WVWZZZ1JZXW099003'
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

interface Gateway { pid: number, mqttPort: number, httpUrl: string, key: string, dbUrl: string, stop: () => Promise<void> }

async function startGateway (workDir: string, certDir: string): Promise<Gateway> {
  const dataDir = path.join(workDir, 'data')
  const child = spawn(process.execPath, [path.join(root, 'bin/vgw.js'), 'start'], {
    cwd: workDir,
    env: {
      ...process.env,
      VGW_DATA_DIR: dataDir, VGW_HOST: '127.0.0.1', VGW_MQTT_PORT: '0', VGW_HTTP_PORT: '0', VGW_LOG_LEVEL: 'warn',
      VGW_TLS_CA: path.join(certDir, 'ca.crt'), VGW_TLS_CERT: path.join(certDir, 'server.crt'), VGW_TLS_KEY: path.join(certDir, 'server.key'), VGW_TLS_CRL: path.join(certDir, 'crl.pem'),
      // The fleet connects from 127.0.0.1: the per-address bounds are for production peers (an older checkout ignores these).
      VGW_MAX_CONNECTIONS_PER_ADDRESS: '10000000', VGW_HANDSHAKE_RATE_PER_ADDRESS: '1000000'
    },
    stdio: ['ignore', 'pipe', 'ignore']
  })
  const lines = readline.createInterface({ input: child.stdout })
  const m = await new Promise<RegExpExecArray>((resolve, reject) => {
    lines.on('line', (line) => {
      const r = /^vgw ready: MQTT over mutual TLS on [^:]+:(\d+), HTTP on [^:]+:(\d+)/.exec(line)
      if (r !== null) resolve(r)
    })
    child.once('exit', (code) => reject(new Error(`vgw exited with ${String(code)}`)))
  })
  return {
    pid: child.pid as number,
    mqttPort: Number(m[1]),
    httpUrl: `http://127.0.0.1:${m[2] as string}`,
    key: fs.readFileSync(path.join(dataDir, 'admin.key'), 'utf8').trim(),
    dbUrl: fs.readFileSync(path.join(dataDir, 'postgres.url'), 'utf8').trim(),
    stop: async () => {
      const exited = new Promise((resolve) => child.once('exit', resolve))
      child.kill('SIGTERM')
      await Promise.race([exited, sleep(20_000)])
      if (child.exitCode === null) child.kill('SIGKILL')
    }
  }
}

const rssMiB = (pid: number): number => Math.round(Number(/VmRSS:\s+(\d+)/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0) / 1024)

async function query<R extends pg.QueryResultRow> (url: string, sql: string, params: unknown[] = []): Promise<R[]> {
  const db = new pg.Client({ connectionString: url })
  await db.connect()
  try {
    return (await db.query<R>(sql, params)).rows
  } finally {
    await db.end()
  }
}

/** Exports that read about 300 KB and then go away, as a client timeout or a closed browser tab does. */
async function abortedExports (gw: Gateway, count: number): Promise<number[]> {
  const from = new Date(Date.now() - 30 * 86_400_000).toISOString()
  const to = new Date(Date.now() + 86_400_000).toISOString()
  return await Promise.all(Array.from({ length: count }, async () => {
    const ac = new AbortController()
    // A gateway whose pool is wedged never sends the first byte: give up after 10 s as a client would.
    const timer = setTimeout(() => ac.abort(), 10_000)
    try {
      const res = await fetch(`${gw.httpUrl}/v1/vehicles/${EXPORT_VIN}/export?from=${from}&to=${to}`, { headers: { authorization: `Bearer ${gw.key}` }, signal: ac.signal })
      const reader = res.body?.getReader()
      let read = 0
      while (reader !== undefined && read < 300_000) {
        const r = await reader.read()
        if (r.done) break
        read += r.value.byteLength
      }
      ac.abort()
      return res.status
    } catch {
      return 0
    } finally {
      clearTimeout(timer)
    }
  }))
}

/** Requests with made-up bearer tokens, `concurrency` at a time, for at most 60 s; counts answers by status. */
async function badTokens (gw: Gateway, total: number, concurrency: number): Promise<Record<string, number>> {
  const statuses: Record<string, number> = {}
  let next = 0
  // A gateway whose lookups wait on a wedged pool answers one request per connection timeout: stop after a minute.
  const until = Date.now() + 60_000
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (next++ < total && Date.now() < until) {
      const token = `vgw_${Buffer.from(newUuidV7() + newUuidV7()).toString('base64url').slice(0, 43)}`
      const res = await fetch(`${gw.httpUrl}/v1/vehicles/${EXPORT_VIN}`, { headers: { authorization: `Bearer ${token}` } }).catch(() => null)
      const key = String(res?.status ?? 'error')
      statuses[key] = (statuses[key] ?? 0) + 1
      await res?.arrayBuffer().catch(() => undefined)
    }
  }))
  return statuses
}

/** One uplink from a fresh vehicle: ms to its PUBACK, or null when none came within 10 s. */
async function onePuback (gw: Gateway, certDir: string, vin: string): Promise<number | null> {
  const v = await issueVehicleCertificate(certDir, { vin, market: 'DE' })
  const client = mqtt.connect({ protocol: 'mqtts', host: '127.0.0.1', port: gw.mqttPort, ca: fs.readFileSync(path.join(certDir, 'ca.crt')), key: v.keyPem, cert: v.certPem, clientId: vin, reconnectPeriod: 0, connectTimeout: 10_000 })
  client.on('error', () => undefined)
  try {
    const connected = await Promise.race([new Promise<boolean>((resolve) => client.once('connect', () => resolve(true))), sleep(10_000).then(() => false)])
    if (!connected) return null
    const started = performance.now()
    const payload = Buffer.from(encodeEnvelope({ messageId: newUuidV7(), kind: 'TELEMETRY', type: 'telemetry.position', createdAtMs: Date.now(), payload: Buffer.alloc(50) }))
    const acked = await Promise.race([client.publishAsync(`vehicles/${vin}/up`, payload, { qos: 1 }).then(() => true), sleep(10_000).then(() => false)])
    return acked ? Math.round(performance.now() - started) : null
  } finally {
    client.end(true)
  }
}

/** 1,000 QoS 2 PUBLISH packets of 900 KB with no PUBREL, as fast as the gateway reads them. */
async function qos2Flood (gw: Gateway, certDir: string): Promise<{ before: number, peak: number, after: number, sessions: number }> {
  const v = await issueVehicleCertificate(certDir, { vin: FLOODER_VIN, market: 'DE' })
  const before = rssMiB(gw.pid)
  let peak = before
  const packet = mqttPacket.generate({ cmd: 'publish', topic: `vehicles/${FLOODER_VIN}/up`, payload: Buffer.alloc(900 * 1024, 1), qos: 2, messageId: 1, retain: false, dup: false })
  let sent = 0
  let sessions = 0
  while (sent < 1000) {
    sessions++
    const socket = tls.connect({ host: '127.0.0.1', port: gw.mqttPort, ca: fs.readFileSync(path.join(certDir, 'ca.crt')), key: v.keyPem, cert: v.certPem })
    socket.on('error', () => undefined)
    await new Promise<void>((resolve) => { socket.once('secureConnect', () => resolve()); socket.once('close', () => resolve()) })
    socket.write(mqttPacket.generate({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clientId: FLOODER_VIN, clean: true, keepalive: 60 }))
    while (!socket.destroyed && sent < 1000) {
      sent++
      // A gateway that stops reading would leave this flood waiting for ever: 10 s without a drain ends the session.
      if (!socket.write(packet) && !await Promise.race([new Promise<boolean>((resolve) => socket.once('drain', () => resolve(true))), new Promise<boolean>((resolve) => socket.once('close', () => resolve(true))), sleep(10_000).then(() => false)])) break
      peak = Math.max(peak, rssMiB(gw.pid))
    }
    socket.destroy()
  }
  await sleep(5000)
  return { before, peak: Math.max(peak, rssMiB(gw.pid)), after: rssMiB(gw.pid), sessions }
}

/** Handshakes with a certificate from a CA that is not ours, whose CN is a victim's VIN. */
async function foreignCertificate (gw: Gateway, certDir: string, handshakes: number): Promise<{ rowsBefore: number, rowsAfter: number }> {
  await issueVehicleCertificate(certDir, { vin: VICTIM_VIN, market: 'DE' })
  const count = async (): Promise<number> => (await query<{ n: number }>(gw.dbUrl, 'SELECT count(*)::int AS n FROM transactions WHERE vin = $1', [VICTIM_VIN]))[0]?.n ?? 0
  const rowsBefore = await count()
  const foreign = await loadAuthority(await createAuthority('Not the vgw CA', 1))
  const leaf = await issueLeaf(foreign, { subject: `CN=${VICTIM_VIN}, C=DE`, clientAuth: true })
  for (let i = 0; i < handshakes; i++) {
    const socket = tls.connect({ host: '127.0.0.1', port: gw.mqttPort, ca: fs.readFileSync(path.join(certDir, 'ca.crt')), key: leaf.keyPem, cert: leaf.certPem })
    socket.on('error', () => undefined)
    await new Promise<void>((resolve) => { socket.once('close', () => resolve()); setTimeout(() => { socket.destroy(); resolve() }, 2000) })
  }
  await sleep(1000)
  return { rowsBefore, rowsAfter: await count() }
}

async function fleetP99 (gw: Gateway, certDir: string, beside: (() => Promise<unknown>) | null): Promise<{ p50: number | null, p99: number | null, acked: number, besideResult: unknown }> {
  let besideRun: Promise<unknown> | null = null
  const opts = fleetOptions({ name: 'vgw', mqttUrl: `mqtts://127.0.0.1:${gw.mqttPort}`, pids: () => [gw.pid], stop: async () => undefined }, certDir, {
    vehicles: 200, uplinkRatePerVehicle: 5, lean: true, workers: 1, firstVehicle: 50_000, durationMs: 60_000, progress: null
  })
  let connectedAt: number | null = null
  const report = await runFleet({ ...opts, uplinksAfterConnect: true }, {
    onProgress: (p) => {
      if (connectedAt === null && p.counters.connected >= 200) {
        connectedAt = Date.now()
        if (beside !== null) besideRun = beside()
      }
    },
    shouldStop: () => connectedAt !== null && Date.now() - connectedAt >= 20_000
  })
  return { p50: report.latencyMs.uplink.p50, p99: report.latencyMs.uplink.p99, acked: report.counters.uplinkAcked, besideResult: besideRun === null ? null : await besideRun }
}

let nextConnectVin = 980_000

/** One connect of a vehicle with a valid certificate: 0 for CONNACK 0, the CONNACK code of a refusal, or 'no answer'. */
async function connectOnce (gw: Gateway, v: { vin: string, certPem: string, keyPem: string }): Promise<number | string> {
  const client = mqtt.connect({ protocol: 'mqtts', host: '127.0.0.1', port: gw.mqttPort, ca: fs.readFileSync(path.join(certDir, 'ca.crt')), key: v.keyPem, cert: v.certPem, clientId: v.vin, reconnectPeriod: 0, connectTimeout: 10_000 })
  try {
    return await new Promise<number | string>((resolve) => {
      client.once('connect', () => resolve(0))
      client.on('error', (err: Error & { code?: unknown }) => resolve(typeof err.code === 'number' ? err.code : err.message))
      client.once('close', () => resolve('closed without CONNACK'))
      setTimeout(() => resolve('no answer in 10 s'), 10_000)
    })
  } finally {
    client.end(true)
  }
}

/**
 * An attack beside the fleet (issue #20) for `ms`: meanwhile a key created for it calls the API
 * every `callEveryMs` from the attack's second second on (every 6 s: longer than the 5 s a lookup
 * used to be cached, as in the issue) and a new vehicle connects every 2 s; counts of both by answer.
 */
async function besideAttack (gw: Gateway, attack: Omit<FloodOptions, 'url'>, ms: number, callEveryMs: number): Promise<Record<string, unknown>> {
  const res = await fetch(`${gw.httpUrl}/v1/keys`, { method: 'POST', headers: { authorization: `Bearer ${gw.key}`, 'content-type': 'application/json' }, body: JSON.stringify({ name: `rare-${newUuidV7()}`, scopes: ['vehicles:read'] }) })
  const rare = (await res.json() as { key: string }).key
  const vehicles = await Promise.all(Array.from({ length: Math.ceil(ms / 2000) }, async () => {
    const vin = `WVWZZZ1JZXW${String(nextConnectVin++)}`
    return { ...await issueVehicleCertificate(certDir, { vin, market: 'DE' }), vin }
  }))
  const flood = startFlood({ url: gw.httpUrl, ...attack })
  const tally = (into: Record<string, number>, key: string | number): void => { into[String(key)] = (into[String(key)] ?? 0) + 1 }
  const calls: Record<string, number> = {}
  const connects: Record<string, number> = {}
  const until = Date.now() + ms
  const caller = (async () => {
    await sleep(1000)
    while (Date.now() < until) {
      const started = Date.now()
      const r = await fetch(`${gw.httpUrl}/v1/vehicles/${EXPORT_VIN}`, { headers: { authorization: `Bearer ${rare}` }, signal: AbortSignal.timeout(10_000) }).then((x) => x.status, () => 'no answer in 10 s')
      tally(calls, r)
      await sleep(Math.max(0, callEveryMs - (Date.now() - started)))
    }
  })()
  const connector = (async () => {
    for (const v of vehicles) {
      if (Date.now() >= until) break
      const started = Date.now()
      tally(connects, await connectOnce(gw, v))
      await sleep(Math.max(0, 2000 - (Date.now() - started)))
    }
  })()
  await Promise.all([caller, connector])
  const floodAnswers = await flood.stop()
  return { floodAnswers, rareKeyCalls: calls, vehicleConnects: connects }
}

const workDir = fs.mkdtempSync(path.join(os.tmpdir(), 'vgw-abuse-bench-'))
fs.chmodSync(workDir, 0o755)
const certDir = path.join(workDir, 'certs')
await initDevPki(certDir)
const gw = await startGateway(workDir, certDir)
const results: Record<string, unknown> = { vgwRoot: root, node: process.version, at: new Date().toISOString() }
const only = arg('--only')
try {
  if (only === 'issue20') {
    // The rarely used key reads this vehicle: 200 when it is served.
    await fetch(`${gw.httpUrl}/v1/vehicles/${EXPORT_VIN}`, { method: 'PUT', headers: { authorization: `Bearer ${gw.key}`, 'content-type': 'application/json' }, body: '{"market":"DE"}' })
    results.fleetAlone = await fleetP99(gw, certDir, null)
    results.besideReadyFlood = await fleetP99(gw, certDir, async () => await besideAttack(gw, { path: '/ready', connections: 700 }, 18_000, 1000))
    results.besideJunkTokens = await fleetP99(gw, certDir, async () => await besideAttack(gw, { path: `/v1/vehicles/${EXPORT_VIN}`, connections: 8, junkTokens: true, ratePerSecond: 190 }, 19_000, 6000))
  } else {
  await fillVehicleRows(gw.dbUrl, EXPORT_VIN, 100_000, new Date(Date.now() - 20 * 86_400_000), new Date(Date.now() - 86_400_000))
  results.fleetAlone = await fleetP99(gw, certDir, null)
  results.fleetWithAbuse = await fleetP99(gw, certDir, async () => {
    const [tokens, exportStatuses] = await Promise.all([badTokens(gw, 10_000, 50), abortedExports(gw, 20)])
    return { tokens, exportStatuses }
  })
  // Reproduction 1: twelve aborted exports, then what happens to the commit path.
  await abortedExports(gw, 12)
  await sleep(2000)
  results.afterAbortedExports = {
    idleInTransaction: (await query<{ n: number }>(gw.dbUrl, "SELECT count(*)::int AS n FROM pg_stat_activity WHERE state LIKE 'idle in transaction%' AND application_name LIKE 'vgw%'"))[0]?.n,
    pubackMs: await onePuback(gw, certDir, 'WVWZZZ1JZXW099004'),
    ready: await fetch(`${gw.httpUrl}/ready`, { signal: AbortSignal.timeout(5000) }).then((r) => r.status, () => 'no answer in 5 s')
  }
  results.qos2Flood = await qos2Flood(gw, certDir)
  results.foreignCertificate = await foreignCertificate(gw, certDir, 50)
  }
} finally {
  await gw.stop()
  fs.rmSync(workDir, { recursive: true, force: true })
}
const out = JSON.stringify(results, null, 2)
process.stdout.write(out + '\n')
const json = arg('--json')
if (json !== undefined) fs.writeFileSync(json, out + '\n')
