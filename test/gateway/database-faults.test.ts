import fs from 'node:fs'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import pg from 'pg'
import t, { type Test } from 'tap'
import { v7 as uuidv7 } from 'uuid'
import { buildGateway, loadConfig } from '../../gateway/index.ts'
import { openStore, startEmbeddedPostgres, type EmbeddedPostgres, type Store } from '../../store/index.ts'
import { captureLogger } from '../helpers/gateway.ts'
import { testPki } from '../helpers/pki.ts'
import { pump, type Pump } from '../helpers/pump.ts'
import { attemptConnect, connectVehicle } from '../helpers/vehicle.ts'

const VINS = ['WVWZZZ1JZXW000900', 'WVWZZZ1JZXW000901', 'WVWZZZ1JZXW000902']
const NEWCOMER = 'WVWZZZ1JZXW000903'
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

/** A gateway on a PostgreSQL of its own that the test may stop, restart or torment. */
async function setup (t: Test, env: Record<string, string> = {}, opts: { viaProxy?: boolean } = {}) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vgw-faults-'))
  fs.chmodSync(dir, 0o755)
  let db: EmbeddedPostgres = await startEmbeddedPostgres({ dataDir: dir })
  const port = db.port
  t.teardown(async () => {
    await db.stop()
    fs.rmSync(dir, { recursive: true, force: true })
  })
  const { logger, lines } = captureLogger()
  const proxy = opts.viaProxy === true ? await freezableProxy(t, port) : null
  const storeUrl = new URL(db.url)
  if (proxy !== null) storeUrl.port = String(proxy.port)
  const store: Store = openStore({ url: storeUrl.toString(), newId: uuidv7, statementTimeoutMs: 1000, logger, pools: { commit: 2, api: 4, export: 1 } })
  t.teardown(() => store.close())
  await store.migrate()
  const pki = await testPki(t)
  const config = loadConfig({
    VGW_HOST: '127.0.0.1', VGW_MQTT_PORT: '0', VGW_HTTP_PORT: '0',
    VGW_TLS_CA: pki.paths.caCert, VGW_TLS_CERT: pki.paths.serverCert, VGW_TLS_KEY: pki.paths.serverKey, VGW_TLS_CRL: pki.paths.crl,
    ...env
  })
  const gateway = await buildGateway(config, { store, logger })
  t.teardown(() => gateway.close())
  const { mqttPort, httpPort } = await gateway.listen()
  const admin = await store.apiKeys.create('admin', ['admin'], 'test')
  const cars = await Promise.all(VINS.map(async (vin) => connectVehicle(t, { port: mqttPort, ca: pki.ca, creds: await pki.vehicle(vin) })))
  const api = async (p: string, init: RequestInit = {}): Promise<{ status: number, body: { error?: { code: string, message: string } } }> => {
    const res = await fetch(`http://127.0.0.1:${httpPort}${p}`, { ...init, headers: { authorization: `Bearer ${admin.key}`, 'content-type': 'application/json' } })
    return { status: res.status, body: await res.json() as { error?: { code: string, message: string } } }
  }
  return {
    db: () => db,
    url: db.url,
    async stopDb () { await db.stop() },
    async startDb () { db = await startEmbeddedPostgres({ dataDir: dir, port }) },
    store,
    gateway,
    cars,
    api,
    pki,
    mqttPort,
    proxy,
    logs: lines
  }
}

/**
 * A TCP proxy to PostgreSQL whose connections can be frozen: from then on they pass no
 * byte either way and stay open, as a connection left half-open by a failover or a
 * dropped NAT entry does. Connections made after the freeze pass normally.
 */
async function freezableProxy (t: Test, targetPort: number): Promise<{ port: number, freeze(): number }> {
  const live = new Set<{ frozen: boolean, sockets: net.Socket[] }>()
  const server = net.createServer((client) => {
    const upstream = net.connect(targetPort, '127.0.0.1')
    const pair = { frozen: false, sockets: [client, upstream] }
    live.add(pair)
    client.on('data', (d: Buffer) => { if (!pair.frozen) upstream.write(d) })
    upstream.on('data', (d: Buffer) => { if (!pair.frozen) client.write(d) })
    const end = (): void => { live.delete(pair); client.destroy(); upstream.destroy() }
    client.on('close', end)
    upstream.on('close', end)
    client.on('error', end)
    upstream.on('error', end)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => {
    for (const p of live) for (const s of p.sockets) s.destroy()
    server.close(() => resolve())
  }))
  return {
    port: (server.address() as net.AddressInfo).port,
    freeze () {
      for (const p of live) p.frozen = true
      return live.size
    }
  }
}

