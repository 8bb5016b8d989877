import tls from 'node:tls'
import mqttPacket from 'mqtt-packet'
import pg from 'pg'
import t from 'tap'
import { v7 as uuidv7 } from 'uuid'
import { SendBatcher } from '../../gateway/api/send-batcher.ts'
import { GatewayError } from '../../protocol/index.ts'
import { testStore } from '../helpers/database.ts'
import { startTestGateway } from '../helpers/gateway.ts'
import { logRow } from '../helpers/records.ts'

// Writes that a batcher may repeat after losing the answer to a commit, or that two batches may
// make at once, must leave the same rows as one clean write (README, "Known limitations").

const VIN = 'WVWZZZ1JZXW000501'

t.test('a status batch applied twice (its first answer lost) records the transition and its log row once', async (t) => {
  const { store, url } = await testStore(t)
  const at = new Date()
  await store.vehicles.register(VIN, 'DE', at)
  await store.transactions.ensurePartitions([at])
  const id = uuidv7()
  await store.messages.enqueue({
    id, vin: VIN, apiKeyId: null, idempotencyKey: null, logId: uuidv7(),
    type: 'service.reminder', payload: Buffer.from('hi'), attributes: {}, ttlSeconds: 3600, priority: 0, createdAt: at
  })
  const sent = { messageId: id, vin: VIN, status: 'sent' as const, at: new Date(at.getTime() + 10), raw: Buffer.from('envelope'), logId: uuidv7() }
  t.equal((await store.messages.applyTransitions([sent])).length, 1, 'the first attempt moves the message')
  t.equal((await store.messages.applyTransitions([sent])).length, 0, 'the same batch again moves nothing')
  // A genuine redelivery (a new log row) is still recorded.
  t.equal((await store.messages.applyTransitions([{ ...sent, at: new Date(at.getTime() + 20), logId: uuidv7() }])).length, 1, 'a redelivery is recorded')

  const db = new pg.Client({ connectionString: url })
  await db.connect()
  t.teardown(() => db.end())
  const rows = (await db.query<{ status: string, attempt: number }>(
    "SELECT status, (details->>'attempt')::int AS attempt FROM transactions WHERE message_id = $1 AND status = 'sent' ORDER BY occurred_at", [id])).rows
  t.same(rows, [{ status: 'sent', attempt: 1 }, { status: 'sent', attempt: 2 }], 'one sent row per real attempt')
  const m = (await db.query<{ attempts: number }>('SELECT attempts FROM messages WHERE id = $1', [id])).rows[0]
  t.equal(m?.attempts, 2)
})

t.test('a connect batch that reaches a vehicle after a newer connect of it leaves the newer one', async (t) => {
  const { store } = await testStore(t)
  const older = new Date(Date.now() - 60_000)
  const newer = new Date()
  await store.vehicles.recordConnects([{ vin: VIN, market: 'DE', certFingerprint: 'new', at: newer }])
  await store.vehicles.recordConnects([{ vin: VIN, market: 'DE', certFingerprint: 'old', at: older }])
  const v = await store.vehicles.get(VIN)
  t.equal(v?.lastConnectedAt?.getTime(), newer.getTime(), 'last connected is the newer session')
  // The newer session's disconnect still finds its row.
  await store.vehicles.recordDisconnects([{ vin: VIN, at: new Date(newer.getTime() + 1000), sessionConnectedAt: newer }])
  t.equal((await store.vehicles.get(VIN))?.lastDisconnectedAt?.getTime(), newer.getTime() + 1000)
})

t.test('a send batch whose statement committed answers the stored sends even when another send of it fails', async (t) => {
  const batcher = new SendBatcher<number, string>({
    maxSize: 10,
    maxConcurrent: 1,
    commit: async (items) => items.map((i) => (i === 2 ? new GatewayError('GW_ERR_STORE_UNAVAILABLE') : `stored ${i}`))
  })
  const results = await Promise.allSettled([1, 2, 3].map(async (i) => await batcher.add(i)))
  t.same(results.map((r) => (r.status === 'fulfilled' ? r.value : (r.reason as GatewayError).code)), ['stored 1', 'GW_ERR_STORE_UNAVAILABLE', 'stored 3'])
})

