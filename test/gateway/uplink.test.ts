import t from 'tap'
import { startTestGateway } from '../helpers/gateway.ts'
import { connectVehicle, envelope, publishEnvelope } from '../helpers/vehicle.ts'

const VIN = 'WVWZZZ1JZXW000010'

interface Item { [k: string]: unknown }

t.test('an uplink is committed before its PUBACK and shows in the API with every field', async (t) => {
  const gw = await startTestGateway(t)
  const creds = await gw.pki.vehicle(VIN, 'DE')
  const car = await connectVehicle(t, { port: gw.mqttPort, ca: gw.pki.ca, creds })
  const e = envelope({ kind: 'EVENT', type: 'call.missed', ttlSeconds: 30, attributes: { locale: 'de-DE' }, payload: Buffer.from([0, 1, 2, 250]) })

  await publishEnvelope(car, VIN, e)
  // PUBACK has arrived: the row must already be committed, read straight from the database.
  const rows = await gw.store.transactions.findByMessageId(VIN, e.messageId)
  t.equal(rows.length, 1, 'committed before PUBACK')

  const res = await gw.api(`/v1/vehicles/${VIN}/transactions?direction=up`)
  t.equal(res.status, 200)
  const body = res.body as { items: Item[], nextCursor: string | null }
  const item = body.items.find((i) => i.messageId === e.messageId)
  t.match(item, {
    vin: VIN,
    direction: 'up',
    status: 'accepted',
    kind: 'EVENT',
    type: 'call.missed',
    createdAtMs: e.createdAtMs,
    ttlSeconds: 30,
    attributes: { locale: 'de-DE' },
    correlationId: null,
    errorCode: null,
    payloadBase64: Buffer.from([0, 1, 2, 250]).toString('base64'),
    market: 'DE'
  })
  t.type(item?.receivedAt, 'string')
  t.equal(item?.occurredAt, new Date(e.createdAtMs ?? 0).toISOString())
  t.equal(body.nextCursor, null)
})

t.test('the vehicle view shows a connected vehicle with its market from the certificate', async (t) => {
  const gw = await startTestGateway(t)
  const creds = await gw.pki.vehicle(VIN, 'CN')
  const car = await connectVehicle(t, { port: gw.mqttPort, ca: gw.pki.ca, creds })
  const res = await gw.api(`/v1/vehicles/${VIN}`)
  t.equal(res.status, 200)
  t.match(res.body, { vin: VIN, known: true, connected: true, market: 'CN' })
  car.end(true)
  await new Promise((resolve) => setTimeout(resolve, 300))
  const after = await gw.api(`/v1/vehicles/${VIN}`)
  t.match(after.body, { connected: false, market: 'CN' })
  t.type((after.body as Item).lastDisconnectedAt, 'string')
})

t.test('a retried uplink (same message_id and created_at) is stored once', async (t) => {
  const gw = await startTestGateway(t)
  const creds = await gw.pki.vehicle(VIN)
  const car = await connectVehicle(t, { port: gw.mqttPort, ca: gw.pki.ca, creds })
  const e = envelope()
  await publishEnvelope(car, VIN, e)
  await publishEnvelope(car, VIN, e)
  car.end(true)
  const again = await connectVehicle(t, { port: gw.mqttPort, ca: gw.pki.ca, creds })
  await publishEnvelope(again, VIN, e)
  const rows = await gw.store.transactions.findByMessageId(VIN, e.messageId)
  t.equal(rows.length, 1)
})

t.test('many uplinks in flight from one vehicle are all stored and acknowledged', async (t) => {
  const gw = await startTestGateway(t)
  const creds = await gw.pki.vehicle(VIN)
  const car = await connectVehicle(t, { port: gw.mqttPort, ca: gw.pki.ca, creds })
  const envelopes = Array.from({ length: 200 }, () => envelope())
  await Promise.all(envelopes.map((e) => publishEnvelope(car, VIN, e)))
  const page = await gw.store.transactions.listForVehicle({ vin: VIN, direction: 'up', limit: 1000 })
  t.equal(page.items.length, 200)
  t.same(new Set(page.items.map((i) => i.messageId)), new Set(envelopes.map((e) => e.messageId)))
})