/** Every acknowledged uplink is in the log exactly once; so is every uplink sent, once all were acknowledged. */
async function checkStored (t: Test, url: string, pumps: Pump[]): Promise<void> {
  const db = new pg.Client({ connectionString: url })
  await db.connect()
  const counts = new Map((await db.query<{ message_id: string, n: number }>(
    "SELECT message_id, count(*)::int AS n FROM transactions WHERE direction = 'up' GROUP BY message_id")).rows.map((r) => [r.message_id, r.n]))
  await db.end()
  const acked = pumps.flatMap((p) => [...p.acked.keys()])
  const sent = pumps.flatMap((p) => [...p.sent])
  t.same(acked.filter((id) => counts.get(id) !== 1), [], `all ${acked.length} acknowledged uplinks stored exactly once`)
  t.equal(acked.length, sent.length, 'every uplink sent was acknowledged in the end')
  t.same([...counts.values()].filter((n) => n !== 1), [], 'no duplicates')
}

t.test('the database away for a while: PUBACKs wait, CONNACK 3, /ready and REST say why, everything resumes by itself', async (t) => {
  const s = await setup(t)
  const pumps = s.cars.map((car, i) => pump(car, VINS[i] as string, 5))
  await sleep(800)
  t.ok(pumps.every((p) => p.acked.size > 0), 'uplinks flow')
  await s.stopDb()
  const downAt = Date.now()
  // Uplinks sent from the first millisecond of the outage: none can be committed, so none may be acknowledged until the database is back.
  const during = s.cars.map((car, i) => pump(car, VINS[i] as string, 2))
  const newcomer = await attemptConnect({ port: s.mqttPort, ca: s.pki.ca, creds: await s.pki.vehicle(NEWCOMER) })
  t.match(newcomer, { connected: false, returnCode: 3 }, 'a vehicle connecting meanwhile gets CONNACK 3 (server unavailable)')
  // VGW_TEST_OUTAGE_MS=60000 rehearses a failover-length outage; the suite uses a short one.
  await sleep(Number(process.env.VGW_TEST_OUTAGE_MS ?? 1500))
  const ready = await s.api('/ready')
  t.equal(ready.status, 503)
  t.match(ready.body, { error: { code: 'GW_ERR_NOT_READY', message: /database/ } })
  const sendRes = await s.api(`/v1/vehicles/${VINS[0] as string}/messages`, { method: 'POST', body: '{"type":"service.reminder","payload":"x"}' })
  t.equal(sendRes.status, 503)
  t.equal(sendRes.body.error?.code, 'GW_ERR_STORE_UNAVAILABLE')
  t.ok(s.cars.every((c) => c.connected), 'vehicles stay connected')

  const backAt = Date.now()
  await s.startDb()
  const sentWhileDown = [...pumps, ...during].flatMap((p) => [...p.sentAt].filter(([, at]) => at >= downAt).map(([id]) => ({ id, p })))
  t.ok(sentWhileDown.length >= during.length * 2, `${sentWhileDown.length} uplinks sent while the database was away`)
  const ackedEarly = sentWhileDown.filter(({ id, p }) => (p.acked.get(id) ?? Number.POSITIVE_INFINITY) < backAt)
  t.same(ackedEarly.map(({ id }) => id), [], 'no PUBACK for an uplink sent during the outage before the database was back')

  const upAt = Date.now()
  while (Date.now() - upAt < 20_000 && (await s.api('/ready')).status !== 200) await sleep(200)
  t.equal((await s.api('/ready')).status, 200, 'ready again')
  const flowing = (): boolean => pumps.every((p) => [...p.acked.values()].some((at) => at > upAt))
  while (Date.now() - upAt < 20_000 && !flowing()) await sleep(100)
  t.ok(flowing(), `uplinks flow again ${Date.now() - upAt} ms after the database came back`)
  await Promise.all([...pumps, ...during].map((p) => p.stop()))
  await checkStored(t, s.url, [...pumps, ...during])
  t.equal((await s.api(`/v1/vehicles/${VINS[0] as string}/messages`, { method: 'POST', body: '{"type":"service.reminder","payload":"x"}' })).status, 202)
  t.equal((await attemptConnect({ port: s.mqttPort, ca: s.pki.ca, creds: await s.pki.vehicle(NEWCOMER) })).returnCode, 0, 'and the newcomer connects')
})