t.test('a log row written again while its first attempt still runs in PostgreSQL is stored once (issue #19 D)', async (t) => {
  const { store, url } = await testStore(t)
  const at = new Date()
  await store.transactions.ensurePartitions([at])
  const row = logRow(VIN, 'DE', at, { direction: 'system', kind: 'CONNECTION', type: 'connect', status: 'recorded', messageId: null })
  // The first attempt: its connection is gone from the gateway's side, its transaction not yet committed.
  const first = new pg.Client({ connectionString: url })
  await first.connect()
  t.teardown(() => first.end())
  await first.query('BEGIN')
  await first.query(`INSERT INTO transactions (id, occurred_at, received_at, vin, market, direction, kind, type, status)
    VALUES ($1, $2, now(), $3, 'DE', 'system', 'CONNECTION', 'connect', 'recorded')`, [row.id, row.occurredAt, VIN])
  // The retry waits for the first attempt instead of missing it.
  const retry = store.transactions.append([row])
  let settled = false
  void retry.then(() => { settled = true }, () => { settled = true })
  await new Promise((resolve) => setTimeout(resolve, 300))
  t.notOk(settled, 'the retry waits while the first attempt is undecided')
  await first.query('COMMIT')
  t.same(await retry, [], 'and then inserts nothing')
  const n = (await first.query<{ n: number }>('SELECT count(*)::int AS n FROM transactions WHERE id = $1', [row.id])).rows[0]?.n
  t.equal(n, 1, 'one row')
})

t.test('an unreadable uplink retransmitted after a reconnect is stored once, a new one with the same bytes again (issue #19 D)', async (t) => {
  const gw = await startTestGateway(t)
  const bytes = Buffer.from([0xff, 0xff, 0xff, 0xff, 0x0f])
  const creds = await gw.pki.vehicle(VIN)
  if (creds === null) throw new Error('no vehicle certificate')
  // The same PUBLISH (packet id 7) twice, on two connections: the first PUBACK was "lost", so the
  // second is a retransmission (DUP). Then the same bytes and packet id once more without DUP: a
  // client that reuses its packet id sending a new message, which is a row of its own.
  const dups = [false, true, false]
  for (let i = 0; i < dups.length; i++) {
    // A raw MQTT client: the packet id and DUP flag are the test's [MQTT-4.4.0-1].
    const socket = tls.connect({ host: '127.0.0.1', port: gw.mqttPort, ca: gw.pki.ca, key: creds.key, cert: creds.cert })
    t.teardown(() => socket.destroy())
    const parser = mqttPacket.parser({ protocolVersion: 4 })
    const pubacked = new Promise<void>((resolve, reject) => {
      parser.on('packet', (p) => {
        if (p.cmd === 'connack') socket.write(mqttPacket.generate({ cmd: 'publish', topic: `vehicles/${VIN}/up`, payload: bytes, qos: 1, messageId: 7, dup: dups[i] as boolean, retain: false }))
        if (p.cmd === 'puback') resolve()
      })
      socket.once('error', reject)
    })
    socket.on('data', (d: Buffer) => parser.parse(d))
    socket.on('secureConnect', () => socket.write(mqttPacket.generate({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: true, clientId: VIN, keepalive: 60 })))
    await pubacked
    socket.destroy()
  }
  await gw.gateway.log.flush()
  const rows = (await gw.store.transactions.listForVehicle({ vin: VIN, direction: 'up', limit: 10 })).items
  t.equal(rows.length, 2, 'one rejected row for the first copy and its retransmission, one for the new message')
  t.ok(rows.every((r) => r.status === 'rejected' && r.errorCode === 'GW_ERR_ENVELOPE_MALFORMED'))
  t.not(rows[0]?.messageId, rows[1]?.messageId, 'each with an id of its own')
})
