import pg from 'pg'
import t from 'tap'
import { v7 as uuidv7 } from 'uuid'
import { LogCommitted, TransactionLog, type TransactionRecord } from '../../store/index.ts'
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

t.test('every column survives the binary append exactly, NULLs and non-ASCII text included', async (t) => {
  const { store } = await testStore(t)
  const vin = 'WVWZZZ1JZXW000003'
  const backing = Buffer.from([9, 9, 0, 1, 2, 255, 9])
  const full: TransactionRecord = {
    ...uplink(vin, uuidv7(), Date.now() - 1234),
    kind: 'ACK',
    type: 'ota.überprüfung',
    correlationId: uuidv7(),
    createdAtMs: Date.now() - 1234,
    ttlSeconds: -5,
    attributes: { 'ключ': 'värde 🚗', quote: 'a"b\\c', empty: '' },
    ackStatus: 'ACCEPTED',
    ackReason: 'ok, «gut»',
    // A view into a larger buffer: only its own bytes are stored.
    raw: backing.subarray(2, 6)
  }
  const sparse: TransactionRecord = {
    ...uplink(vin, uuidv7(), Date.now() - 1000),
    market: null,
    direction: 'system',
    kind: 'CONNECTION',
    type: null,
    messageId: null,
    createdAtMs: null,
    ttlSeconds: null,
    attributes: null,
    status: 'recorded',
    errorCode: 'GW_ERR_INTERNAL',
    raw: new Uint8Array(0),
    details: { nested: { list: [1, 'zwei', null, true] }, text: 'tab\there' }
  }
  const stored = await store.transactions.append([full, sparse])
  t.equal(stored.length, 2)
  t.ok(stored.every((r) => r.xid !== undefined && r.xid === stored[0]?.xid), 'one commit: one xid for the batch')
  const rows = (await store.transactions.listForVehicle({ vin, limit: 10 })).items
  const byId = new Map(rows.map((r) => [r.id, r]))
  const expect = (r: TransactionRecord): TransactionRecord => ({ ...r, raw: r.raw === null ? null : Buffer.from(r.raw) })
  for (const r of [full, sparse]) {
    const got = byId.get(r.id)
    t.ok(got, `row ${r.kind} stored`)
    if (got === undefined) continue
    const { xid: _xid, ...rest } = got
    // received_at is the database's (the inserting transaction's start), as the append answered it.
    const receivedAt = stored[0]?.receivedAt as Date
    t.same(rest, { ...expect(r), receivedAt }, `row ${r.kind} reads back as written`)
    t.equal(got.occurredAt.getTime(), r.occurredAt.getTime())
    t.equal(got.receivedAt.getTime(), receivedAt.getTime())
  }
})

t.test('a repeated uplink is skipped and only the inserted rows come back, with their xid', async (t) => {
  const { store } = await testStore(t)
  const vin = 'WVWZZZ1JZXW000004'
  const first = uplink(vin, uuidv7(), Date.now() - 5000)
  await store.transactions.append([first])
  const fresh = uplink(vin, uuidv7(), Date.now() - 4000)
  const stored = await store.transactions.append([{ ...first, id: uuidv7() }, fresh])
  t.same(stored.map((r) => r.id), [fresh.id])
  t.match(stored[0]?.xid, /^\d+$/)
  t.equal((await store.transactions.listForVehicle({ vin, limit: 10 })).items.length, 2)
})

t.test('a batch retried after its commit succeeded but its answer was lost is stored once', async (t) => {
  const { url } = await testStore(t)
  const pool = new pg.Pool({ connectionString: url, max: 2 })
  t.teardown(() => pool.end())
  // The first append commits, then the "connection" drops before the answer arrives.
  let loseNextAnswer = false
  const flaky = {
    async query (config: pg.QueryConfig, values?: unknown[]) {
      const result = await pool.query(config, values)
      if (loseNextAnswer) {
        loseNextAnswer = false
        throw Object.assign(new Error('Connection terminated unexpectedly'), { code: 'ECONNRESET' })
      }
      return result
    }
  }
  const log = new TransactionLog(flaky as unknown as pg.Pool, pool, new LogCommitted())
  const vin = 'WVWZZZ1JZXW000005'
  await log.ensurePartitionRange(new Date(Date.now() - 3600_000), new Date())
  loseNextAnswer = true
  // Only the uplink has a dedup key of its own; the others must not be written twice either.
  const batch = [
    uplink(vin, uuidv7(), Date.now() - 3000),
    { ...uplink(vin, uuidv7(), Date.now() - 2000), direction: 'system' as const, kind: 'CONNECTION', type: 'connect', messageId: null, status: 'recorded' },
    { ...uplink(vin, uuidv7(), Date.now() - 1000), status: 'rejected', messageId: null, errorCode: 'GW_ERR_ENVELOPE_MALFORMED' }
  ]
  await t.rejects(log.append(batch), { code: 'GW_ERR_STORE_UNAVAILABLE' })
  const again = await log.append(batch)
  t.same(again, [], 'the retry inserts nothing: every row was stored by the first attempt')
  const { rows } = await pool.query<{ n: number }>('SELECT count(*)::int AS n FROM transactions WHERE vin = $1', [vin])
  t.equal(rows[0]?.n, 3, 'each row once')
  // The same records in a later batch with a new one: only the new one is written.
  const next = uplink(vin, uuidv7(), Date.now() - 500)
  t.same((await log.append([...batch, next])).map((r) => r.id), [next.id])
})
