import type pg from 'pg'
import { GatewayError } from '../protocol/index.ts'
import { translateError } from './store-errors.ts'
import { fromRow, type Row } from './transaction-rows.ts'

export type Direction = 'up' | 'down' | 'system'

/** One row of the append-only transaction log (DESIGN §4). */
export interface TransactionRecord {
  id: string
  /** Event time and partition key; for uplinks the sender's created_at (stable across retries). */
  occurredAt: Date
  receivedAt: Date
  vin: string | null
  market: string | null
  direction: Direction
  /** Envelope kind (TELEMETRY, ACK, ...) or, for system rows, CONNECTION or SECURITY. */
  kind: string
  type: string | null
  messageId: string | null
  correlationId: string | null
  createdAtMs: number | null
  ttlSeconds: number | null
  attributes: Record<string, string> | null
  ackStatus: string | null
  ackReason: string | null
  status: string
  errorCode: string | null
  raw: Uint8Array | null
  details: Record<string, unknown> | null
}

export interface TransactionQuery {
  vin: string
  from?: Date
  to?: Date
  kind?: string
  direction?: Direction
  limit: number
  cursor?: string
}

export interface TransactionPage {
  items: TransactionRecord[]
  nextCursor: string | null
}

const COLUMNS = [
  ['id', 'uuid'], ['occurred_at', 'timestamptz'], ['received_at', 'timestamptz'], ['vin', 'text'], ['market', 'text'],
  ['direction', 'text'], ['kind', 'text'], ['type', 'text'], ['message_id', 'text'], ['correlation_id', 'text'],
  ['created_at_ms', 'int8'], ['ttl_seconds', 'int4'], ['attributes', 'jsonb'], ['ack_status', 'text'], ['ack_reason', 'text'],
  ['status', 'text'], ['error_code', 'text'], ['raw', 'bytea'], ['details', 'jsonb']
] as const

// One statement for any batch size: the plan is cached and the wire cost is one round trip.
const INSERT_SQL = `INSERT INTO transactions (${COLUMNS.map(([c]) => c).join(', ')})
SELECT * FROM unnest(${COLUMNS.map(([, t], i) => `$${i + 1}::${t}[]`).join(', ')})
ON CONFLICT DO NOTHING
RETURNING id`

const PARTITION_MISSING = '23514'

function toColumns (records: readonly TransactionRecord[]): unknown[][] {
  const cols: unknown[][] = COLUMNS.map(() => new Array(records.length))
  records.forEach((r, i) => {
    const row = [
      r.id, r.occurredAt, r.receivedAt, r.vin, r.market, r.direction, r.kind, r.type, r.messageId, r.correlationId,
      r.createdAtMs, r.ttlSeconds, r.attributes === null ? null : JSON.stringify(r.attributes), r.ackStatus, r.ackReason,
      r.status, r.errorCode, r.raw === null ? null : Buffer.from(r.raw.buffer, r.raw.byteOffset, r.raw.byteLength),
      r.details === null ? null : JSON.stringify(r.details)
    ]
    row.forEach((v, c) => { (cols[c] as unknown[])[i] = v })
  })
  return cols
}

/**
 * Appends go through the commit pool, reads through the API pool: a slow or abusive
 * reader can never make an uplink's PUBACK wait (docs/architecture.md, "Bulkheads").
 */
export class TransactionLog {
  readonly #commitPool: pg.Pool
  readonly #pool: pg.Pool

  constructor (commitPool: pg.Pool, readPool: pg.Pool) {
    this.#commitPool = commitPool
    this.#pool = readPool
  }

