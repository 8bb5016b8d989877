// Legal exports against a real gateway and a long history: clients that go away, too many
// clients at once, and an export whose database session dies part-way (issue #11, A and F).
import { getExport, readAll, type ExportResponse } from '../helpers/export-http.ts'
import pg from 'pg'
import t, { type Test } from 'tap'
import { fillVehicleRows } from '../helpers/bulk-rows.ts'
import { register } from '../helpers/downlink.ts'
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts'
import { connectVehicle, envelope, publishEnvelope } from '../helpers/vehicle.ts'

const VIN = 'WVWZZZ1JZXW000811'
const CAR = 'WVWZZZ1JZXW000812'
const TO = new Date(Date.now() - 24 * 3600_000)
const FROM = new Date(TO.getTime() - 24 * 3600_000)
const ROWS = 100_000

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

/** The keys of the legal team, by gateway. */
const legalKeys = new WeakMap<TestGateway, string>()

async function withHistory (t: Test, env: Record<string, string> = {}): Promise<TestGateway> {
  const gw = await startTestGateway(t, env)
  legalKeys.set(gw, (await gw.store.apiKeys.create('legal-team', ['legal'], 'test')).key)
  await fillVehicleRows(gw.dbUrl, VIN, ROWS, FROM, TO)
  return gw
}

/** One export over its own TCP connection. */
function exportOf (gw: TestGateway, to = TO): Promise<ExportResponse> {
  return getExport(`${gw.baseUrl}/v1/vehicles/${VIN}/export?from=${FROM.toISOString()}&to=${to.toISOString()}`, legalKeys.get(gw) ?? '')
}

/** Reads at least `bytes` of a body and leaves the rest unread. */
async function readAtLeast (res: ExportResponse, bytes: number): Promise<string> {
  let text = ''
  while (text.length < bytes) {
    const { done, value } = await res.chunks.next()
    if (done === true) break
    text += value.toString('utf8')
  }
  return text
}

async function ownerQuery<R extends pg.QueryResultRow> (gw: TestGateway, sql: string): Promise<R[]> {
  const db = new pg.Client({ connectionString: gw.dbUrl })
  await db.connect()
  try {
    return (await db.query<R>(sql)).rows
  } finally {
    await db.end()
  }
}

const IDLE_IN_TRANSACTION = "SELECT application_name, state FROM pg_stat_activity WHERE datname = current_database() AND application_name LIKE 'vgw-%' AND state LIKE 'idle in transaction%'"

/** A short export runs to its manifest: the export pool is healthy. */
async function completeExportWorks (t: Test, gw: TestGateway): Promise<void> {
  const deadline = Date.now() + 10_000
  for (;;) {
    const res = await exportOf(gw, new Date(FROM.getTime() + 60_000))
    if (res.status === 200 || Date.now() > deadline) {
      t.equal(res.status, 200, 'a new export is served')
      const lines = (await readAll(res)).text.trim().split('\n')
      t.match(JSON.parse(lines.at(-1) ?? '{}'), { manifest: { rowCount: lines.length - 1 } }, 'and ends with its manifest')
      return
    }
    res.body.destroy()
    await sleep(50)
  }
}

t.test('20 exports aborted part-way leave no session idle in transaction, and uplinks are still acknowledged at once', async (t) => {
  const gw = await withHistory(t)
  await register(gw, CAR)
  const car = await connectVehicle(t, { port: gw.mqttPort, ca: gw.pki.ca, creds: await gw.pki.vehicle(CAR) })

  let aborted = 0
  let refused = 0
  const deadline = Date.now() + 60_000
  while (aborted < 20 && Date.now() < deadline) {
    const res = await exportOf(gw)
    if (res.status === 503) {
      // The previous export's slot is freed a moment after its client left: refused, never queued.
      refused++
      res.body.destroy()
      await sleep(20)
      continue
    }
    if (res.status !== 200) break
    const text = await readAtLeast(res, 300_000)
    if (!text.includes('"seq":')) break
    // What `curl … | head -c 300000` does: the connection closes with the body half read.
    res.body.destroy()
    aborted++
  }
  t.equal(aborted, 20, `20 exports read ~300 KB and then aborted (${refused} refused while a slot was being freed)`)

  let idle: Array<{ application_name: string, state: string }> = []
  const settled = Date.now() + 5000
  do {
    idle = await ownerQuery(gw, IDLE_IN_TRANSACTION)
    if (idle.length === 0) break
    await sleep(50)
  } while (Date.now() < settled)
  t.same(idle, [], 'no gateway session stays idle in transaction')
  t.match(gw.store.poolStats().find((p) => p.pool === 'export'), { waiting: 0 }, 'nothing waits for an export connection')

  const acked = await Promise.race([
    publishEnvelope(car, CAR, envelope()).then(() => true),
    sleep(2000).then(() => false)
  ])
  t.ok(acked, 'an uplink gets its PUBACK within 2 s')
  t.ok(gw.logs.some((l) => /legal export stopped: the client went away/.test(l.msg)), 'the stopped exports are logged')
  await completeExportWorks(t, gw)
})

