import t from 'tap'
import WebSocket from 'ws'
import { buildGateway } from '../../gateway/index.ts'
import { register, send } from '../helpers/downlink.ts'
import { captureLogger, startTestGateway } from '../helpers/gateway.ts'
import { connectVehicle, envelope, publishEnvelope } from '../helpers/vehicle.ts'

const A = 'WVWZZZ1JZXW000310'

interface Ev { event: string, vin: string | null, cursor?: string, messageId?: string, status?: string, [k: string]: unknown }
interface FeedBody { items: Ev[], nextCursor: string, more: boolean }

async function feed (baseUrl: string, key: string, query: string): Promise<{ status: number, body: FeedBody }> {
  const res = await fetch(`${baseUrl}/v1/events?${query}`, { headers: { authorization: `Bearer ${key}` } })
  return { status: res.status, body: await res.json() as FeedBody }
}

/** Polls the feed from `after` until `pred` holds for what was read (bounded). */
async function readUntil (baseUrl: string, key: string, query: string, pred: (items: Ev[]) => boolean): Promise<{ items: Ev[], nextCursor: string }> {
  const items: Ev[] = []
  let after = ''
  const deadline = Date.now() + 10_000
  for (;;) {
    const { body } = await feed(baseUrl, key, `${query}${after === '' ? '' : `&after=${after}`}`)
    items.push(...body.items)
    after = body.nextCursor
    if (pred(items)) return { items, nextCursor: after }
    if (Date.now() > deadline) throw new Error(`feed never matched; got ${JSON.stringify(items.map((e) => [e.event, e.vin, e.status]))}`)
    if (!body.more) await new Promise((resolve) => setTimeout(resolve, 25))
  }
}

t.test('GET /v1/events: uplinks, connections and statuses in order, filtered, resumable on another gateway after a restart', async (t) => {
  const gw = await startTestGateway(t)
  const car = await connectVehicle(t, { port: gw.mqttPort, ca: gw.pki.ca, creds: await gw.pki.vehicle(A) })
  await car.subscribeAsync(`vehicles/${A}/down`, { qos: 1 })
  const ups = [envelope(), envelope(), envelope()]
  for (const e of ups) await publishEnvelope(car, A, e)
  const id = (await send(gw, A, { type: 'service.reminder', payload: 'x' })).body.id as string
  const first = await readUntil(gw.baseUrl, gw.adminKey, `vin=${A}&limit=2`,
    (items) => items.some((e) => e.messageId === id && e.status === 'delivered'))
  const names = first.items.map((e) => e.event)
  t.equal(names[0], 'connection', 'the connect row comes first')
  t.same(first.items.filter((e) => e.event === 'uplink').map((e) => e.messageId), ups.map((e) => e.messageId), 'uplinks in the order they were acknowledged')
  t.same(first.items.filter((e) => e.messageId === id).map((e) => e.status), ['queued', 'sent', 'delivered'], 'a message\'s statuses in order')
  t.ok(first.items.every((e) => typeof e.cursor === 'string' && e.vin === A), 'every item has its cursor, and only A')
  car.end(true)

  // The consumer stored nextCursor; the gateway goes away and another one serves the same database.
  await gw.gateway.close()
  const second = await buildGateway(gw.config, { store: gw.store, logger: captureLogger().logger })
  t.teardown(() => second.close())
  const { httpPort } = await second.listen()
  const base2 = `http://127.0.0.1:${httpPort}`
  const res = await fetch(`${base2}/v1/vehicles/${A}/messages`, {
    method: 'POST', headers: { authorization: `Bearer ${gw.adminKey}`, 'content-type': 'application/json' }, body: JSON.stringify({ type: 'service.reminder', payload: 'y' })
  })
  const id2 = (await res.json() as { id: string }).id
  const resumed = await readUntil(base2, gw.adminKey, `vin=${A}&after=${first.nextCursor}`, (items) => items.some((e) => e.messageId === id2))
  t.notOk(resumed.items.some((e) => first.items.some((f) => f.cursor === e.cursor)), 'nothing read before is read again')
  t.ok(resumed.items.some((e) => e.event === 'connection' && e.type === 'disconnect'), 'the disconnect that followed is there')
})

t.test('the feed refuses a bad cursor and a key without stream:read', async (t) => {
  const gw = await startTestGateway(t)
  const bad = await feed(gw.baseUrl, gw.adminKey, 'after=bm90LWEtY3Vyc29y')
  t.equal(bad.status, 400)
  t.match(bad.body, { error: { code: 'GW_ERR_INVALID_CURSOR' } })
  const reader = await gw.store.apiKeys.create('reader', ['messages:read'], 'test')
  t.equal((await feed(gw.baseUrl, reader.key, '')).status, 403)
})

t.test('a stream resumed with an event\'s cursor replays from the log what no memory holds, then goes on live, each event once', async (t) => {
  const gw = await startTestGateway(t, { VGW_STREAM_RETAIN: '0' })
  await register(gw, A)
  const ids: string[] = []
  for (let i = 0; i < 5; i++) ids.push((await send(gw, A, { type: 'service.reminder', payload: String(i) })).body.id as string)
  const { items } = await readUntil(gw.baseUrl, gw.adminKey, `vin=${A}`, (all) => all.filter((e) => e.status === 'queued').length === 5)
  const resumeAt = items[1]?.cursor as string
  const ws = new WebSocket(`ws://127.0.0.1:${gw.httpPort}/v1/stream?vin=${A}&since=${resumeAt}`, { headers: { authorization: `Bearer ${gw.adminKey}` } })
  t.teardown(() => ws.close())
  const events: Ev[] = []
  ws.on('message', (data) => events.push(JSON.parse(String(data)) as Ev))
  await new Promise<void>((resolve, reject) => { ws.once('open', () => resolve()); ws.once('error', reject) })
  const live = (await send(gw, A, { type: 'service.reminder', payload: 'live' })).body.id as string
  const deadline = Date.now() + 10_000
  while (!events.some((e) => e.messageId === live) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20))
  t.notOk(events.some((e) => e.event === 'gap'), 'no gap: the log holds it all')
  t.same(events.filter((e) => e.status === 'queued').map((e) => e.messageId), [...ids.slice(2), live], 'the missed ones from the log, then the live one')
  const cursors = events.map((e) => e.cursor)
  t.equal(new Set(cursors).size, cursors.length, 'no event twice')
})