  /**
   * Appends records in one statement (one implicit transaction). Rows that repeat an
   * uplink already stored (same vin, message_id, created_at) are skipped. Resolves
   * only when committed, with the records actually inserted; rejects with a GatewayError.
   */
  async append (records: readonly TransactionRecord[]): Promise<TransactionRecord[]> {
    if (records.length === 0) return []
    const params = toColumns(records)
    const inserted = (ids: Array<{ id: string }>): TransactionRecord[] => {
      if (ids.length === records.length) return [...records]
      const set = new Set(ids.map((r) => r.id))
      return records.filter((r) => set.has(r.id))
    }
    try {
      return inserted((await this.#commitPool.query<{ id: string }>(INSERT_SQL, params)).rows)
    } catch (err) {
      if ((err as { code?: string }).code !== PARTITION_MISSING) throw translateError(err)
      // A row outside the partitions made ahead (e.g. an old created_at): make its month and retry once.
      try {
        await this.ensurePartitions(records.map((r) => r.occurredAt))
        return inserted((await this.#commitPool.query<{ id: string }>(INSERT_SQL, params)).rows)
      } catch (retryErr) {
        throw translateError(retryErr)
      }
    }
  }

  /** Creates the monthly partitions holding these instants, if missing. */
  async ensurePartitions (instants: readonly Date[]): Promise<void> {
    const months = new Set(instants.map((d) => `${d.getUTCFullYear()}-${String(d.getUTCMonth() + 1).padStart(2, '0')}-01T00:00:00Z`))
    try {
      for (const month of months) {
        await this.#commitPool.query('SELECT vgw_ensure_transactions_partition($1::timestamptz)', [month])
      }
    } catch (err) {
      throw translateError(err)
    }
  }

  /** Partitions for every month from `from` to `to` (inclusive). */
  async ensurePartitionRange (from: Date, to: Date): Promise<void> {
    const instants: Date[] = []
    const cursor = new Date(Date.UTC(from.getUTCFullYear(), from.getUTCMonth(), 1))
    while (cursor <= to) {
      instants.push(new Date(cursor))
      cursor.setUTCMonth(cursor.getUTCMonth() + 1)
    }
    await this.ensurePartitions(instants)
  }

  /** One vehicle's log, newest first, with keyset paging. */
  async listForVehicle (q: TransactionQuery): Promise<TransactionPage> {
    const where = ['vin = $1']
    const params: unknown[] = [q.vin]
    const add = (clause: string, value: unknown): void => {
      params.push(value)
      where.push(clause.replace('?', `$${params.length}`))
    }
    if (q.from !== undefined) add('occurred_at >= ?', q.from)
    if (q.to !== undefined) add('occurred_at < ?', q.to)
    if (q.kind !== undefined) add('kind = ?', q.kind)
    if (q.direction !== undefined) add('direction = ?', q.direction)
    if (q.cursor !== undefined) {
      const c = decodeCursor(q.cursor)
      params.push(c.micros, c.id)
      where.push(`(occurred_at, id) < (timestamptz 'epoch' + $${params.length - 1}::int8 * interval '1 microsecond', $${params.length}::uuid)`)
    }
    params.push(q.limit + 1)
    const sql = `SELECT *, (extract(epoch from occurred_at) * 1000000)::int8 AS occurred_micros
      FROM transactions WHERE ${where.join(' AND ')}
      ORDER BY occurred_at DESC, id DESC LIMIT $${params.length}`
    let rows: Array<Row & { occurred_micros: number }>
    try {
      rows = (await this.#pool.query<Row & { occurred_micros: number }>(sql, params)).rows
    } catch (err) {
      throw translateError(err)
    }
    const more = rows.length > q.limit
    const page = more ? rows.slice(0, q.limit) : rows
    const last = page[page.length - 1]
    return {
      items: page.map(fromRow),
      nextCursor: more && last !== undefined ? encodeCursor(last.occurred_micros, last.id) : null
    }
  }

  /** Every row with this message id, oldest first (used by tests and status views). */
  async findByMessageId (vin: string, messageId: string): Promise<TransactionRecord[]> {
    try {
      const { rows } = await this.#pool.query<Row>(
        'SELECT * FROM transactions WHERE vin = $1 AND message_id = $2 ORDER BY occurred_at, id', [vin, messageId])
      return rows.map(fromRow)
    } catch (err) {
      throw translateError(err)
    }
  }
}

function encodeCursor (micros: number, id: string): string {
  return Buffer.from(`${micros}|${id}`).toString('base64url')
}

function decodeCursor (cursor: string): { micros: number, id: string } {
  const text = Buffer.from(cursor, 'base64url').toString('utf8')
  const match = /^(\d{1,17})\|([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$/.exec(text)
  if (match === null) throw new GatewayError('GW_ERR_INVALID_CURSOR')
  return { micros: Number(match[1]), id: match[2] as string }
}