t.test('an export beyond VGW_EXPORT_MAX_CONCURRENT is refused at once with 503 GW_ERR_EXPORT_BUSY and Retry-After', async (t) => {
  const gw = await withHistory(t, { VGW_EXPORT_MAX_CONCURRENT: '1' })
  const held = await exportOf(gw)
  t.equal(held.status, 200, 'the first export runs')
  await readAtLeast(held, 1)
  // The first export now waits for its client to read on (backpressure) and holds its connection.

  const refused = await exportOf(gw)
  t.equal(refused.status, 503, 'the next one is refused')
  t.match(refused.headers['retry-after'], /^[1-9]\d*$/, 'with Retry-After in seconds')
  t.match(JSON.parse((await readAll(refused)).text), { error: { code: 'GW_ERR_EXPORT_BUSY', message: /VGW_EXPORT_MAX_CONCURRENT/ } })

  held.body.destroy()
  await completeExportWorks(t, gw)
})

t.test('an export whose database session dies part-way ends visibly failed, and is logged', async (t) => {
  const gw = await withHistory(t)
  const res = await exportOf(gw)
  t.equal(res.status, 200)
  const head = await readAtLeast(res, 300_000)

  const killed = await ownerQuery<{ ok: boolean }>(gw, "SELECT pg_terminate_backend(pid) AS ok FROM pg_stat_activity WHERE datname = current_database() AND application_name = 'vgw-export'")
  t.same(killed, [{ ok: true }], 'the export\'s session is terminated mid-stream')

  const rest = await readAll(res)
  t.ok(rest.error !== null && !res.body.complete, 'the body does not complete: the response is cut without its terminating chunk')
  const lines = (head + rest.text).split('\n').filter((l) => l !== '')
  const last = JSON.parse(lines.at(-1) ?? '{}') as { error?: { code: string, message: string, records: number } }
  t.match(last, { error: { code: 'GW_ERR_EXPORT_FAILED', message: /incomplete/ } }, 'the last line says the export failed')
  t.equal(last.error?.records, lines.length - 1, 'and how many records came before it')
  t.notOk(lines.some((l) => l.startsWith('{"manifest"')), 'no manifest')
  t.ok(lines.length - 1 < ROWS, 'part-way')
  t.ok(gw.logs.some((l) => l.level === 50 && /legal export failed part-way/.test(l.msg)), 'the failure is logged with its reason')
  await completeExportWorks(t, gw)
})

t.test('a gateway that shuts down ends its running exports as failed instead of waiting for them', async (t) => {
  const gw = await withHistory(t)
  const res = await exportOf(gw)
  t.equal(res.status, 200)
  await readAtLeast(res, 1)
  // The export now waits for its client, which reads nothing more until the gateway is closing.
  const closed = gw.gateway.close()
  const rest = await readAll(res)
  await closed
  t.ok(rest.error !== null && !res.body.complete, 'the body is cut without its terminating chunk')
  const last = rest.text.split('\n').filter((l) => l !== '').at(-1) ?? '{}'
  t.match(JSON.parse(last), { error: { code: 'GW_ERR_EXPORT_FAILED', message: /shutting down/ } }, 'and its last line says why')
})
