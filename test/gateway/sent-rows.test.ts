import pg from 'pg'
import t from 'tap'
import { inbox, register, send, waitForStatus } from '../helpers/downlink.ts'
import { startTestGateway } from '../helpers/gateway.ts'
import { testStore } from '../helpers/database.ts'
import { connectVehicle } from '../helpers/vehicle.ts'

// Issue #19 A: every attempt that went out has its `sent` row with the bytes sent, whatever the
// order in which the PUBLISH completes and the vehicle's PUBACK comes back.
const VIN = 'WVWZZZ1JZXW000190'

t.test('a sent transition that commits after delivered is still recorded with its bytes', async (t) => {
  const { store } = await testStore(t)
  await store.vehicles.register(VIN, 'DE', new Date())
  const now = new Date()
  await store.transactions.ensurePartitions([now])
  const [queued] = await store.messages.enqueueMany([{
    id: '01900000-0000-7000-8000-000000000001', vin: VIN, apiKeyId: null, idempotencyKey: null, type: 'service.reminder',
    payload: Buffer.from('hi'), attributes: {}, ttlSeconds: 600, priority: 0, createdAt: now, logId: '01900000-0000-7000-8000-0000000000a1'
  }])
  t.match(queued, { created: true })
  const id = '01900000-0000-7000-8000-000000000001'
  const bytes = Buffer.from([9, 8, 7])
  // The PUBACK's transition reached the batcher first.
  await store.messages.applyTransitions([{ messageId: id, vin: VIN, status: 'delivered', at: new Date(now.getTime() + 2), logId: '01900000-0000-7000-8000-0000000000a2' }])
  const late = await store.messages.applyTransitions([{ messageId: id, vin: VIN, status: 'sent', at: new Date(now.getTime() + 1), raw: bytes, logId: '01900000-0000-7000-8000-0000000000a3' }])
  t.equal(late.length, 1, 'the late sent row is written')
  const history = await store.messages.history(VIN, id)
  t.same(history.map((r) => r.status), ['queued', 'sent', 'delivered'])
  t.same(Buffer.from(history[1]?.raw ?? []), bytes, 'with the bytes that went out')
  t.match(await store.messages.get(id), { status: 'delivered', sentAt: Date }, 'the status does not move back')
  // Retried after a lost answer, the same transition adds nothing.
  t.equal((await store.messages.applyTransitions([{ messageId: id, vin: VIN, status: 'sent', at: new Date(now.getTime() + 1), raw: bytes, logId: '01900000-0000-7000-8000-0000000000a3' }])).length, 0)
})

t.test('every delivered downlink of a fast vehicle has its sent row with the bytes it received', async (t) => {
  // 300 sends at once from this one address: above the default per-address connection cap, which is not under test here.
  const gw = await startTestGateway(t, { VGW_HTTP_MAX_CONNECTIONS_PER_ADDRESS: '1024' })
  await register(gw, VIN)
  const car = await connectVehicle(t, { port: gw.mqttPort, ca: gw.pki.ca, creds: await gw.pki.vehicle(VIN) })
  const received = new Map<string, Buffer>()
  car.on('message', (_topic, payload) => received.set(payload.toString('base64'), payload))
  const box = inbox(car, VIN)
  await car.subscribeAsync(`vehicles/${VIN}/down`, { qos: 1 })
  // Sent at once while the vehicle is connected: each goes out as it commits, PUBLISH packets queue on
  // the connection and mqtt.js PUBACKs each as it reads it, often before the gateway sees its write complete.
  const ids = await Promise.all(Array.from({ length: 300 }, async (_, i) => (await send(gw, VIN, { type: 'service.reminder', payload: `m${i}`.repeat(200) })).body.id as string))
  await box.next(ids.length, 20_000)
  for (const id of ids) await waitForStatus(gw, id, 'delivered', 10_000)
  await gw.gateway.transitions.flush()

  const db = new pg.Client({ connectionString: gw.dbUrl })
  await db.connect()
  t.teardown(() => db.end())
  const { rows } = await db.query<{ message_id: string, status: string, raw: Buffer | null }>(
    "SELECT message_id, status, raw FROM transactions WHERE vin = $1 AND direction = 'down' AND status IN ('sent', 'delivered')", [VIN])
  const sent = rows.filter((r) => r.status === 'sent')
  const delivered = rows.filter((r) => r.status === 'delivered')
  t.equal(delivered.length, ids.length, 'every message delivered once')
  t.equal(sent.length, delivered.length, 'as many sent rows as delivered ones')
  const withoutSent = delivered.filter((d) => !sent.some((s) => s.message_id === d.message_id))
  t.same(withoutSent.map((r) => r.message_id), [], 'no delivered message without its sent row')
  t.ok(sent.every((s) => s.raw !== null && received.has(s.raw.toString('base64'))), 'each sent row holds the bytes the vehicle received')
})
