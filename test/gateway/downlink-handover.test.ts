import type { MqttClient } from 'mqtt'
import t from 'tap'
import { parseEnvelope } from '../../protocol/index.ts'
import { messageStatus, register, send, waitForStatus } from '../helpers/downlink.ts'
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts'
import { connectVehicle } from '../helpers/vehicle.ts'
import type { Test } from 'tap'

// A send to a vehicle connected here, with nothing else waiting for it, is handed to the
// dispatcher as it commits and published without a `pending` query (one round trip per send);
// anything else still goes through the query, which keeps priority order and redelivery.

const VIN = 'WVWZZZ1JZXW000501'

/** Counts the dispatcher's `pending` queries from now on. */
function countPendingQueries (gw: TestGateway): { count: () => number } {
  const messages = gw.store.messages
  const original = messages.pending.bind(messages)
  let n = 0
  messages.pending = async (...args) => {
    n++
    return await original(...args)
  }
  return { count: () => n }
}

/** The raw envelopes a vehicle receives on its down topic. */
function rawInbox (car: MqttClient): Buffer[] {
  const got: Buffer[] = []
  car.on('message', (topic, payload) => { if (topic === `vehicles/${VIN}/down`) got.push(Buffer.from(payload)) })
  return got
}

async function until (check: () => boolean | Promise<boolean>, what: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!await check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
}

async function listening (t: Test, gw: TestGateway, qos: 0 | 1 = 1): Promise<{ car: MqttClient, got: Buffer[] }> {
  const car = await connectVehicle(t, { port: gw.mqttPort, ca: gw.pki.ca, creds: await gw.pki.vehicle(VIN) })
  const got = rawInbox(car)
  await car.subscribeAsync(`vehicles/${VIN}/down`, { qos })
  return { car, got }
}

t.test('sends to a connected vehicle with nothing else waiting go out without a pending query, and are delivered', async (t) => {
  const gw = await startTestGateway(t)
  await register(gw, VIN)
  const queries = countPendingQueries(gw)
  const { got } = await listening(t, gw)
  // Subscribing looks once for what waited while the vehicle was away.
  await until(() => queries.count() === 1, 'the subscribe query')
  await new Promise((resolve) => setTimeout(resolve, 100))
  const ids: string[] = []
  for (let i = 0; i < 5; i++) {
    const r = await send(gw, VIN, { type: 'service.reminder', payload: `hand-over ${i}` })
    ids.push(r.body.id as string)
    await until(() => got.length === i + 1, `message ${i}`)
  }
  t.same(got.map((b) => parseEnvelope(b).messageId), ids, 'each arrived, in order')
  for (const id of ids) await waitForStatus(gw, id, 'delivered')
  t.equal(queries.count(), 1, 'no pending query after the subscribe one: neither per send nor per PUBACK')
})

t.test('a vehicle with messages waiting gets them by the query, in priority order, the new one included', async (t) => {
  const gw = await startTestGateway(t, { VGW_DOWNLINK_WINDOW: '1' })
  await register(gw, VIN)
  // Subscribed at QoS 0: no PUBACK, so the one window slot stays taken and later sends must wait for the query.
  const { got } = await listening(t, gw, 0)
  const first = (await send(gw, VIN, { type: 'service.reminder', payload: 'first' })).body.id as string
  await until(() => got.length === 1, 'the first message')
  const low = (await send(gw, VIN, { type: 'service.reminder', payload: 'low', priority: 1 })).body.id as string
  const high = (await send(gw, VIN, { type: 'service.reminder', payload: 'high', priority: 9 })).body.id as string
  await new Promise((resolve) => setTimeout(resolve, 300))
  t.equal(got.length, 1, 'nothing past the window')
  t.equal((await messageStatus(gw, low)).status, 'queued', 'the others wait, queued')

  // The next connection: all three by priority (README, "Delivery semantics"), the unproven first one (priority 0) last.
  const next = await listening(t, gw, 1)
  await until(() => next.got.length === 3, 'all three')
  t.same(next.got.map((b) => parseEnvelope(b).messageId), [high, low, first], 'high, low, then the first again')
})

t.test('a message handed over as it committed has the same bytes as its redelivery read from the database', async (t) => {
  const gw = await startTestGateway(t)
  await register(gw, VIN)
  const one = await listening(t, gw, 0)
  await new Promise((resolve) => setTimeout(resolve, 100))
  // Keys in an order jsonb does not keep (it sorts shortest first, then bytewise).
  const attributes = { 'zz-long-key': '1', a: '2', bb: '3', ab: '4' }
  const id = (await send(gw, VIN, { type: 'service.reminder', payload: 'same bytes', attributes })).body.id as string
  await until(() => one.got.length === 1, 'the hand-over')
  await waitForStatus(gw, id, 'sent')
  one.car.end(true)
  await new Promise((resolve) => setTimeout(resolve, 200))
  const two = await listening(t, gw, 1)
  await until(() => two.got.length === 1, 'the redelivery')
  t.same(parseEnvelope(one.got[0] as Buffer).attributes, attributes, 'the attributes as sent')
  t.ok((one.got[0] as Buffer).equals(two.got[0] as Buffer), 'byte for byte the same envelope')
})
