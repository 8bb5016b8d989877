import t from 'tap'
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts'
import { connectVehicle, envelope, publishEnvelope } from '../helpers/vehicle.ts'
import { startReceiver, type Receiver } from './receiver.ts'

const A = 'WVWZZZ1JZXW000410'
const B = 'WVWZZZ1JZXW000411'
const C = 'WVWZZZ1JZXW000412'
const SECRET = 'a-webhook-secret-of-some-length'
// The receivers listen on 127.0.0.1, which the destination policy refuses unless it is allowed.
const LOCAL = { VGW_WEBHOOK_ALLOW: '127.0.0.1/32' }
// Short waits, so that retries and dead letters happen within a test.
const FAST = { ...LOCAL, VGW_WEBHOOK_POLL_MS: '50', VGW_WEBHOOK_BACKOFF_MS: '50', VGW_WEBHOOK_TIMEOUT_MS: '700' }

interface WebhookBody { id: string, secret?: string, cursor: string, delivery: { deliveryId: string, attempts: number } | null, failureCount?: number }
interface FailureBody { id: string, deliveryId: string, eventCount: number, attempts: number, lastError: string | null, replayedAt: string | null }

async function createWebhook (gw: TestGateway, body: Record<string, unknown>): Promise<WebhookBody> {
  const res = await gw.api('/v1/webhooks', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })
  if (res.status !== 201) throw new Error(`webhook not created: ${res.status} ${JSON.stringify(res.body)}`)
  return res.body as WebhookBody
}

/** Publishes n uplinks one after another (each PUBACKed) and answers their message ids in order. */
async function uplinks (gw: TestGateway, vin: string, n: number): Promise<string[]> {
  const car = await connectVehicle(t, { port: gw.mqttPort, ca: gw.pki.ca, creds: await gw.pki.vehicle(vin) })
  const ids: string[] = []
  for (let i = 0; i < n; i++) {
    const e = envelope()
    await publishEnvelope(car, vin, e)
    ids.push(e.messageId)
  }
  car.end(true)
  return ids
}

function uplinkIds (r: Receiver, vin: string): string[] {
  return r.accepted().filter((e) => e.event === 'uplink' && e.vin === vin).map((e) => e.messageId as string)
}

/** First arrivals in order: what a receiver that deduplicates by event id sees. */
function firstArrivals (ids: string[]): string[] {
  return [...new Set(ids)]
}

t.test('webhooks: admin only, validated, listed without their secret, deleted', async (t) => {
  const gw = await startTestGateway(t, LOCAL)
  const reader = await gw.store.apiKeys.create('reader', ['stream:read'], 'test')
  const post = async (body: unknown, key?: string): Promise<{ status: number, body: unknown }> =>
    await gw.api('/v1/webhooks', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body), ...(key !== undefined ? { key } : {}) })
  t.equal((await post({ url: 'http://127.0.0.1:9/x' }, reader.key)).status, 403, 'stream:read is not enough')
  const bad = await post({ url: 'ftp://example.com/x' })
  t.equal(bad.status, 400)
  t.equal((bad.body as { error: { code: string } }).error.code, 'GW_ERR_VALIDATION', 'only http and https URLs')
  t.equal(((await post({ url: 'http://127.0.0.1:9/x', events: ['uplink', 'nonsense'] })).body as { error: { code: string } }).error.code, 'GW_ERR_VALIDATION', 'unknown event names are refused')
  t.equal(((await post({ url: 'http://127.0.0.1:9/x', secret: 'short' })).body as { error: { code: string } }).error.code, 'GW_ERR_VALIDATION', 'a secret has 16 characters at least')

  const made = await createWebhook(gw, { url: 'http://127.0.0.1:9/x', events: ['uplink'] })
  t.ok(typeof made.secret === 'string' && made.secret.length >= 32, 'a generated secret is answered once')
  const listed = await gw.api('/v1/webhooks')
  const items = (listed.body as { items: WebhookBody[] }).items
  t.same(items.map((w) => w.id), [made.id])
  t.notOk('secret' in (items[0] as object), 'the list never shows a secret')
  t.equal((await gw.api(`/v1/webhooks/${made.id}`)).status, 200)
  t.equal((await gw.api(`/v1/webhooks/${made.id}`, { method: 'DELETE' })).status, 204)
  const gone = await gw.api(`/v1/webhooks/${made.id}`)
  t.equal(gone.status, 404)
  t.equal((gone.body as { error: { code: string } }).error.code, 'GW_ERR_WEBHOOK_NOT_FOUND')
  t.equal((await gw.api(`/v1/webhooks/${made.id}/failures`)).status, 404)
})

