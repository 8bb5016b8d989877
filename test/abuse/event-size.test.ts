// A vehicle whose envelopes are as large as validation allows, in the shape that costs most
// downstream (issue #20, item 2): 32 attributes of 1,024 control characters, 6 bytes of JSON
// each, so every event was 200 KB. The feed, the stream (live and its ring) and webhook batches
// must stay within their byte bounds, and the gateway's memory must not follow the events' size.
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import t, { type Test } from 'tap'
import WebSocket from 'ws'
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts'
import { connectVehicle, envelope, publishEnvelope } from '../helpers/vehicle.ts'

const VIN = 'WVWZZZ1JZXW000441'
const EVENTS = 200
const PAGE_MAX = 64 * 1024
const RING_MAX = 64 * 1024
const BATCH_MAX = 16 * 1024
const BOUNDS = {
  VGW_PAGE_MAX_BYTES: String(PAGE_MAX),
  VGW_STREAM_RETAIN_BYTES: String(RING_MAX),
  VGW_WEBHOOK_BATCH_MAX_BYTES: String(BATCH_MAX),
  VGW_WEBHOOK_ALLOW: '127.0.0.1/32',
  VGW_WEBHOOK_POLL_MS: '50'
}

const hostile = (): Record<string, string> =>
  Object.fromEntries(Array.from({ length: 32 }, (_, i) => [`a${i}`, '\u0001'.repeat(1024)]))

async function publishHostile (t: Test, gw: TestGateway, n: number): Promise<void> {
  const car = await connectVehicle(t, { port: gw.mqttPort, ca: gw.pki.ca, creds: await gw.pki.vehicle(VIN) })
  const attributes = hostile()
  for (let i = 0; i < n; i++) await publishEnvelope(car, VIN, envelope({ attributes }))
  car.end(true)
}

interface Page { items: Array<{ id: string, event: string, attributes: Record<string, unknown> | null }>, nextCursor: string, more: boolean }

async function page (gw: TestGateway, query: string): Promise<{ bytes: number, body: Page }> {
  const res = await fetch(`${gw.baseUrl}/v1/events?${query}`, { headers: { authorization: `Bearer ${gw.adminKey}` } })
  const text = await res.text()
  if (res.status !== 200) throw new Error(`feed: ${res.status} ${text.slice(0, 200)}`)
  return { bytes: Buffer.byteLength(text), body: JSON.parse(text) as Page }
}

t.test('feed pages stay under VGW_PAGE_MAX_BYTES, carry summaries, and the cursor goes on past a cut page', async (t) => {
  const gw = await startTestGateway(t, BOUNDS)
  await publishHostile(t, gw, EVENTS)
  const seen = new Set<string>()
  let after = ''
  let pages = 0
  let largest = 0
  for (;;) {
    const { bytes, body } = await page(gw, `limit=1000&kind=TELEMETRY${after}`)
    pages++
    largest = Math.max(largest, bytes)
    for (const item of body.items) {
      if (seen.has(item.id)) t.fail(`event ${item.id} twice`)
      seen.add(item.id)
    }
    if (!body.more) break
    after = `&after=${body.nextCursor}`
  }
  t.ok(largest <= PAGE_MAX, `every page within ${PAGE_MAX} bytes (largest ${largest}, ${pages} pages)`)
  t.equal(seen.size, EVENTS, 'every uplink once, over several pages')
  const { body } = await page(gw, 'limit=1&kind=TELEMETRY')
  const summary = body.items[0]?.attributes?.a0 as { bytes: number, sha256: string }
  t.match(summary, { bytes: 1024, sha256: /^[0-9a-f]{64}$/ }, 'a large attribute value is its length and SHA-256 in the event')
  const row = await gw.api(`/v1/vehicles/${VIN}/transactions?limit=1&kind=TELEMETRY`)
  t.equal((row.body as { items: Array<{ attributes: Record<string, string> }> }).items[0]?.attributes.a0, '\u0001'.repeat(1024), 'the log row keeps the value whole')

  // Three pages of 1,000 at once, as in the report: the gateway's memory does not follow the events' size.
  const before = process.memoryUsage().rss
  let peak = before
  const sampler = setInterval(() => { peak = Math.max(peak, process.memoryUsage().rss) }, 5)
  const bigPages = await Promise.all([0, 1, 2].map(() => page(gw, 'limit=1000&kind=TELEMETRY')))
  clearInterval(sampler)
  peak = Math.max(peak, process.memoryUsage().rss)
  t.ok(bigPages.every((p) => p.bytes <= PAGE_MAX), 'each within the bound')
  t.ok(peak - before < 48 * 1024 * 1024, `RSS grew ${((peak - before) / 1048576).toFixed(1)} MB while three pages were read at once (bound 48 MB)`)
})

