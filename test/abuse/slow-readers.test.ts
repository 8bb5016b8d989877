// Clients that hold a bounded resource by being slow or by asking for too much at once
// (issue #20, item 8): an export client that reads one chunk now and then, and a campaign
// whose payload times its recipients is far more than the database should take in one request.
import pg from 'pg'
import t from 'tap'
import { getExport, readAll, type ExportResponse } from '../helpers/export-http.ts'
import { fillVehicleRows } from '../helpers/bulk-rows.ts'
import { register } from '../helpers/downlink.ts'
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts'

const VIN = 'WVWZZZ1JZXW000821'
const TO = new Date(Date.now() - 24 * 3600_000)
const FROM = new Date(TO.getTime() - 24 * 3600_000)

function exportOf (gw: TestGateway, key: string, to = TO): Promise<ExportResponse> {
  return getExport(`${gw.baseUrl}/v1/vehicles/${VIN}/export?from=${FROM.toISOString()}&to=${to.toISOString()}`, key)
}

async function exportSessions (gw: TestGateway): Promise<number> {
  const db = new pg.Client({ connectionString: gw.dbUrl })
  await db.connect()
  try {
    const { rows } = await db.query<{ n: number }>("SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND application_name = 'vgw-export' AND state <> 'idle'")
    return rows[0]?.n ?? -1
  } finally {
    await db.end()
  }
}

t.test('an export client that reads one chunk a second loses its export, and the slot and its connection are freed', async (t) => {
  // The attack reads one 64 KiB chunk every 59 s against a 60 s stall bound; here the same pace is
  // scaled to a 1 s window and a 256 KiB/s minimum so the test is fast.
  const gw = await startTestGateway(t, { VGW_EXPORT_MAX_CONCURRENT: '1', VGW_EXPORT_MIN_BYTES_PER_S: String(256 * 1024), VGW_EXPORT_RATE_WINDOW_MS: '1000' })
  const key = (await gw.store.apiKeys.create('legal-team', ['legal'], 'test')).key
  await fillVehicleRows(gw.dbUrl, VIN, 60_000, FROM, TO)

  const slow = await exportOf(gw, key)
  t.equal(slow.status, 200, 'the slow client\'s export starts')
  let read = ''
  let freed = false
  const deadline = Date.now() + 30_000
  while (!freed && Date.now() < deadline) {
    // One chunk (at most 64 KiB) a second: far below the minimum rate, but never silent for the 60 s stall bound.
    const { done, value } = await slow.chunks.next()
    if (done === true) break
    read += value.toString('utf8')
    const probe = await exportOf(gw, key, new Date(FROM.getTime() + 60_000))
    freed = probe.status === 200
    await readAll(probe)
    if (!freed) await new Promise((resolve) => setTimeout(resolve, 1000))
  }
  t.ok(freed, 'another export is served while the slow client is still connected: its slot was freed')
  const rest = await readAll(slow)
  t.ok(rest.error !== null && !slow.body.complete, 'the slow export\'s body is cut without its terminating chunk')
  const lines = (read + rest.text).split('\n').filter((l) => l !== '')
  const last = JSON.parse(lines.at(-1) ?? '{}') as { error?: { code: string, message: string, records: number } }
  t.match(last, { error: { code: 'GW_ERR_EXPORT_FAILED', message: /bytes\/s/ } }, 'its last line is the documented failure, saying why')
  t.equal(last.error?.records, lines.length - 1, 'with the records before it')
  t.ok(gw.logs.some((l) => l.level === 50 && /legal export failed part-way.*VGW_EXPORT_MIN_BYTES_PER_S/.test(l.msg)), 'the failure is logged with its reason')
  t.equal(await exportSessions(gw), 0, 'no export session is left busy or in a transaction')
  t.match(gw.store.poolStats().find((p) => p.pool === 'export'), { waiting: 0 }, 'nothing waits for an export connection')
})

const vinOf = (i: number): string => `WVWZZZ1JZ${String(i).padStart(8, '0')}`

t.test('a campaign of 100,000 recipients × 200 KiB is refused with 413 before anything is written', async (t) => {
  const gw = await startTestGateway(t)
  await register(gw, vinOf(1))
  const vins = Array.from({ length: 100_000 }, (_, i) => vinOf(i + 1))
  const res = await gw.api('/v1/campaigns', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ vins, type: 'service.reminder', payload: Buffer.alloc(200 * 1024, 1).toString('base64'), payloadEncoding: 'base64' })
  })
  t.equal(res.status, 413, '413')
  t.match(res.body, { error: { code: 'GW_ERR_CAMPAIGN_TOO_LARGE', message: /VGW_CAMPAIGN_MAX_BYTES/ } })
  const db = new pg.Client({ connectionString: gw.dbUrl })
  await db.connect()
  t.teardown(() => db.end())
  t.same((await db.query('SELECT count(*)::int AS n FROM messages')).rows, [{ n: 0 }], 'no message was written')
})

t.test('a market campaign whose recipients times its envelope pass VGW_CAMPAIGN_MAX_BYTES is refused; a smaller one goes', async (t) => {
  const gw = await startTestGateway(t, { VGW_CAMPAIGN_MAX_BYTES: String(1024 * 1024) })
  for (let i = 1; i <= 20; i++) await register(gw, vinOf(i), 'FR')
  const campaign = (payloadBytes: number): Promise<{ status: number, body: unknown }> => gw.api('/v1/campaigns', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ market: 'FR', type: 'service.reminder', payload: 'x'.repeat(payloadBytes) })
  })
  const big = await campaign(64 * 1024)
  t.equal(big.status, 413, '20 vehicles × 64 KiB: 413')
  t.match(big.body, { error: { code: 'GW_ERR_CAMPAIGN_TOO_LARGE' } })
  const small = await campaign(1024)
  t.equal(small.status, 202, '20 vehicles × 1 KiB: accepted')
  t.match(small.body, { messageCount: 20 })
})
