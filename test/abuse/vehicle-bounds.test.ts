import tls from 'node:tls'
import mqttPacket from 'mqtt-packet'
import pg from 'pg'
import t, { type Test } from 'tap'
import { encodeEnvelope } from '../../protocol/index.ts'
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts'
import { connectVehicle, envelope, publishEnvelope } from '../helpers/vehicle.ts'

const VIN = 'WVWZZZ1JZXW000700'
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

/** A raw MQTT 3.1.1 session over mutual TLS: the bytes are ours, so a test can misbehave as a careless or hostile vehicle would. */
async function rawVehicle (gw: TestGateway, vin: string, clean = true): Promise<{ socket: tls.TLSSocket, packets: mqttPacket.Packet[], closed: Promise<void> }> {
  const creds = await gw.pki.vehicle(vin)
  const socket = tls.connect({ host: '127.0.0.1', port: gw.mqttPort, ca: gw.pki.ca, key: creds.key, cert: creds.cert })
  socket.on('error', () => undefined)
  const packets: mqttPacket.Packet[] = []
  const parser = mqttPacket.parser({ protocolVersion: 4 })
  parser.on('packet', (p) => packets.push(p))
  socket.on('data', (d: Buffer) => parser.parse(d))
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()))
  await new Promise<void>((resolve, reject) => { socket.once('secureConnect', resolve); socket.once('error', reject) })
  socket.write(mqttPacket.generate({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clientId: vin, clean, keepalive: 60 }))
  const deadline = Date.now() + 5000
  while (!packets.some((p) => p.cmd === 'connack') && Date.now() < deadline) await sleep(10)
  return { socket, packets, closed }
}

function publish (vin: string, payload: Buffer, qos: 0 | 1 | 2, messageId: number): Buffer {
  return mqttPacket.generate({ cmd: 'publish', topic: `vehicles/${vin}/up`, payload, qos, messageId, retain: false, dup: false })
}

async function securityRows (gw: TestGateway, vin: string, code: string): Promise<number> {
  await gw.gateway.log.flush()
  const db = new pg.Client({ connectionString: gw.dbUrl })
  await db.connect()
  const { rows } = await db.query<{ n: number }>("SELECT count(*)::int AS n FROM transactions WHERE vin = $1 AND kind = 'SECURITY' AND error_code = $2", [vin, code])
  await db.end()
  return rows[0]?.n ?? 0
}

async function until (t: Test, what: string, check: () => boolean | Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!(await check())) {
    if (Date.now() > deadline) { t.fail(`timed out waiting for: ${what}`); return }
    await sleep(25)
  }
}

t.test('a QoS 2 flood is refused at the first PUBLISH and never buffered', async (t) => {
  const gw = await startTestGateway(t)
  // 20 sessions × 50 packets × 100 KB = 100 MB offered, no PUBREL ever.
  const session = async (s: number): Promise<{ pubrecs: number, offered: number }> => {
    const v = await rawVehicle(gw, VIN)
    // One packet written 50 times: the test's own side allocates almost nothing, so RSS growth is the gateway's.
    const packet = publish(VIN, Buffer.alloc(100 * 1024, s), 2, 1)
    let offered = 0
    for (let i = 0; i < 50; i++) { if (!v.socket.destroyed) v.socket.write(packet); offered += packet.length }
    await Promise.race([v.closed, sleep(5000)])
    t.ok(v.socket.destroyed || v.socket.readableEnded, `session ${s} closed by the gateway`)
    v.socket.destroy()
    return { pubrecs: v.packets.filter((p) => p.cmd === 'pubrec').length, offered }
  }
  // A first session before the baseline: its one-off costs (the first TLS session, code compiled
  // on first use, pools sized on first use) are not what a flood grows; the 20 that follow are.
  let pubrecs = (await session(-1)).pubrecs
  global.gc?.()
  await sleep(200)
  const before = process.memoryUsage().rss
  let offered = 0
  for (let s = 0; s < 20; s++) {
    const r = await session(s)
    pubrecs += r.pubrecs
    offered += r.offered
  }
  global.gc?.()
  await sleep(500)
  const growthMb = (process.memoryUsage().rss - before) / 1024 / 1024
  t.equal(pubrecs, 0, 'no PUBREC: QoS 2 is not part of the contract')
  t.ok(growthMb < 50, `RSS grew ${growthMb.toFixed(1)} MB for ${(offered / 1024 / 1024).toFixed(0)} MB offered (bound 50 MB)`)
  t.ok(await securityRows(gw, VIN, 'GW_ERR_QOS_DENIED') >= 1, 'a QOS_DENIED security event in the vehicle\'s log')
})