t.test('the stream: live frames and the ring are bounded in bytes', async (t) => {
  const gw = await startTestGateway(t, BOUNDS)
  const live = new WebSocket(`ws://127.0.0.1:${gw.httpPort}/v1/stream?vin=${VIN}&kind=TELEMETRY`, { headers: { authorization: `Bearer ${gw.adminKey}` } })
  t.teardown(() => live.terminate())
  let liveFrames = 0
  let liveLargest = 0
  live.on('message', (data: Buffer) => { liveFrames++; liveLargest = Math.max(liveLargest, data.length) })
  await new Promise((resolve, reject) => { live.once('open', resolve); live.once('error', reject) })
  await publishHostile(t, gw, EVENTS)
  const deadline = Date.now() + 20_000
  while (liveFrames < EVENTS && live.readyState === WebSocket.OPEN && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20))
  t.equal(liveFrames, EVENTS, 'the live client got every event')
  t.ok(liveLargest <= 16 * 1024, `each frame is small (largest ${liveLargest} bytes)`)
  t.ok(gw.gateway.hub.retained.bytes <= RING_MAX, `the ring holds ${gw.gateway.hub.retained.bytes} bytes, within VGW_STREAM_RETAIN_BYTES`)

  // A client resuming from seq 0 gets what the ring kept, then live: a marker uplink ends the replay.
  const resumed = new WebSocket(`ws://127.0.0.1:${gw.httpPort}/v1/stream?since=0`, { headers: { authorization: `Bearer ${gw.adminKey}` } })
  t.teardown(() => resumed.terminate())
  let replayBytes = 0
  let markerSeen = false
  const marker = envelope({ type: 'test.marker' })
  resumed.on('message', (data: Buffer) => {
    if (data.toString('utf8').includes(marker.messageId)) markerSeen = true
    else if (!markerSeen) replayBytes += data.length
  })
  await new Promise((resolve, reject) => { resumed.once('open', resolve); resumed.once('error', reject) })
  const car = await connectVehicle(t, { port: gw.mqttPort, ca: gw.pki.ca, creds: await gw.pki.vehicle(VIN) })
  await publishEnvelope(car, VIN, marker)
  const until = Date.now() + 20_000
  while (!markerSeen && resumed.readyState === WebSocket.OPEN && Date.now() < until) await new Promise((resolve) => setTimeout(resolve, 20))
  t.ok(markerSeen, 'the resumed client reached the live events')
  t.ok(replayBytes <= RING_MAX + 16 * 1024, `the replay from the ring was ${replayBytes} bytes (ring bound ${RING_MAX})`)
})

t.test('webhook batches stay under VGW_WEBHOOK_BATCH_MAX_BYTES and carry every event once', async (t) => {
  const bodies: number[] = []
  const ids = new Set<string>()
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      const body = Buffer.concat(chunks)
      bodies.push(body.length)
      for (const e of (JSON.parse(body.toString('utf8')) as { events: Array<{ id: string }> }).events) ids.add(e.id)
      res.writeHead(204).end()
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()) }))
  const gw = await startTestGateway(t, BOUNDS)
  const made = await gw.api('/v1/webhooks', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`, events: ['uplink'] }) })
  t.equal(made.status, 201)
  await publishHostile(t, gw, EVENTS)
  const deadline = Date.now() + 30_000
  while (ids.size < EVENTS && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50))
  t.equal(ids.size, EVENTS, 'every uplink was delivered')
  const largest = Math.max(...bodies)
  t.ok(largest <= BATCH_MAX, `every POST body within ${BATCH_MAX} bytes (largest ${largest}, ${bodies.length} POSTs)`)
})

t.test('events carry the payload only when asked for, and only for envelopes within VGW_EVENT_PAYLOAD_MAX_BYTES', async (t) => {
  const posted: Array<Array<Record<string, unknown>>> = []
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      posted.push((JSON.parse(Buffer.concat(chunks).toString('utf8')) as { events: Array<Record<string, unknown>> }).events)
      res.writeHead(204).end()
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()) }))
  const gw = await startTestGateway(t, { ...BOUNDS, VGW_EVENT_PAYLOAD_MAX_BYTES: '4096' })
  const hook = await gw.api('/v1/webhooks', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`, events: ['uplink'], payload: true }) })
  t.match(hook.body, { payload: true })
  const live = new WebSocket(`ws://127.0.0.1:${gw.httpPort}/v1/stream?kind=TELEMETRY&include=payload`, { headers: { authorization: `Bearer ${gw.adminKey}` } })
  t.teardown(() => live.terminate())
  const frames: Array<Record<string, unknown>> = []
  live.on('message', (data: Buffer) => frames.push(JSON.parse(data.toString('utf8')) as Record<string, unknown>))
  await new Promise((resolve, reject) => { live.once('open', resolve); live.once('error', reject) })

  const car = await connectVehicle(t, { port: gw.mqttPort, ca: gw.pki.ca, creds: await gw.pki.vehicle(VIN) })
  const small = envelope({ payload: Buffer.from('hello') })
  const large = envelope({ payload: Buffer.alloc(8192, 7) })
  await publishEnvelope(car, VIN, small)
  await publishEnvelope(car, VIN, large)
  const deadline = Date.now() + 10_000
  while ((frames.length < 2 || posted.flat().length < 2) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20))

  const plain = (await page(gw, 'kind=TELEMETRY')).body.items as Array<Record<string, unknown>>
  t.ok(plain.every((e) => !('payloadBase64' in e)), 'without include=payload the feed carries no payload')
  const withPayload = (await page(gw, 'kind=TELEMETRY&include=payload')).body.items as Array<Record<string, unknown>>
  const fromWebhook = posted.flat()
  for (const [name, events] of [['feed', withPayload], ['stream', frames], ['webhook', fromWebhook]] as const) {
    const byId = new Map(events.map((e) => [e.messageId, e]))
    t.equal(byId.get(small.messageId)?.payloadBase64, Buffer.from('hello').toString('base64'), `${name}: the small envelope's payload, in base64`)
    t.match(byId.get(large.messageId), { payloadBase64: null, payloadOmitted: true }, `${name}: the envelope over the bound carries none, and says so`)
  }
})
