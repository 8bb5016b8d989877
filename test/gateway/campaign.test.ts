import t from 'tap'
import { inbox, register } from '../helpers/downlink.ts'
import { startTestGateway } from '../helpers/gateway.ts'
import { connectVehicle } from '../helpers/vehicle.ts'

function vin (n: number): string {
  return `WVWZZZ1JZXW${String(n).padStart(6, '0')}`
}

t.test('a campaign to a market creates one message per vehicle there and reports counts per status', async (t) => {
  const gw = await startTestGateway(t)
  const de = Array.from({ length: 40 }, (_, i) => vin(200 + i))
  for (const v of de) await register(gw, v, 'DE')
  for (let i = 0; i < 5; i++) await register(gw, vin(300 + i), 'US')
  // One DE vehicle is online and listening: it gets its message at once.
  const online = de[0] as string
  const car = await connectVehicle(t, { port: gw.mqttPort, ca: gw.pki.ca, creds: await gw.pki.vehicle(online, 'DE') })
  const box = inbox(car, online)
  await car.subscribeAsync(`vehicles/${online}/down`, { qos: 1 })

  const res = await gw.api('/v1/campaigns', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ market: 'DE', type: 'ota.announcement', payload: 'v42 is available', ttlSeconds: 3600 })
  })
  t.equal(res.status, 202)
  const created = res.body as { id: string, messageCount: number, skippedVins: string[] }
  t.equal(created.messageCount, 40)
  const [got] = await box.next(1)
  t.match(got, { kind: 'MESSAGE', type: 'ota.announcement' })

  const deadline = Date.now() + 5000
  let report: { statuses: Record<string, number>, messageCount: number } = { statuses: {}, messageCount: 0 }
  while (Date.now() < deadline) {
    report = (await gw.api(`/v1/campaigns/${created.id}`)).body as typeof report
    if (report.statuses.delivered === 1) break
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  t.match(report, { messageCount: 40, statuses: { queued: 39, delivered: 1, sent: 0, acknowledged: 0, expired: 0 } })
  t.match((await gw.api(`/v1/vehicles/${vin(300)}`)).body, { pendingMessages: 0 }, 'the US vehicles got none')
  t.match((await gw.api(`/v1/vehicles/${de[5] as string}`)).body, { pendingMessages: 1 })
  // Each message is in its vehicle's log.
  const log = (await gw.api(`/v1/vehicles/${de[5] as string}/transactions?direction=down`)).body as { items: Array<Record<string, unknown>> }
  t.match(log.items, [{ kind: 'MESSAGE', type: 'ota.announcement', status: 'queued', details: { campaignId: created.id } }])
})

t.test('a campaign to a list skips unknown VINs and names them; bad requests are refused', async (t) => {
  const gw = await startTestGateway(t)
  await register(gw, vin(400), 'FR')
  await register(gw, vin(401), 'FR')
  const post = (body: unknown) => gw.api('/v1/campaigns', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })
  const res = await post({ vins: [vin(400), vin(401), vin(402), vin(400)], type: 'service.reminder', payload: 'x' })
  t.match(res, { status: 202, body: { messageCount: 2, skippedVins: [vin(402)] } })
  t.match(await post({ type: 'a', payload: 'x' }), { status: 400, body: { error: { code: 'GW_ERR_VALIDATION', message: /vins or market/ } } })
  t.match(await post({ vins: [vin(400)], market: 'FR', type: 'a', payload: 'x' }), { status: 400, body: { error: { code: 'GW_ERR_VALIDATION' } } })
  t.match(await post({ vins: ['bogus'], type: 'a', payload: 'x' }), { status: 400, body: { error: { code: 'GW_ERR_INVALID_VIN' } } })
  t.match(await gw.api('/v1/campaigns/01a21686-c80f-745f-90c7-9aa77d15cf05'), { status: 404, body: { error: { code: 'GW_ERR_CAMPAIGN_NOT_FOUND' } } })
  t.match(await gw.api('/v1/messages/nope'), { status: 404, body: { error: { code: 'GW_ERR_MESSAGE_NOT_FOUND' } } })
})

t.test('the OpenAPI document is served at /docs from the schemas that validate requests', async (t) => {
  const gw = await startTestGateway(t)
  const res = await gw.api('/docs', { key: null })
  t.equal(res.status, 200)
  const doc = res.body as { openapi: string, paths: Record<string, Record<string, { requestBody?: { content: Record<string, { schema: { properties: Record<string, unknown>, required: string[] } }> } }>> }
  t.match(doc.openapi, /^3\./)
  const send = doc.paths['/v1/vehicles/{vin}/messages']?.post
  t.ok(send, 'the send route is documented')
  const schema = send?.requestBody?.content['application/json']?.schema
  t.same(schema?.required, ['type', 'payload'])
  t.ok(schema?.properties.ttlSeconds !== undefined)
  for (const p of ['/v1/messages/{id}', '/v1/campaigns', '/v1/campaigns/{id}', '/v1/vehicles/{vin}', '/v1/vehicles/{vin}/transactions']) t.ok(doc.paths[p], p)
})

t.test('campaign recipients are capped, for a list and for a market, and a refused campaign creates nothing', async (t) => {
  const gw = await startTestGateway(t, { VGW_CAMPAIGN_MAX_RECIPIENTS: '3' })
  const fr = [vin(500), vin(501), vin(502), vin(503)]
  for (const v of fr) await register(gw, v, 'FR')
  for (const v of fr.slice(0, 3)) await register(gw, v.replace('JZXW0005', 'JZXW0006'), 'IT')
  const post = (body: unknown) => gw.api('/v1/campaigns', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })
  const message = { type: 'service.reminder', payload: 'x' }

  t.match(await post({ vins: fr, ...message }), { status: 413, body: { error: { code: 'GW_ERR_TOO_MANY_RECIPIENTS', message: /4 vehicles.*3 at most/ } } })
  t.match(await post({ market: 'FR', ...message }), { status: 413, body: { error: { code: 'GW_ERR_TOO_MANY_RECIPIENTS', message: /FR/ } } })
  for (const v of fr) t.match((await gw.api(`/v1/vehicles/${v}`)).body, { pendingMessages: 0 }, `${v}: nothing was queued`)

  t.match(await post({ vins: [fr[0], fr[1], fr[2], fr[0]], ...message }), { status: 202, body: { messageCount: 3 } }, 'three distinct VINs are within the cap')
  t.match(await post({ market: 'IT', ...message }), { status: 202, body: { messageCount: 3 } }, 'a market of three is within the cap')
})