t.test('a 1 MiB envelope over the limit is recorded as rejected with 4 KiB, its length and its SHA-256', async (t) => {
  const gw = await startTestGateway(t, { VGW_MAX_PACKET_BYTES: String(2 * 1024 * 1024) })
  const car = await connectVehicle(t, { port: gw.mqttPort, ca: gw.pki.ca, creds: await gw.pki.vehicle(VIN) })
  const bytes = Buffer.from(encodeEnvelope({ ...envelope(), payload: Buffer.alloc(1024 * 1024, 9) }))
  await car.publishAsync(`vehicles/${VIN}/up`, bytes, { qos: 1 })
  await gw.gateway.log.flush()
  const page = await gw.store.transactions.listForVehicle({ vin: VIN, direction: 'up', limit: 1 })
  const row = page.items[0]
  t.equal(row?.errorCode, 'GW_ERR_ENVELOPE_TOO_LARGE')
  t.equal(row?.raw?.byteLength, 4096, 'a few KiB stored, not the whole MiB')
  t.match(row?.details, { length: bytes.length, storedBytes: 4096, sha256: /^[0-9a-f]{64}$/ })
})

t.test('unacknowledged QoS 1 publishes past the window stay in the socket, and all commit once the database moves', async (t) => {
  const gw = await startTestGateway(t, { VGW_VEHICLE_MAX_INFLIGHT: '4' })
  const v = await rawVehicle(gw, VIN)
  t.teardown(() => { v.socket.destroy() })
  await gw.gateway.log.flush()
  // Wedge the commit path, so no PUBACK goes out and the window stays full.
  const locker = new pg.Client({ connectionString: gw.dbUrl })
  await locker.connect()
  t.teardown(() => locker.end())
  await locker.query('BEGIN')
  await locker.query('LOCK TABLE transactions IN ACCESS EXCLUSIVE MODE')
  const ids = Array.from({ length: 100 }, (_, i) => i + 1)
  for (const id of ids) v.socket.write(publish(VIN, Buffer.from(encodeEnvelope(envelope())), 1, id))
  await sleep(1000)
  t.ok(gw.gateway.log.pending <= 4, `${gw.gateway.log.pending} rows pending (uplinks read) while 100 were sent and none acknowledged (window 4)`)
  t.equal(v.packets.filter((p) => p.cmd === 'puback').length, 0, 'no PUBACK before the commit')
  await locker.query('COMMIT')
  await until(t, 'every PUBACK', () => v.packets.filter((p) => p.cmd === 'puback').length === 100, 30_000)
  t.same(v.packets.filter((p) => p.cmd === 'puback').map((p) => (p as mqttPacket.IPubackPacket).messageId).sort((a, b) => (a ?? 0) - (b ?? 0)), ids, 'all 100 acknowledged once')
})

t.test('a vehicle over its rate is slowed, and one over its daily bytes is disconnected with a quota event', async (t) => {
  const gw = await startTestGateway(t, { VGW_VEHICLE_MSG_RATE: '10', VGW_VEHICLE_MSG_BURST: '5', VGW_VEHICLE_BYTES_PER_DAY: '20000' })
  const car = await connectVehicle(t, { port: gw.mqttPort, ca: gw.pki.ca, creds: await gw.pki.vehicle(VIN) })
  const started = Date.now()
  await Promise.all(Array.from({ length: 25 }, () => publishEnvelope(car, VIN, envelope())))
  const took = Date.now() - started
  // 5 go at once, 20 more at 10 per second: at least ~2 s, whatever the machine's speed.
  t.ok(took >= 1800, `25 messages at 10/s with a burst of 5 took ${took} ms`)
  t.equal(await securityRows(gw, VIN, 'GW_ERR_QUOTA_EXCEEDED'), 0, 'slowed, not refused')

  const big = { ...envelope(), payload: Buffer.alloc(8000, 1) }
  await publishEnvelope(car, VIN, big)
  const closed = new Promise<void>((resolve) => car.once('close', () => resolve()))
  car.publish(`vehicles/${VIN}/up`, Buffer.from(encodeEnvelope({ ...envelope(), payload: Buffer.alloc(12_000, 2) })), { qos: 1 })
  await Promise.race([closed, sleep(5000)])
  t.notOk(car.connected, 'disconnected past the daily bytes')
  t.equal(await securityRows(gw, VIN, 'GW_ERR_QUOTA_EXCEEDED'), 1, 'one quota event in the vehicle\'s log')
})

t.test('a clean=false session keeps no broker state: the next CONNECT finds no session', async (t) => {
  const gw = await startTestGateway(t)
  const first = await rawVehicle(gw, VIN, false)
  first.socket.write(mqttPacket.generate({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: `vehicles/${VIN}/down`, qos: 1 }] }))
  await until(t, 'SUBACK', () => first.packets.some((p) => p.cmd === 'suback'))
  first.socket.end(mqttPacket.generate({ cmd: 'disconnect' }))
  await first.closed
  await sleep(200)
  const second = await rawVehicle(gw, VIN, false)
  t.teardown(() => { second.socket.destroy() })
  const connack = second.packets.find((p) => p.cmd === 'connack') as mqttPacket.IConnackPacket | undefined
  t.equal(connack?.returnCode, 0, 'connected')
  t.equal(connack?.sessionPresent, false, 'session present 0 [MQTT-3.2.2-2]: PostgreSQL is the queue, the broker keeps no session')
})