t.test('a receiver that answers 500, then hangs, then recovers gets every event, in order, signed, with one delivery id per batch', async (t) => {
  const gw = await startTestGateway(t, { ...FAST, VGW_WEBHOOK_BATCH_SIZE: '5' })
  const flaky = await startReceiver(t, SECRET)
  // Three 500s, one request left hanging past the timeout, then 2xx.
  flaky.behave((n) => n < 3 ? 'fail' : n === 3 ? 'hang' : 'ok')
  const onlyConnections = await startReceiver(t, SECRET)
  await createWebhook(gw, { url: flaky.url, secret: SECRET })
  await createWebhook(gw, { url: onlyConnections.url, secret: SECRET, events: ['connection'] })

  const sent = await uplinks(gw, A, 23)
  await flaky.waitFor('every uplink accepted', () => sent.every((id) => uplinkIds(flaky, A).includes(id)))
  t.same(firstArrivals(uplinkIds(flaky, A)), sent, 'uplinks arrive in the order the vehicle had them acknowledged')
  t.ok(flaky.deliveries.every((d) => d.verified), 'every POST carries a valid signature')
  const first = flaky.deliveries[0]
  t.ok(first !== undefined && flaky.deliveries.slice(0, 5).every((d) => d.deliveryId === first.deliveryId),
    'the failed, the hung and the accepted attempt of the first batch share its delivery id')
  t.ok(flaky.deliveries.every((d) => d.events.length <= 5), 'batches hold VGW_WEBHOOK_BATCH_SIZE events at most')

  await onlyConnections.waitFor('the disconnect', () => onlyConnections.accepted().filter((e) => e.vin === A).length >= 2)
  t.ok(onlyConnections.accepted().every((e) => e.event === 'connection'), 'a filtered webhook gets only its event names')
  t.ok(onlyConnections.deliveries.every((d) => d.verified))
})

t.test('a receiver that hangs holds neither vehicles nor another receiver', async (t) => {
  // The hanging receiver's POST outlasts the whole test: nothing may wait for it.
  const gw = await startTestGateway(t, { ...FAST, VGW_WEBHOOK_TIMEOUT_MS: '60000' })
  const stuck = await startReceiver(t, SECRET)
  stuck.behave(() => 'hang')
  const healthy = await startReceiver(t, SECRET)
  await createWebhook(gw, { url: stuck.url, secret: SECRET })
  await createWebhook(gw, { url: healthy.url, secret: SECRET })
  const sent = await uplinks(gw, B, 10)
  await healthy.waitFor('every uplink at the healthy receiver', () => sent.every((id) => uplinkIds(healthy, B).includes(id)))
  await stuck.waitFor('the first POST', () => stuck.deliveries.length > 0)
  t.equal(stuck.deliveries.length, 1, 'the stuck receiver still holds its first POST, unanswered: one POST at a time per webhook')
  t.pass('vehicles were acknowledged and the other receiver served while one receiver hung')
})

t.test('a batch not delivered within the retry period becomes a dead letter; the webhook goes on; a replay delivers it', async (t) => {
  const gw = await startTestGateway(t, { ...FAST, VGW_WEBHOOK_RETRY_PERIOD_MS: '300' })
  const r = await startReceiver(t, SECRET)
  let failing = true
  r.behave(() => failing ? 'fail' : 'ok')
  const hook = await createWebhook(gw, { url: r.url, secret: SECRET, events: ['uplink'] })
  const lost = await uplinks(gw, C, 3)
  const failures = async (): Promise<FailureBody[]> => ((await gw.api(`/v1/webhooks/${hook.id}/failures`)).body as { items: FailureBody[] }).items
  // The first uplink may go out alone (its commit wakes the webhook): wait for all three in dead letters.
  const deadline = Date.now() + 20_000
  let dead: FailureBody[] = []
  while (dead.reduce((n, f) => n + f.eventCount, 0) < 3 && Date.now() < deadline) {
    dead = await failures()
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  t.equal(dead.reduce((n, f) => n + f.eventCount, 0), 3, `the three uplinks are in ${dead.length} dead letter(s)`)
  t.ok(dead.every((f) => f.attempts >= 2), 'each was retried before it was given up')
  t.ok(dead.every((f) => f.lastError === 'http_status 500'), 'each shows its last error')

  failing = false
  const later = await uplinks(gw, C, 2)
  await r.waitFor('the later uplinks', () => later.every((id) => uplinkIds(r, C).includes(id)))
  t.notOk(lost.some((id) => uplinkIds(r, C).includes(id)), 'dead letters are not delivered on their own')

  const unknown = await gw.api(`/v1/webhooks/${hook.id}/failures/${hook.id}/replay`, { method: 'POST' })
  t.equal(unknown.status, 404)
  for (const letter of dead) t.equal((await gw.api(`/v1/webhooks/${hook.id}/failures/${letter.id}/replay`, { method: 'POST' })).status, 202)
  await r.waitFor('the replays', () => lost.every((id) => uplinkIds(r, C).includes(id)))
  const replayed = r.deliveries.filter((d) => d.answered === 'ok' && dead.some((f) => f.deliveryId === d.deliveryId))
  t.same(replayed.flatMap((d) => d.events.map((e) => e.messageId)).sort(), [...lost].sort(), 'the replays carry the batches, with their delivery ids')
  t.ok(r.deliveries.every((d) => d.verified))
  let after = await failures()
  while (after.some((f) => f.replayedAt === null) && Date.now() < deadline) after = await failures()
  t.ok(after.every((f) => typeof f.replayedAt === 'string'), 'each dead letter shows when it was replayed')
})