t.test('killed database connections (57P01) are replaced and the work retried', async (t) => {
  const s = await setup(t)
  const pumps = s.cars.map((car, i) => pump(car, VINS[i] as string, 5))
  const admin = new pg.Client({ connectionString: s.url })
  await admin.connect()
  t.teardown(() => admin.end())
  let killed = 0
  for (let i = 0; i < 5; i++) {
    await sleep(300)
    const r = await admin.query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name LIKE 'vgw-%' AND pid <> pg_backend_pid()")
    killed += r.rowCount ?? 0
  }
  t.ok(killed > 0, `${killed} gateway sessions terminated`)
  await sleep(500)
  await Promise.all(pumps.map((p) => p.stop()))
  await checkStored(t, s.url, pumps)
  t.ok(s.logs.some((l) => /retrying|connection lost/.test(l.msg)), 'the lost connections were noticed')
})

t.test('a statement that never answers is cut by the statement timeout and retried', async (t) => {
  const s = await setup(t)
  const pumps = s.cars.map((car, i) => pump(car, VINS[i] as string, 3))
  await sleep(500)
  // Another session locks the log: inserts hang as on a half-open connection, until the timeout (1 s) cuts them.
  const locker = new pg.Client({ connectionString: s.url })
  await locker.connect()
  t.teardown(() => locker.end())
  await locker.query('BEGIN')
  await locker.query('LOCK TABLE transactions IN ACCESS EXCLUSIVE MODE')
  await sleep(2500)
  await locker.query('COMMIT')
  await sleep(1500)
  await Promise.all(pumps.map((p) => p.stop()))
  await checkStored(t, s.url, pumps)
  t.ok(s.logs.some((l) => /retrying/.test(l.msg) && /statement timeout|canceling/.test(JSON.stringify(l.err ?? ''))), 'timed out and retried')
})

t.test('a half-open connection (no byte either way) is cut by the client-side query timeout and the work retried', async (t) => {
  const s = await setup(t, {}, { viaProxy: true })
  const pumps = s.cars.map((car, i) => pump(car, VINS[i] as string, 3))
  await sleep(500)
  t.ok(pumps.every((p) => p.acked.size > 0), 'uplinks flow')
  // The server never sees the statements sent on a frozen connection, so its statement
  // timeout cannot end them: only pg's query_timeout (statement timeout + 2 s) can.
  const frozen = s.proxy?.freeze() ?? 0
  t.ok(frozen > 0, `${frozen} connections frozen`)
  const frozenAt = Date.now()
  const flowing = (): boolean => pumps.every((p) => [...p.acked.values()].some((at) => at > frozenAt + 1000))
  while (Date.now() - frozenAt < 30_000 && !flowing()) await sleep(100)
  t.ok(flowing(), `uplinks flow again ${Date.now() - frozenAt} ms after the freeze`)
  await Promise.all(pumps.map((p) => p.stop(15_000)))
  await checkStored(t, s.url, pumps)
  t.ok(s.logs.some((l) => /retrying/.test(l.msg) && /Query read timeout/.test(JSON.stringify(l.err ?? ''))), 'cut by the query timeout and retried')
})

t.test('past the backlog limit a publishing vehicle is disconnected, not buffered without end', async (t) => {
  // The per-connection read window is opened wide, so only the backlog limit can stop this vehicle.
  const s = await setup(t, { VGW_MAX_PENDING_RECORDS: '100', VGW_VEHICLE_MAX_INFLIGHT: '1000' })
  await s.stopDb()
  const car = s.cars[0]
  const p = pump(car as NonNullable<typeof car>, VINS[0] as string, 400)
  const deadline = Date.now() + 10_000
  while (Date.now() < deadline && car?.connected === true) await sleep(50)
  t.equal(car?.connected, false, 'disconnected')
  await sleep(300) // anything still read from its socket would land in the backlog now
  t.equal(p.sent.size, 400, 'the vehicle sent 400 uplinks')
  t.equal(p.acked.size, 0, 'none acknowledged')
  // 100 uplinks at most, plus the few rows of connection events.
  t.ok(s.gateway.log.pending <= 105, `backlog ${s.gateway.log.pending} stops at the limit of 100`)
  t.ok(s.logs.some((l) => l.msg === 'commit backlog full; disconnecting a publishing vehicle'))
  await s.startDb()
  await p.stop(0)
})
