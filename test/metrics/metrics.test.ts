import t from 'tap'
import { inbox, register, send, waitForStatus } from '../helpers/downlink.ts'
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts'
import { attemptConnect, closed, connectVehicle, envelope, publishEnvelope } from '../helpers/vehicle.ts'
import { parseExposition, valueOf, type Sample } from './exposition.ts'

const VIN = 'WVWZZZ1JZXW000301'
const VIN_FR = 'VF1ZZZ1JZXW000302'

async function scrape (gw: TestGateway, key: string = gw.adminKey): Promise<{ status: number, type: string | null, text: string }> {
  const res = await fetch(`${gw.baseUrl}/metrics`, { headers: { authorization: `Bearer ${key}` } })
  return { status: res.status, type: res.headers.get('content-type'), text: await res.text() }
}

async function samples (gw: TestGateway): Promise<Sample[]> {
  const res = await scrape(gw)
  if (res.status !== 200) throw new Error(`/metrics answered ${res.status}`)
  return parseExposition(res.text)
}

/** Polls until `check` holds on a fresh scrape (bounded), then returns that scrape. */
async function scrapeUntil (gw: TestGateway, check: (s: Sample[]) => boolean, what: string): Promise<Sample[]> {
  const deadline = Date.now() + 5000
  for (;;) {
    const s = await samples(gw)
    if (check(s)) return s
    if (Date.now() > deadline) throw new Error(`metrics never showed ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
}

t.test('GET /metrics needs the metrics:read scope (the admin key has it)', async (t) => {
  const gw = await startTestGateway(t)
  const none = await fetch(`${gw.baseUrl}/metrics`)
  t.equal(none.status, 401)
  const reader = await gw.store.apiKeys.create('reader', ['messages:read'], 'test')
  t.equal((await scrape(gw, reader.key)).status, 403)
  const prometheus = await gw.store.apiKeys.create('prometheus', ['metrics:read'], 'test')
  const ok = await scrape(gw, prometheus.key)
  t.equal(ok.status, 200)
  t.match(ok.type, /^text\/plain; version=0\.0\.4/)
  const s = parseExposition(ok.text)
  t.ok(valueOf(s, 'process_resident_memory_bytes') > 0, 'process defaults')
  t.ok(s.some((x) => x.name === 'nodejs_eventloop_lag_seconds'), 'event-loop lag')
  t.equal(valueOf(s, 'vgw_db_pool_max', { pool: 'commit' }), gw.config.database.commitPoolSize)
  t.ok(valueOf(s, 'vgw_crl_next_update_seconds') > 0, 'the test CRL has a nextUpdate ahead')
  t.equal(valueOf(s, 'vgw_ready'), 1)
})

t.test('counters move by exactly what was sent: uplinks, refusals, downlinks, REST', async (t) => {
  const gw = await startTestGateway(t)
  await register(gw, VIN, 'DE')
  const before = await samples(gw)
  const delta = (after: Sample[], name: string, labels: Record<string, string> = {}): number =>
    valueOf(after, name, labels) - valueOf(before, name, labels)

  const car = await connectVehicle(t, { port: gw.mqttPort, ca: gw.pki.ca, creds: await gw.pki.vehicle(VIN, 'DE') })
  const box = inbox(car, VIN)
  await car.subscribeAsync(`vehicles/${VIN}/down`, { qos: 1 })
  const sent = [envelope(), envelope(), envelope()]
  for (const e of sent) await publishEnvelope(car, VIN, e)
  await publishEnvelope(car, VIN, sent[0] ?? envelope()) // a retry: stored once
  await car.publishAsync(`vehicles/${VIN}/up`, Buffer.from('not an envelope'), { qos: 1 }) // stored as rejected

  const accepted = await send(gw, VIN, { type: 'service.reminder', payload: 'hi' })
  t.equal(accepted.status, 202)
  await box.next(1)
  await waitForStatus(gw, accepted.body.id as string, 'delivered')

  // A second vehicle: a clientId that is not its VIN is refused, then a QoS 2 PUBLISH closes its session.
  const frCreds = await gw.pki.vehicle(VIN_FR, 'FR')
  const refused = await attemptConnect({ port: gw.mqttPort, ca: gw.pki.ca, creds: frCreds, clientId: 'someone-else' })
  t.equal(refused.connected, false)
  const fr = await connectVehicle(t, { port: gw.mqttPort, ca: gw.pki.ca, creds: frCreds })
  fr.publish(`vehicles/${VIN_FR}/up`, Buffer.from('x'), { qos: 2 })
  await closed(fr)

  const after = await scrapeUntil(gw, (s) => valueOf(s, 'vgw_downlink_transitions_total', { status: 'delivered' }) - valueOf(before, 'vgw_downlink_transitions_total', { status: 'delivered' }) === 1 &&
    valueOf(s, 'vgw_security_events_total') - valueOf(before, 'vgw_security_events_total') === 2 &&
    valueOf(s, 'vgw_vehicle_disconnects_total') - valueOf(before, 'vgw_vehicle_disconnects_total') === 1, 'the delivery, two security rows and the disconnect')

  t.equal(delta(after, 'vgw_uplinks_total', { outcome: 'accepted' }), 3, 'three accepted uplinks')
  t.equal(delta(after, 'vgw_uplinks_total', { outcome: 'duplicate' }), 1, 'one retry stored once')
  t.equal(delta(after, 'vgw_uplinks_total', { outcome: 'rejected' }), 1, 'one rejected uplink')
  t.equal(delta(after, 'vgw_uplinks_total', { outcome: 'refused', code: 'GW_ERR_QOS_DENIED' }), 1, 'one QoS 2 refusal')
  t.equal(delta(after, 'vgw_uplink_puback_seconds_count'), 5, 'five PUBACKs released')
  t.equal(delta(after, 'vgw_vehicle_connects_total'), 2)
  t.equal(delta(after, 'vgw_vehicle_connect_refusals_total', { code: 'GW_ERR_CLIENT_ID_MISMATCH' }), 1)
  t.equal(delta(after, 'vgw_security_events_total', { code: 'GW_ERR_CLIENT_ID_MISMATCH' }), 1)
  t.equal(delta(after, 'vgw_security_events_total', { code: 'GW_ERR_QOS_DENIED' }), 1)
  t.equal(valueOf(after, 'vgw_vehicle_connections', { market: 'DE' }), 1, 'one German vehicle connected now')
  t.equal(valueOf(after, 'vgw_vehicle_connections', { market: 'FR' }), 0)
  t.equal(delta(after, 'vgw_downlink_transitions_total', { status: 'queued' }), 1)
  t.equal(delta(after, 'vgw_downlink_transitions_total', { status: 'sent' }), 1)
  t.equal(delta(after, 'vgw_downlink_delivery_seconds_count'), 1, 'one POST→delivered latency')
  const route = { route: '/v1/vehicles/:vin/messages', method: 'POST' }
  t.equal(delta(after, 'vgw_http_requests_total', { ...route, status: '202' }), 1, 'one REST send by its route pattern')
  t.equal(delta(after, 'vgw_http_request_seconds_count', route), 1)
  t.ok(delta(after, 'vgw_commit_batch_size_count', { batcher: 'log' }) >= 1, 'log batches committed')
  t.ok(delta(after, 'vgw_commit_batch_size_sum', { batcher: 'status' }) >= 2, 'sent and delivered committed')

  // Bounded labels: no VIN, no message id, no URL with one in it.
  const text = (await scrape(gw)).text
  for (const id of [VIN, VIN_FR, accepted.body.id as string, ...sent.map((e) => e.messageId)]) t.notOk(text.includes(id), `${id} is not a label`)
})

t.test('every REST response carries its request id, also a refusal', async (t) => {
  const gw = await startTestGateway(t)
  const ok = await fetch(`${gw.baseUrl}/health`)
  const refused = await fetch(`${gw.baseUrl}/v1/vehicles/${VIN}`)
  t.equal(refused.status, 401)
  const ids = [ok.headers.get('x-request-id'), refused.headers.get('x-request-id')]
  for (const id of ids) t.match(id, /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-/)
  t.not(ids[0], ids[1])
})
