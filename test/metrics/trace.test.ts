import os from 'node:os'
import t from 'tap'
import { encodeEnvelope } from '../../protocol/index.ts'
import { inbox, register, waitForStatus } from '../helpers/downlink.ts'
import { startTestGateway } from '../helpers/gateway.ts'
import { connectVehicle, envelope, publishEnvelope } from '../helpers/vehicle.ts'

const VIN = 'WVWZZZ1JZXW000311'

interface Step { step: string, at: string, logId: string | null, sincePreviousMs: number, sinceAcceptedMs: number, [k: string]: unknown }

t.test('a downlink\'s trace: accepted by a key, queued, published on a connection (attempt 1), PUBACK, the app\'s ACK', async (t) => {
  const gw = await startTestGateway(t)
  await register(gw, VIN, 'DE')
  const key = await gw.store.apiKeys.create('backend', ['messages:send', 'messages:read'], 'test')
  const car = await connectVehicle(t, { port: gw.mqttPort, ca: gw.pki.ca, creds: await gw.pki.vehicle(VIN, 'DE') })
  const box = inbox(car, VIN)
  await car.subscribeAsync(`vehicles/${VIN}/down`, { qos: 1 })
  const res = await gw.api(`/v1/vehicles/${VIN}/messages`, { method: 'POST', key: key.key, headers: { 'content-type': 'application/json' }, body: JSON.stringify({ type: 'service.reminder', payload: 'hi' }) })
  const id = (res.body as { id: string }).id
  await box.next(1)
  await waitForStatus(gw, id, 'delivered')
  await publishEnvelope(car, VIN, envelope({ kind: 'ACK', correlationId: id, ackStatus: 'READ', type: 'message.ack' }))
  await waitForStatus(gw, id, 'acknowledged')

  const trace = await gw.api(`/v1/messages/${id}/trace`, { key: key.key })
  t.equal(trace.status, 200)
  const body = trace.body as { id: string, vin: string, status: string, steps: Step[] }
  t.match(body, { id, vin: VIN, status: 'acknowledged' })
  const names = body.steps.map((s) => s.step)
  t.same(names.slice(0, 4), ['accepted', 'queued', 'published', 'puback'], 'in order')
  t.ok(names.includes('app_ack') && names.includes('acknowledged'), 'the app\'s ACK and the status it set')
  t.match(body.steps[0], { apiKeyId: key.id, sinceAcceptedMs: 0 })
  t.match(body.steps[2], { attempt: 1, connection: { clientId: VIN, gateway: `${os.hostname()}/${process.pid}`, remoteAddress: String, connectLogId: String } })
  t.match(body.steps.find((s) => s.step === 'app_ack'), { ackStatus: 'READ' })
  for (const s of body.steps.slice(1)) {
    t.type(s.logId, 'string', `${s.step} names its log row`)
    t.ok(s.sincePreviousMs >= -1000 && s.sinceAcceptedMs >= -1000, `${s.step} has its times`)
  }
  // The delivery, followed by its message id, is in the log rows the vehicle's log shows.
  const log = await gw.api(`/v1/vehicles/${VIN}/transactions?kind=MESSAGE`)
  const ids = (log.body as { items: Array<{ id: string }> }).items.map((i) => i.id)
  for (const s of body.steps.filter((x) => x.step !== 'accepted' && x.step !== 'app_ack')) t.ok(ids.includes(s.logId as string), `${s.step} is a row of the log`)

  t.equal((await gw.api('/v1/messages/0190a0a0-0000-7000-8000-000000000000/trace')).status, 404)
  t.equal((await gw.api(`/v1/messages/${id}/trace`, { key: (await gw.store.apiKeys.create('sender', ['messages:send'], 'test')).key })).status, 403)
})

t.test('one uplink transaction: decoded envelope, raw bytes, and the commit that stored it', async (t) => {
  const gw = await startTestGateway(t)
  const car = await connectVehicle(t, { port: gw.mqttPort, ca: gw.pki.ca, creds: await gw.pki.vehicle(VIN, 'DE') })
  const e = envelope({ type: 'telemetry.position', payload: Buffer.from('{"lat":1}') })
  await publishEnvelope(car, VIN, e)
  const list = await gw.api(`/v1/vehicles/${VIN}/transactions?direction=up`)
  const row = (list.body as { items: Array<{ id: string, messageId: string }> }).items.find((i) => i.messageId === e.messageId)
  t.ok(row)
  const res = await gw.api(`/v1/vehicles/${VIN}/transactions/${row?.id ?? ''}`)
  t.equal(res.status, 200)
  const body = res.body as { item: Record<string, unknown>, envelope: Record<string, unknown>, commit: { xid: string, rows: number } }
  t.match(body.item, { id: row?.id, messageId: e.messageId, status: 'accepted', rawBase64: Buffer.from(encodeEnvelope(e)).toString('base64') })
  t.match(body.envelope, { messageId: e.messageId, type: 'telemetry.position', payloadBase64: Buffer.from('{"lat":1}').toString('base64'), payloadBytes: 9 })
  t.match(body.commit, { xid: /^\d+$/ })
  t.ok(body.commit.rows >= 1, 'the commit holds this row')
  t.equal((await gw.api(`/v1/vehicles/${VIN}/transactions/0190a0a0-0000-7000-8000-000000000000`)).status, 404)
  t.equal((await gw.api(`/v1/vehicles/WVWZZZ1JZXW000312/transactions/${row?.id ?? ''}`)).status, 404, 'another vehicle\'s id is not found')
})

t.test('at debug level one grep of a message id follows it through the logs: queued (with its request id), published, PUBACK, the app\'s ACK', async (t) => {
  const level = process.env.VGW_TEST_LOG_LEVEL
  process.env.VGW_TEST_LOG_LEVEL = 'debug'
  t.teardown(() => { if (level === undefined) delete process.env.VGW_TEST_LOG_LEVEL; else process.env.VGW_TEST_LOG_LEVEL = level })
  const gw = await startTestGateway(t)
  await register(gw, VIN, 'DE')
  const car = await connectVehicle(t, { port: gw.mqttPort, ca: gw.pki.ca, creds: await gw.pki.vehicle(VIN, 'DE') })
  const box = inbox(car, VIN)
  await car.subscribeAsync(`vehicles/${VIN}/down`, { qos: 1 })
  const res = await fetch(`${gw.baseUrl}/v1/vehicles/${VIN}/messages`, { method: 'POST', headers: { authorization: `Bearer ${gw.adminKey}`, 'content-type': 'application/json' }, body: JSON.stringify({ type: 'service.reminder', payload: 'hi' }) })
  const id = (await res.json() as { id: string }).id
  const requestId = res.headers.get('x-request-id')
  await box.next(1)
  await waitForStatus(gw, id, 'delivered')
  await publishEnvelope(car, VIN, envelope({ kind: 'ACK', correlationId: id, ackStatus: 'READ', type: 'message.ack' }))
  await waitForStatus(gw, id, 'acknowledged')
  // What `grep <id>` on the JSON lines finds.
  const lines = gw.logs.filter((l) => JSON.stringify(l).includes(id))
  t.same(lines.map((l) => l.msg), ['message queued', 'downlink published', 'downlink PUBACK', 'uplink committed'], 'every step, in order')
  t.ok(lines.every((l) => l.vin === VIN && l.messageId === id), 'each line names the message and the vehicle')
  t.equal(lines[0]?.requestId, requestId, 'the send carries the request id the response returned')
})
