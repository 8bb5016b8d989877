import t from 'tap'
import { messageStatus, register, send, waitForStatus } from '../helpers/downlink.ts'
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts'
import { connectVehicle } from '../helpers/vehicle.ts'

const A = 'WVWZZZ1JZXW000320'
const B = 'WVWZZZ1JZXW000321'

interface Ev { event: string, messageId?: string, status?: string, vin: string | null, details?: Record<string, unknown> }

/** Every feed event so far (bounded read). */
async function allEvents (gw: TestGateway): Promise<Ev[]> {
  const out: Ev[] = []
  let after = ''
  for (;;) {
    const { body } = await gw.api(`/v1/events?limit=1000${after === '' ? '' : `&after=${after}`}`) as { body: { items: Ev[], nextCursor: string, more: boolean } }
    out.push(...body.items)
    after = body.nextCursor
    if (!body.more) return out
  }
}

async function waitForEvent (gw: TestGateway, pred: (e: Ev) => boolean, timeoutMs = 10_000): Promise<Ev> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const found = (await allEvents(gw)).find(pred)
    if (found !== undefined) return found
    if (Date.now() > deadline) throw new Error('no matching feed event')
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
}

t.test('an undelivered send past its fallback deadline is reported once, stays queued, and a later delivery still counts', async (t) => {
  const gw = await startTestGateway(t, { VGW_EXPIRY_INTERVAL_MS: '50' })
  await register(gw, A)
  const id = (await send(gw, A, { type: 'call.missed', payload: 'x', ttlSeconds: 60, fallbackAfterSeconds: 1 })).body.id as string
  const due = await waitForEvent(gw, (e) => e.event === 'message.fallback_due' && e.messageId === id)
  t.match(due, { vin: A, status: 'fallback_due', details: { messageStatus: 'queued' } })
  const m = await messageStatus(gw, id)
  t.equal(m.status, 'queued', 'the message stays queued')
  t.type(m.fallbackDueAt, 'string')

  const car = await connectVehicle(t, { port: gw.mqttPort, ca: gw.pki.ca, creds: await gw.pki.vehicle(A) })
  await car.subscribeAsync(`vehicles/${A}/down`, { qos: 1 })
  const delivered = await waitForStatus(gw, id, 'delivered')
  t.same((delivered.history as Array<{ status: string }>).map((h) => h.status), ['queued', 'fallback_due', 'sent', 'delivered'])
  await new Promise((resolve) => setTimeout(resolve, 300))
  t.equal((await allEvents(gw)).filter((e) => e.event === 'message.fallback_due').length, 1, 'reported once, however many passes ran')
})

t.test('a message delivered before its deadline is never reported; a campaign\'s undelivered messages are', async (t) => {
  const gw = await startTestGateway(t, { VGW_EXPIRY_INTERVAL_MS: '50' })
  await register(gw, B)
  const car = await connectVehicle(t, { port: gw.mqttPort, ca: gw.pki.ca, creds: await gw.pki.vehicle(A) })
  await car.subscribeAsync(`vehicles/${A}/down`, { qos: 1 })
  const fast = (await send(gw, A, { type: 'call.missed', payload: 'x', ttlSeconds: 60, fallbackAfterSeconds: 1 })).body.id as string
  await waitForStatus(gw, fast, 'delivered')
  const campaign = await gw.api('/v1/campaigns', {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ vins: [A, B], type: 'ota.offer', payload: 'y', ttlSeconds: 60, fallbackAfterSeconds: 1 })
  })
  t.equal(campaign.status, 202)
  const due = await waitForEvent(gw, (e) => e.event === 'message.fallback_due' && e.vin === B)
  t.match(due, { details: { campaignId: (campaign.body as { id: string }).id } })
  await new Promise((resolve) => setTimeout(resolve, 300))
  const falls = (await allEvents(gw)).filter((e) => e.event === 'message.fallback_due')
  t.same(falls.map((e) => e.vin), [B], 'only the offline vehicle\'s message fell back; the delivered ones did not')
})

t.test('a fallback deadline at or past the TTL is refused', async (t) => {
  const gw = await startTestGateway(t)
  await register(gw, A)
  const res = await send(gw, A, { type: 'call.missed', payload: 'x', ttlSeconds: 10, fallbackAfterSeconds: 10 })
  t.equal(res.status, 400)
  t.match(res.body, { error: { code: 'GW_ERR_VALIDATION', message: /fallbackAfterSeconds/ } })
})
