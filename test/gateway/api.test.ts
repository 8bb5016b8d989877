import pg from 'pg'
import t from 'tap'
import { startTestGateway } from '../helpers/gateway.ts'
import { connectVehicle, envelope, publishEnvelope } from '../helpers/vehicle.ts'

const VIN = 'WVWZZZ1JZXW000070'

t.test('REST errors use catalogue codes and the right status', async (t) => {
  const gw = await startTestGateway(t)
  await connectVehicle(t, { port: gw.mqttPort, ca: gw.pki.ca, creds: await gw.pki.vehicle(VIN) })
  const reader = await gw.store.apiKeys.create('reader', ['vehicles:read'], 'test')

  const cases: Array<[string, string, string | null, number, string]> = [
    ['no key', `/v1/vehicles/${VIN}`, null, 401, 'GW_ERR_UNAUTHENTICATED'],
    ['an unknown key', `/v1/vehicles/${VIN}`, 'vgw_not-a-key', 401, 'GW_ERR_UNAUTHENTICATED'],
    ['a key without the scope', `/v1/vehicles/${VIN}/transactions`, reader.key, 403, 'GW_ERR_FORBIDDEN'],
    ['an invalid VIN', '/v1/vehicles/IOQ123', gw.adminKey, 400, 'GW_ERR_INVALID_VIN'],
    ['an unknown vehicle', '/v1/vehicles/WVWZZZ1JZXW999999', gw.adminKey, 404, 'GW_ERR_VEHICLE_NOT_FOUND'],
    ['a cursor we never issued', `/v1/vehicles/${VIN}/transactions?cursor=abc`, gw.adminKey, 400, 'GW_ERR_INVALID_CURSOR'],
    ['a limit out of range', `/v1/vehicles/${VIN}/transactions?limit=5000`, gw.adminKey, 400, 'GW_ERR_VALIDATION'],
    ['an unknown direction', `/v1/vehicles/${VIN}/transactions?direction=sideways`, gw.adminKey, 400, 'GW_ERR_VALIDATION'],
    ['a bad time', `/v1/vehicles/${VIN}/transactions?from=yesterday`, gw.adminKey, 400, 'GW_ERR_VALIDATION'],
    ['an unknown route', '/v1/nothing-here', gw.adminKey, 404, 'GW_ERR_NOT_FOUND']
  ]
  for (const [what, path, key, status, code] of cases) {
    const res = await gw.api(path, { key })
    t.equal(res.status, status, `${what}: status`)
    t.match(res.body, { error: { code, message: String } }, `${what}: body`)
  }
  const named = await gw.api(`/v1/vehicles/${VIN}/transactions?limit=5000`)
  t.match((named.body as { error: { message: string } }).error.message, /limit/, 'the message names the field')

  const ok = await gw.api(`/v1/vehicles/${VIN}`, { key: reader.key })
  t.equal(ok.status, 200, 'a key with the scope is let in')
})

t.test('cursor paging walks the whole log without gaps or repeats', async (t) => {
  const gw = await startTestGateway(t)
  const creds = await gw.pki.vehicle(VIN)
  for (let i = 0; i < 7; i++) {
    const car = await connectVehicle(t, { port: gw.mqttPort, ca: gw.pki.ca, creds })
    await new Promise<void>((resolve) => car.end(false, {}, () => resolve()))
  }
  await new Promise((resolve) => setTimeout(resolve, 200))
  await gw.gateway.log.flush()
  const seen: string[] = []
  let cursor: string | null = null
  do {
    const q: string = cursor === null ? '' : `&cursor=${cursor}`
    const res = await gw.api(`/v1/vehicles/${VIN}/transactions?limit=3${q}`)
    const body = res.body as { items: Array<{ id: string }>, nextCursor: string | null }
    seen.push(...body.items.map((i) => i.id))
    cursor = body.nextCursor
  } while (cursor !== null)
  t.equal(seen.length, 14)
  t.equal(new Set(seen).size, 14)
})

t.test('health and readiness', async (t) => {
  const gw = await startTestGateway(t)
  t.match(await gw.api('/health', { key: null }), { status: 200, body: { status: 'ok' } })
  t.match(await gw.api('/ready', { key: null }), { status: 200, body: { status: 'ready' } })
})

