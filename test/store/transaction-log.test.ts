import t from 'tap'
import { v7 as uuidv7 } from 'uuid'
import type { TransactionRecord } from '../../store/index.ts'
import { testStore } from '../helpers/database.ts'

function uplink (vin: string, messageId: string, createdAtMs: number): TransactionRecord {
  return {
    id: uuidv7(),
    occurredAt: new Date(createdAtMs),
    receivedAt: new Date(),
    vin,
    market: 'DE',
    direction: 'up',
    kind: 'TELEMETRY',
    type: 'telemetry.position',
    messageId,
    correlationId: null,
    createdAtMs,
    ttlSeconds: 0,
    attributes: { a: 'b' },
    ackStatus: null,
    ackReason: null,
    status: 'accepted',
    errorCode: null,
    raw: Buffer.from([1, 2, 3, 0, 255]),
    details: null
  }
}

t.test('append stores rows once, keeps raw bytes, and pages newest first', async (t) => {
  const { store } = await testStore(t)
  const vin = 'WVWZZZ1JZXW000001'
  const base = Date.now() - 10_000
  const records = Array.from({ length: 5 }, (_, i) => uplink(vin, uuidv7(), base + i))
  await store.transactions.append(records)
  // a retry of the same uplinks (new row ids, same vin/message_id/created_at) changes nothing
  await store.transactions.append(records.map((r) => ({ ...r, id: uuidv7() })))

  const page1 = await store.transactions.listForVehicle({ vin, limit: 3 })
  t.equal(page1.items.length, 3)
  t.equal(page1.items[0]?.messageId, records[4]?.messageId, 'newest first')
  t.same(page1.items[0]?.raw, Buffer.from([1, 2, 3, 0, 255]))
  t.same(page1.items[0]?.attributes, { a: 'b' })
  t.type(page1.nextCursor, 'string')
  const page2 = await store.transactions.listForVehicle({ vin, limit: 3, cursor: page1.nextCursor ?? '' })
  t.same(page2.items.map((r) => r.messageId), [records[1]?.messageId, records[0]?.messageId])
  t.equal(page2.nextCursor, null)
})

t.test('a row outside the prepared partitions gets its month created', async (t) => {
  const { store } = await testStore(t)
  const vin = 'WVWZZZ1JZXW000002'
  const old = Date.UTC(2021, 2, 15)
  await store.transactions.append([uplink(vin, uuidv7(), old)])
  const page = await store.transactions.listForVehicle({ vin, limit: 10 })
  t.equal(page.items[0]?.createdAtMs, old)
})

t.test('a cursor that was not issued is refused with a code', async (t) => {
  const { store } = await testStore(t)
  await t.rejects(store.transactions.listForVehicle({ vin: 'WVWZZZ1JZXW000002', limit: 1, cursor: 'bogus' }), { code: 'GW_ERR_INVALID_CURSOR' })
})
