import t from 'tap'
import WebSocket from 'ws'
import { register, send } from '../helpers/downlink.ts'
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts'
import { connectVehicle, envelope, publishEnvelope } from '../helpers/vehicle.ts'

const A = 'WVWZZZ1JZXW000110'
const B = 'WVWZZZ1JZXW000111'

interface Ev { seq: number, event: string, vin: string | null, kind: string | null, type: string | null, [k: string]: unknown }

async function openStream (gw: TestGateway, query: string, key: string = gw.adminKey): Promise<{ ws: WebSocket, events: Ev[], waitFor: (pred: (e: Ev) => boolean, timeoutMs?: number) => Promise<Ev> }> {
  const ws = new WebSocket(`ws://127.0.0.1:${gw.httpPort}/v1/stream?${query}`, { headers: { authorization: `Bearer ${key}` } })
  const events: Ev[] = []
  ws.on('message', (data) => events.push(JSON.parse(String(data)) as Ev))
  await new Promise<void>((resolve, reject) => { ws.once('open', () => resolve()); ws.once('error', reject) })
  return {
    ws,
    events,
    async waitFor (pred, timeoutMs = 5000) {
      const deadline = Date.now() + timeoutMs
      for (;;) {
        const found = events.find(pred)
        if (found !== undefined) return found
        if (Date.now() > deadline) throw new Error(`no matching event; got ${JSON.stringify(events.map((e) => [e.event, e.vin, e.type, e.status]))}`)
        await new Promise((resolve) => setTimeout(resolve, 20))
      }
    }
  }
}

t.test('the stream carries uplinks, message statuses and connections, filtered by vin, kind and type', async (t) => {
  const gw = await startTestGateway(t)
  const onlyA = await openStream(gw, `vin=${A}`)
  t.teardown(() => onlyA.ws.close())
  const acksOnly = await openStream(gw, 'kind=ACK')
  t.teardown(() => acksOnly.ws.close())
  const carA = await connectVehicle(t, { port: gw.mqttPort, ca: gw.pki.ca, creds: await gw.pki.vehicle(A) })
  await carA.subscribeAsync(`vehicles/${A}/down`, { qos: 1 })
  const carB = await connectVehicle(t, { port: gw.mqttPort, ca: gw.pki.ca, creds: await gw.pki.vehicle(B) })
  const up = envelope({ type: 'telemetry.position' })
  await publishEnvelope(carA, A, up)
  await publishEnvelope(carB, B, envelope())

  await onlyA.waitFor((e) => e.event === 'connection' && e.type === 'connect')
  const upEv = await onlyA.waitFor((e) => e.event === 'uplink' && e.messageId === up.messageId)
  t.match(upEv, { vin: A, kind: 'TELEMETRY', type: 'telemetry.position', status: 'accepted' })
  const id = (await send(gw, A, { type: 'service.reminder', payload: 'x' })).body.id as string
  await onlyA.waitFor((e) => e.event === 'message.status' && e.messageId === id && e.status === 'delivered')
  await publishEnvelope(carA, A, envelope({ kind: 'ACK', correlationId: id, ackStatus: 'DISPLAYED', type: 'message.ack' }))
  const acked = await onlyA.waitFor((e) => e.event === 'message.status' && e.messageId === id && e.status === 'acknowledged')
  t.equal(acked.ackStatus, 'DISPLAYED')
  await acksOnly.waitFor((e) => e.kind === 'ACK' && e.correlationId === id)

  t.notOk(onlyA.events.some((e) => e.vin === B), 'no events of another vehicle')
  t.ok(acksOnly.events.every((e) => e.kind === 'ACK'), 'kind filter holds')
  const seqs = onlyA.events.map((e) => e.seq)
  t.same(seqs, [...seqs].sort((x, y) => x - y), 'seq increases')
  t.equal(new Set(seqs).size, seqs.length)
})

t.test('a client that reconnects with since receives what it missed, then live events', async (t) => {
  const gw = await startTestGateway(t)
  await register(gw, A)
  const first = await openStream(gw, `vin=${A}&type=service.reminder`)
  await send(gw, A, { type: 'service.reminder', payload: '1' })
  const seen = await first.waitFor((e) => e.status === 'queued')
  first.ws.close()
  const missed = [(await send(gw, A, { type: 'service.reminder', payload: '2' })).body.id, (await send(gw, A, { type: 'service.reminder', payload: '3' })).body.id]
  await send(gw, A, { type: 'other.type', payload: 'filtered out' })
  const again = await openStream(gw, `vin=${A}&type=service.reminder&since=${seen.seq}`)
  t.teardown(() => again.ws.close())
  await again.waitFor((e) => e.messageId === missed[1])
  t.same(again.events.map((e) => e.messageId), missed, 'exactly the missed events, in order')
  const live = (await send(gw, A, { type: 'service.reminder', payload: '4' })).body.id
  await again.waitFor((e) => e.messageId === live)
})

