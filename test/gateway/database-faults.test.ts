import fs from 'node:fs'
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
import { connectVehicle } from '../helpers/vehicle.ts'

const VINS = ['WVWZZZ1JZXW000900', 'WVWZZZ1JZXW000901', 'WVWZZZ1JZXW000902']
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

/** A gateway on a PostgreSQL of its own that the test may stop, restart or torment. */
async function setup (t: Test, env: Record<string, string> = {}) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vgw-faults-'))
  fs.chmodSync(dir, 0o755)
  let db: EmbeddedPostgres = await startEmbeddedPostgres({ dataDir: dir })
  const port = db.port
  t.teardown(async () => {
    await db.stop()
    fs.rmSync(dir, { recursive: true, force: true })
  })
  const { logger, lines } = captureLogger()
  const store: Store = openStore({ url: db.url, newId: uuidv7, statementTimeoutMs: 1000, logger })
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
  const admin = await store.apiKeys.create('admin', ['admin'])
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
    logs: lines
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

t.test('the database away for a while: PUBACKs wait, /ready and REST say why, everything resumes by itself', async (t) => {
  const s = await setup(t)
  const pumps = s.cars.map((car, i) => pump(car, VINS[i] as string, 5))
  await sleep(800)
  t.ok(pumps.every((p) => p.acked.size > 0), 'uplinks flow')
  await s.stopDb()
  const downAt = Date.now()
  // VGW_TEST_OUTAGE_MS=60000 rehearses a failover-length outage; the suite uses a short one.
  await sleep(Number(process.env.VGW_TEST_OUTAGE_MS ?? 1500))
  const ready = await s.api('/ready')
  t.equal(ready.status, 503)
  t.match(ready.body, { error: { code: 'GW_ERR_NOT_READY', message: /database/ } })
  const sendRes = await s.api(`/v1/vehicles/${VINS[0] as string}/messages`, { method: 'POST', body: '{"type":"service.reminder","payload":"x"}' })
  t.equal(sendRes.status, 503)
  t.equal(sendRes.body.error?.code, 'GW_ERR_STORE_UNAVAILABLE')
  const ackedWhileDown = pumps.reduce((n, p) => n + [...p.acked.values()].filter((at) => at > downAt + 500).length, 0)
  t.equal(ackedWhileDown, 0, 'no PUBACK while nothing can be committed')
  t.ok(s.cars.every((c) => c.connected), 'vehicles stay connected')

  await s.startDb()
  const upAt = Date.now()
  while (Date.now() - upAt < 20_000 && (await s.api('/ready')).status !== 200) await sleep(200)
  t.equal((await s.api('/ready')).status, 200, 'ready again')
  const flowing = (): boolean => pumps.every((p) => [...p.acked.values()].some((at) => at > upAt))
  while (Date.now() - upAt < 20_000 && !flowing()) await sleep(100)
  t.ok(flowing(), `uplinks flow again ${Date.now() - upAt} ms after the database came back`)
  await Promise.all(pumps.map((p) => p.stop()))
  await checkStored(t, s.url, pumps)
  t.equal((await s.api(`/v1/vehicles/${VINS[0] as string}/messages`, { method: 'POST', body: '{"type":"service.reminder","payload":"x"}' })).status, 202)
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

t.test('past the backlog limit a publishing vehicle is disconnected, not buffered without end', async (t) => {
  const s = await setup(t, { VGW_MAX_PENDING_RECORDS: '100' })
  await s.stopDb()
  const car = s.cars[0]
  const p = pump(car as NonNullable<typeof car>, VINS[0] as string, 150)
  const deadline = Date.now() + 10_000
  while (Date.now() < deadline && car?.connected === true) await sleep(50)
  t.equal(car?.connected, false, 'disconnected')
  t.ok(s.gateway.log.pending <= 100 + 150, `backlog ${s.gateway.log.pending} stays bounded`)
  t.ok(s.logs.some((l) => l.msg === 'commit backlog full; disconnecting a publishing vehicle'))
  await s.startDb()
  await p.stop(0)
})
