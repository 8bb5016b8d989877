import type pg from 'pg'
import { GatewayError } from '../protocol/index.ts'
import { translateError } from './store-errors.ts'
import { fromRow, type Row } from './transaction-rows.ts'

export type Direction = 'up' | 'down' | 'system'

/** One row of the append-only transaction log (README, "Delivery semantics"). */
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
  /**
   * Id of the transaction that inserted the row (xid8 as text), once committed: with `id` it is
   * the row's position in the feed (README, "Integrating a backend").
   */
  xid?: string
}

export interface TransactionQuery {
  vin: string
  from?: Date
  to?: Date
  kind?: string
  direction?: Direction
  limit: number
  cursor?: string
  /**
   * Bound on the page in bytes. The statement stops reading rows once its estimate of the
   * page (raw bytes and their base64 forms) passes it; `fits` then decides row by row with the
   * caller's exact measure. The first row is always taken, and the cursor goes on after the last taken.
   */
  budget?: { maxBytes: number, withRaw: boolean, fits: (r: TransactionRecord) => boolean }
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
RETURNING id, xid::text AS xid`

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
    // Each inserted record comes back with its feed position (the xid that inserted it).
    const inserted = (ids: Array<{ id: string, xid: string }>): TransactionRecord[] => {
      const xids = new Map(ids.map((r) => [r.id, r.xid]))
      return records.flatMap((r) => {
        const xid = xids.get(r.id)
        return xid === undefined ? [] : [{ ...r, xid }]
      })
    }
    try {
      return inserted((await this.#commitPool.query<{ id: string, xid: string }>(INSERT_SQL, params)).rows)
    } catch (err) {
      if ((err as { code?: string }).code !== PARTITION_MISSING) throw translateError(err)
      // A row outside the partitions made ahead (e.g. an old created_at): make its month and retry once.
      try {
        await this.ensurePartitions(records.map((r) => r.occurredAt))
        return inserted((await this.#commitPool.query<{ id: string, xid: string }>(INSERT_SQL, params)).rows)
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

  /** One vehicle's log, newest first, with keyset paging, bounded in rows and (with a budget) in bytes. */
  async listForVehicle (q: TransactionQuery): Promise<TransactionPage> {
    const { sql, params } = pageQuery(q)
    let rows: PageRow[]
    try {
      rows = (await this.#pool.query<PageRow>(sql, params)).rows
    } catch (err) {
      throw translateError(err)
    }
    const page: PageRow[] = []
    for (const row of rows) {
      if (page.length === q.limit || (page.length > 0 && row.over_budget)) break
      if (q.budget !== undefined && !q.budget.fits(fromRow(row)) && page.length > 0) break
      page.push(row)
    }
    const last = page[page.length - 1]
    return {
      items: page.map(fromRow),
      nextCursor: page.length < rows.length && last !== undefined ? encodeCursor(last.occurred_micros, last.id) : null
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

type PageRow = Row & { occurred_micros: number, over_budget: boolean }

/**
 * The page's statement: limit + 1 rows (the extra one tells whether more follow) and,
 * with a budget, a running estimate of their size, so that rows past the budget (but one,
 * which says more follow) are never read; that row's raw bytes are not sent.
 */
function pageQuery (q: TransactionQuery): { sql: string, params: unknown[] } {
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
  const limit = `$${params.length}`
  const order = 'ORDER BY occurred_at DESC, id DESC'
  if (q.budget === undefined) {
    return {
      sql: `SELECT *, (extract(epoch from occurred_at) * 1000000)::int8 AS occurred_micros, false AS over_budget
        FROM transactions WHERE ${where.join(' AND ')} ${order} LIMIT ${limit}`,
      params
    }
  }
  // base64 is 4/3 of the bytes: the payload (at most the raw envelope) and, when asked for, the raw bytes again.
  params.push(q.budget.withRaw ? 3 : 2, q.budget.maxBytes)
  const estimate = `512 + coalesce(octet_length(raw), 0) * $${params.length - 1} + coalesce(octet_length(attributes::text), 0) + coalesce(octet_length(details::text), 0)`
  const before = (upTo: number): string => `coalesce(sum(${estimate}) OVER (${order} ROWS BETWEEN UNBOUNDED PRECEDING AND ${upTo} PRECEDING), 0)`
  return {
    sql: `SELECT id, occurred_at, received_at, vin, market, direction, kind, type, message_id, correlation_id, created_at_ms, ttl_seconds,
        attributes, ack_status, ack_reason, status, error_code, CASE WHEN over_budget THEN NULL ELSE raw END AS raw, details, occurred_micros, over_budget
      FROM (
        SELECT *, (extract(epoch from occurred_at) * 1000000)::int8 AS occurred_micros,
          ${before(1)} >= $${params.length} AS over_budget, ${before(2)} >= $${params.length} AS past_budget
        FROM transactions WHERE ${where.join(' AND ')} ${order} LIMIT ${limit}
      ) page
      WHERE NOT past_budget ${order}`,
    params
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