t.test('a since older than the retained window is answered with a gap event first', async (t) => {
  const gw = await startTestGateway(t, { VGW_STREAM_RETAIN: '2' })
  await register(gw, A)
  const s = await openStream(gw, '')
  for (let i = 0; i < 5; i++) await send(gw, A, { type: 'service.reminder', payload: String(i) })
  const firstSeq = (await s.waitFor(() => true)).seq
  s.ws.close()
  const late = await openStream(gw, `since=${firstSeq}`)
  t.teardown(() => late.ws.close())
  const gap = await late.waitFor((e) => e.event === 'gap')
  t.equal(late.events[0], gap, 'the gap comes first')
  await late.waitFor((e) => e.event === 'message.status')
  t.equal(late.events.length, 3, 'then the two retained events')
})

t.test('the stream needs stream:read, by header or ?token=', async (t) => {
  const gw = await startTestGateway(t)
  const reader = await gw.store.apiKeys.create('reader', ['vehicles:read'], 'test')
  const streamer = await gw.store.apiKeys.create('streamer', ['stream:read'], 'test')
  const refused = await new Promise<number>((resolve) => {
    const ws = new WebSocket(`ws://127.0.0.1:${gw.httpPort}/v1/stream`, { headers: { authorization: `Bearer ${reader.key}` } })
    ws.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0))
    ws.on('open', () => resolve(101))
  })
  t.equal(refused, 403)
  const anonymous = await new Promise<number>((resolve) => {
    const ws = new WebSocket(`ws://127.0.0.1:${gw.httpPort}/v1/stream`)
    ws.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0))
    ws.on('open', () => resolve(101))
  })
  t.equal(anonymous, 401)
  const byToken = new WebSocket(`ws://127.0.0.1:${gw.httpPort}/v1/stream?token=${streamer.key}`)
  t.teardown(() => byToken.close())
  await new Promise<void>((resolve, reject) => { byToken.once('open', () => resolve()); byToken.once('error', reject) })
  t.pass('a key in ?token= opens the stream')
})

t.test('a campaign is one campaign.created event, not one event per message', async (t) => {
  const gw = await startTestGateway(t)
  const vins = [A, B, 'WVWZZZ1JZXW000112']
  for (const v of vins) await register(gw, v, 'NL')
  const s = await openStream(gw, '')
  t.teardown(() => s.ws.close())
  const res = await gw.api('/v1/campaigns', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ market: 'NL', type: 'ota.offer', payload: 'v43' }) })
  t.equal(res.status, 202)
  const id = (res.body as { id: string }).id
  const created = await s.waitFor((e) => e.event === 'campaign.created')
  t.match(created, { event: 'campaign.created', campaignId: id, messageCount: 3, type: 'ota.offer', kind: 'MESSAGE', vin: null })
  // Events arrive in order: once a later send's event is here, any per-message event of the campaign would be too.
  const marker = (await send(gw, A, { type: 'marker', payload: 'm' })).body.id
  await s.waitFor((e) => e.messageId === marker)
  t.equal(s.events.filter((e) => e.event === 'campaign.created').length, 1)
  t.equal(s.events.filter((e) => e.type === 'ota.offer').length, 1, 'no event per message')
})

t.test('seq goes on increasing across a restart, and a since from the earlier process gets a gap', async (t) => {
  const first = await startTestGateway(t)
  await register(first, A)
  const s1 = await openStream(first, '')
  await send(first, A, { type: 'service.reminder', payload: '1' })
  const before = (await s1.waitFor((e) => e.event === 'message.status')).seq
  s1.ws.close()
  await first.gateway.close()

  const second = await startTestGateway(t)
  await register(second, A)
  const s2 = await openStream(second, `since=${before}`)
  t.teardown(() => s2.ws.close())
  const gap = await s2.waitFor((e) => e.event === 'gap')
  t.equal(s2.events[0], gap, 'what the earlier process sent is not kept: a gap first')
  await send(second, A, { type: 'service.reminder', payload: '2' })
  const after = await s2.waitFor((e) => e.event === 'message.status')
  t.ok(after.seq > before, `seq ${after.seq} after the restart > ${before} before it`)
})

/** Opens a stream and answers the upgrade's status (101 when open). */
function attempt (gw: TestGateway, key: string, options: WebSocket.ClientOptions = {}): Promise<{ status: number, ws: WebSocket | null, body: string }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws://127.0.0.1:${gw.httpPort}/v1/stream`, { ...options, headers: { authorization: `Bearer ${key}` } })
    ws.on('unexpected-response', (_req, res) => {
      let body = ''
      res.on('data', (c: Buffer) => { body += c.toString() })
      res.on('end', () => resolve({ status: res.statusCode ?? 0, ws: null, body }))
    })
    ws.once('open', () => resolve({ status: 101, ws, body: '' }))
    ws.once('error', (err) => { if (ws.readyState !== WebSocket.CLOSED) reject(err) })
  })
}