t.test('pages are bounded in bytes as well as rows, and carry raw envelope bytes only when asked', async (t) => {
  const gw = await startTestGateway(t, { VGW_PAGE_MAX_BYTES: String(64 * 1024) })
  const car = await connectVehicle(t, { port: gw.mqttPort, ca: gw.pki.ca, creds: await gw.pki.vehicle(VIN) })
  const sent: string[] = []
  for (let i = 0; i < 12; i++) {
    const e = envelope({ payload: Buffer.alloc(12 * 1024, i) })
    await publishEnvelope(car, VIN, e)
    sent.push(e.messageId)
  }
  type Page = { items: Array<Record<string, unknown>>, nextCursor: string | null }
  const walk = async (query: string): Promise<{ pages: number[], items: Array<Record<string, unknown>> }> => {
    const pages: number[] = []
    const items: Array<Record<string, unknown>> = []
    let cursor: string | null = null
    do {
      const res = await fetch(`${gw.baseUrl}/v1/vehicles/${VIN}/transactions?direction=up&limit=1000${query}${cursor === null ? '' : `&cursor=${cursor}`}`, { headers: { authorization: `Bearer ${gw.adminKey}` } })
      const text = await res.text()
      t.equal(res.status, 200)
      const page = JSON.parse(text) as Page
      t.ok(Buffer.byteLength(text) <= 64 * 1024, `a page of ${Buffer.byteLength(text)} bytes`)
      t.ok(page.items.length >= 1)
      pages.push(page.items.length)
      items.push(...page.items)
      cursor = page.nextCursor
    } while (cursor !== null)
    return { pages, items }
  }

  const lean = await walk('')
  t.ok(lean.pages.length > 1, `the log came in ${lean.pages.length} pages (${lean.pages.join(', ')} items)`)
  t.same(lean.items.map((i) => i.messageId).sort(), [...sent].sort(), 'every uplink once, none lost at a page end')
  t.ok(lean.items.every((i) => !('rawBase64' in i) && typeof i.payloadBase64 === 'string'), 'no raw bytes unless asked; the payload is there')

  const full = await walk('&include=raw')
  t.ok(full.pages.length > lean.pages.length, 'raw bytes make the pages end sooner')
  t.same(full.items.map((i) => i.id), lean.items.map((i) => i.id), 'the same items')
  const stored = await gw.store.transactions.findByMessageId(VIN, sent[0] as string)
  const first = full.items.find((i) => i.messageId === sent[0])
  t.equal(first?.rawBase64, Buffer.from(stored[0]?.raw ?? []).toString('base64'), 'with include=raw, the bytes as received')
  t.match(await gw.api(`/v1/vehicles/${VIN}/transactions?include=everything`), { status: 400, body: { error: { code: 'GW_ERR_VALIDATION', message: /include/ } } })
})

t.test('API keys and tokens never reach the logs', async (t) => {
  const gw = await startTestGateway(t)
  await connectVehicle(t, { port: gw.mqttPort, ca: gw.pki.ca, creds: await gw.pki.vehicle(VIN) })
  // A failing read is logged with its URL; a browser stream client puts its key in that URL.
  const owner = new pg.Client({ connectionString: gw.dbUrl })
  await owner.connect()
  await owner.query('ALTER TABLE transactions RENAME TO transactions_away')
  t.teardown(async () => {
    await owner.query('ALTER TABLE transactions_away RENAME TO transactions')
    await owner.end()
  })
  const inUrl = await gw.api(`/v1/vehicles/${VIN}/transactions?token=${gw.adminKey}`, { key: null })
  t.match(inUrl, { status: 401, body: { error: { code: 'GW_ERR_UNAUTHENTICATED', message: /\/v1\/stream only/ } } }, '?token= only on the stream')
  t.equal((await gw.api(`/v1/vehicles/${VIN}/transactions?limit=5&token=${gw.adminKey}`, { key: gw.adminKey })).status, 500)
  await gw.api(`/v1/vehicles/${VIN}/transactions`, { key: gw.adminKey })
  const logged = gw.logs.filter((l) => l.msg === 'request failed')
  t.ok(logged.length >= 2, 'the failures were logged')
  t.match(logged[0], { url: `/v1/vehicles/${VIN}/transactions` }, 'with the path only: no query string')
  const secret = gw.adminKey.slice(4)
  t.notOk(gw.logs.some((l) => JSON.stringify(l).includes(secret)), 'no log line holds the key')
})

t.test('an oversized request body is refused with GW_ERR_BODY_TOO_LARGE', async (t) => {
  const gw = await startTestGateway(t)
  const res = await gw.api(`/v1/vehicles/${VIN}/messages`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ type: 'service.reminder', payload: 'x'.repeat(2 * 1024 * 1024) })
  })
  t.match(res, { status: 413, body: { error: { code: 'GW_ERR_BODY_TOO_LARGE' } } })
})
