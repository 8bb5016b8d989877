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
  const reader = await gw.store.apiKeys.create('reader', ['vehicles:read'])
  const streamer = await gw.store.apiKeys.create('streamer', ['stream:read'])
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
