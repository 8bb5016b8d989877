import pg from 'pg'
import t from 'tap'
import { v7 as uuidv7 } from 'uuid'
import { SendBatcher } from '../../gateway/api/send-batcher.ts'
import { GatewayError } from '../../protocol/index.ts'
import { testStore } from '../helpers/database.ts'

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
