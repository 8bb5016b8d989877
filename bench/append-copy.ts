// The alternative append that bench/append-bench.ts compares with store.transactions.append
// (APPEND_BENCH_MODE=copy): binary COPY of the batch into a per-connection temporary staging
// table, then INSERT … SELECT from it in the same transaction (4 round trips: BEGIN, COPY,
// INSERT, COMMIT). Bench code only: the store kept the binary array parameters (docs/benchmarks.md).
import type pg from 'pg'
import { from as copyFrom } from 'pg-copy-streams'
import type { TransactionRecord } from '../store/index.ts'

const COLS = 'id, occurred_at, received_at, vin, market, direction, kind, type, message_id, correlation_id, created_at_ms, ttl_seconds, attributes, ack_status, ack_reason, status, error_code, raw, details'
const SIGNATURE = Buffer.from('PGCOPY\n\xff\r\n\0', 'latin1')
const PG_EPOCH_MS = 946_684_800_000
const staged = new WeakSet<pg.PoolClient>()

class RowWriter {
  buf = Buffer.allocUnsafe(1 << 16)
  at = 0
  room (n: number): void {
    if (this.at + n <= this.buf.length) return
    const next = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.at + n))
    this.buf.copy(next, 0, 0, this.at)
    this.buf = next
  }

  int16 (n: number): void { this.room(2); this.buf.writeInt16BE(n, this.at); this.at += 2 }
  int32 (n: number): void { this.room(4); this.buf.writeInt32BE(n, this.at); this.at += 4 }
  text (v: string | null): void {
    if (v === null) return this.int32(-1)
    this.room(4 + v.length * 3)
    const n = this.buf.write(v, this.at + 4, 'utf8')
    this.buf.writeInt32BE(n, this.at)
    this.at += 4 + n
  }

  json (v: unknown): void {
    if (v === null) return this.int32(-1)
    const s = JSON.stringify(v)
    this.room(5 + s.length * 3)
    this.buf[this.at + 4] = 1
    const n = this.buf.write(s, this.at + 5, 'utf8')
    this.buf.writeInt32BE(n + 1, this.at)
    this.at += 5 + n
  }

  bytes (b: Uint8Array | null): void {
    if (b === null) return this.int32(-1)
    this.room(4 + b.byteLength)
    this.buf.writeInt32BE(b.byteLength, this.at)
    this.buf.set(b, this.at + 4)
    this.at += 4 + b.byteLength
  }

  uuid (id: string): void {
    this.room(20)
    this.buf.writeInt32BE(16, this.at)
    this.buf.write(id.replaceAll('-', ''), this.at + 4, 'hex')
    this.at += 20
  }

  int8 (n: number | null): void {
    if (n === null) return this.int32(-1)
    this.room(12)
    const hi = Math.floor(n / 2 ** 32)
    this.buf.writeInt32BE(8, this.at)
    this.buf.writeInt32BE(hi, this.at + 4)
    this.buf.writeUInt32BE(n - hi * 2 ** 32, this.at + 8)
    this.at += 12
  }

  int4 (n: number | null): void {
    if (n === null) return this.int32(-1)
    this.int32(4)
    this.int32(n)
  }
}

function copyBody (records: readonly TransactionRecord[]): Buffer {
  const w = new RowWriter()
  w.room(19)
  SIGNATURE.copy(w.buf, 0)
  w.at = SIGNATURE.length
  w.int32(0)
  w.int32(0)
  for (const r of records) {
    w.int16(19)
    w.uuid(r.id); w.int8((r.occurredAt.getTime() - PG_EPOCH_MS) * 1000); w.int8((r.receivedAt.getTime() - PG_EPOCH_MS) * 1000)
    w.text(r.vin); w.text(r.market); w.text(r.direction); w.text(r.kind); w.text(r.type); w.text(r.messageId); w.text(r.correlationId)
    w.int8(r.createdAtMs); w.int4(r.ttlSeconds); w.json(r.attributes); w.text(r.ackStatus); w.text(r.ackReason); w.text(r.status)
    w.text(r.errorCode); w.bytes(r.raw); w.json(r.details)
  }
  w.int16(-1)
  return w.buf.subarray(0, w.at)
}

const INSERT = {
  name: 'bench_copy_insert',
  text: `WITH inserted AS (INSERT INTO transactions (${COLS}) SELECT ${COLS} FROM vgw_log_staging RETURNING id)
    SELECT pg_current_xact_id()::text AS xid, count(*)::int AS n FROM inserted`
}

export async function copyAppend (pool: pg.Pool, records: readonly TransactionRecord[]): Promise<string> {
  const client = await pool.connect()
  try {
    if (!staged.has(client)) {
      await client.query('CREATE TEMP TABLE vgw_log_staging (LIKE transactions INCLUDING DEFAULTS) ON COMMIT DELETE ROWS')
      staged.add(client)
    }
    await client.query('BEGIN')
    const body = copyBody(records)
    await new Promise<void>((resolve, reject) => {
      const stream = client.query(copyFrom(`COPY vgw_log_staging (${COLS}) FROM STDIN (FORMAT binary)`))
      stream.on('finish', resolve)
      stream.on('error', reject)
      stream.end(body)
    })
    const { rows } = await client.query<{ xid: string, n: number }>(INSERT)
    await client.query('COMMIT')
    return rows[0]?.xid ?? ''
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined)
    throw err
  } finally {
    client.release()
  }
}