async function until (what: string, check: () => boolean | Promise<boolean>, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 25))
  }
}

t.test('streams are capped per API key; a closed stream frees its place', async (t) => {
  const gw = await startTestGateway(t, { VGW_STREAM_MAX_PER_KEY: '2' })
  const other = await gw.store.apiKeys.create('other', ['stream:read'], 'test')
  const open = [await attempt(gw, gw.adminKey), await attempt(gw, gw.adminKey)]
  t.teardown(() => { for (const o of open) o.ws?.close() })
  t.same(open.map((o) => o.status), [101, 101])
  const third = await attempt(gw, gw.adminKey)
  t.equal(third.status, 429, 'refused before the upgrade')
  t.match(JSON.parse(third.body), { error: { code: 'GW_ERR_STREAM_LIMIT', message: /2 streams/ } })
  const elsewhere = await attempt(gw, other.key)
  t.equal(elsewhere.status, 101, 'another key has its own streams')
  elsewhere.ws?.close()
  open[0]?.ws?.close()
  let again: { status: number, ws: WebSocket | null } = { status: 0, ws: null }
  await until('a place to free', async () => { again = await attempt(gw, gw.adminKey); return again.status === 101 })
  again.ws?.close()
})

t.test('a client that stops answering pings is terminated and its place freed; one that answers stays', async (t) => {
  const gw = await startTestGateway(t, { VGW_STREAM_PING_MS: '200', VGW_STREAM_MAX_PER_KEY: '1' })
  const answering = await gw.store.apiKeys.create('answering', ['stream:read'], 'test')
  const live = await attempt(gw, answering.key)
  t.teardown(() => live.ws?.close())
  let pings = 0
  live.ws?.on('ping', () => { pings++ })

  const silent = await attempt(gw, gw.adminKey, { autoPong: false })
  t.equal(silent.status, 101)
  let closedWith = 0
  silent.ws?.on('close', (code) => { closedWith = code })
  await until('the silent client to be cut', () => closedWith !== 0)
  t.equal(closedWith, 1006, 'terminated, no close handshake')
  const next = await attempt(gw, gw.adminKey)
  t.equal(next.status, 101, 'its place is free again')
  next.ws?.close()

  await until('three pings', () => pings >= 3)
  t.equal(live.ws?.readyState, WebSocket.OPEN, 'a client that answers stays connected')
})

t.test('a client that falls more than the backlog behind is closed with 1013', async (t) => {
  const gw = await startTestGateway(t)
  await register(gw, A)
  const slow = await openStream(gw, `vin=${A}`)
  let closedWith = 0
  slow.ws.on('close', (code) => { closedWith = code })
  slow.ws.pause()
  // Each event carries the message's attributes: about 33 KB.
  const attributes = Object.fromEntries(Array.from({ length: 32 }, (_, i) => [`a${i}`, 'x'.repeat(1000)]))
  const tooSlow = (): boolean => gw.logs.some((l) => l.msg === 'stream client too slow; closing it (1013)')
  let sends = 0
  while (sends < 3000 && !tooSlow()) {
    if ((await send(gw, A, { type: 'service.reminder', payload: String(sends), attributes })).status !== 202) break
    sends++
  }
  t.ok(tooSlow(), `the gateway gave up on the client after ${sends} events`)
  slow.ws.resume()
  await until('the close frame behind the backlog', () => closedWith !== 0, 10_000)
  t.equal(closedWith, 1013)
})

t.test('a resume larger than the backlog is replayed at the client\'s pace, whole and in order', async (t) => {
  const gw = await startTestGateway(t)
  await register(gw, A)
  const watch = await openStream(gw, `vin=${A}`)
  const attributes = Object.fromEntries(Array.from({ length: 32 }, (_, i) => [`a${i}`, 'y'.repeat(1000)]))
  const ids: string[] = []
  // About 3 MB of retained events, three times the backlog bound.
  for (let i = 0; i < 90; i++) ids.push((await send(gw, A, { type: 'service.reminder', payload: String(i), attributes })).body.id as string)
  const first = await watch.waitFor((e) => e.messageId === ids[0])
  watch.ws.close()
  const resumed = await openStream(gw, `vin=${A}&since=${first.seq - 1}`)
  t.teardown(() => resumed.ws.close())
  let closedWith = 0
  resumed.ws.on('close', (code) => { closedWith = code })
  await resumed.waitFor((e) => e.messageId === ids[ids.length - 1], 15_000)
  t.same(resumed.events.map((e) => e.messageId), ids, 'every retained event, in order')
  t.equal(closedWith, 0, 'still open')
})
