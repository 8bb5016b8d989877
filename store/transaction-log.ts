import type pg from 'pg'
import { GatewayError } from '../protocol/index.ts'
import { translateError } from './store-errors.ts'
import { ArrayColumnWriter, type ElementType } from './binary-columns.ts'
import { fromRow, type Row } from './transaction-rows.ts'
import { leavesOf, type LogCommitted } from './log-committed.ts'

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
  /** The row's ledger leaf, SHA-256 of its stored fields (protocol/ledger.ts), once committed. */
  leaf?: Buffer
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
  ['id', 'uuid'], ['occurred_at', 'timestamptz'], ['vin', 'text'], ['market', 'text'],
  ['direction', 'text'], ['kind', 'text'], ['type', 'text'], ['message_id', 'text'], ['correlation_id', 'text'],
  ['created_at_ms', 'int8'], ['ttl_seconds', 'int4'], ['attributes', 'jsonb'], ['ack_status', 'text'], ['ack_reason', 'text'],
  ['status', 'text'], ['error_code', 'text'], ['raw', 'bytea'], ['details', 'jsonb']
] as const

/*
 * One named statement for any batch size: each connection parses and plans it once. Its 18
 * parameters are arrays in PostgreSQL's binary format (binary-columns.ts). It answers one row:
 * the inserting transaction's id and its start time, which the database set as every row's xid
 * and received_at (the gateway's login may not write either: migration 0014), every inserted row's
 * ledger leaf in id order (migration 0015), and, only when the log already held some of the batch
 * (a retried uplink), the ids of the rows it did insert, in the same order.
 */
const COLUMN_LIST = COLUMNS.map(([c]) => c).join(', ')
const appendSql = (rows: string, onConflict = 'ON CONFLICT DO NOTHING'): string => `WITH inserted AS (
  INSERT INTO transactions AS t (${COLUMN_LIST})
  ${rows}
  ${onConflict}
  RETURNING t.id, vgw_log_leaf(t) AS leaf
)
SELECT pg_current_xact_id()::text AS xid, date_trunc('milliseconds', now()) AS received_at, count(*)::int AS n,
  CASE WHEN count(*) < cardinality($1::uuid[]) THEN coalesce(array_agg(id ORDER BY id)::text[], '{}') END AS ids,
  string_agg(leaf, ''::bytea ORDER BY id) AS leaves
FROM inserted`
const UNNEST = `SELECT * FROM unnest(${COLUMNS.map(([, t], i) => `$${i + 1}::${t}[]`).join(', ')}) AS u(${COLUMN_LIST})`
const APPEND = { name: 'vgw_log_append_v3', text: appendSql(UNNEST) }
/*
 * The same without ON CONFLICT: a plain insert costs PostgreSQL about 2.8 µs less per row (the
 * speculative insertion that ON CONFLICT needs), and the dedup index still refuses a repeated
 * uplink, failing (and rolling back) the whole statement; the batch is then written again with
 * APPEND, and so are the batches of the next REPEAT_WINDOW_MS, since repeats come in bursts
 * (vehicles that reconnect send again what was not acknowledged).
 */
const APPEND_PLAIN = { name: 'vgw_log_append_plain_v3', text: appendSql(UNNEST, '') }
const REPEAT_WINDOW_MS = 2000
const UNIQUE_VIOLATION = '23505'
interface AppendResult { xid: string, received_at: Date, n: number, ids: string[] | null, leaves: Buffer | null }
interface Statement { name: string, text: string }

const PARTITION_MISSING = '23514'

function toColumns (records: readonly TransactionRecord[]): Buffer[] {
  const w = (type: ElementType, perRow: number): ArrayColumnWriter => new ArrayColumnWriter(type, records.length * perRow)
  const id = w('uuid', 20); const occurred = w('timestamptz', 12)
  const vin = w('text', 21); const market = w('text', 6); const direction = w('text', 8); const kind = w('text', 13)
  const type = w('text', 24); const messageId = w('text', 40); const correlationId = w('text', 8)
  const createdAtMs = w('int8', 12); const ttl = w('int4', 8); const attributes = w('jsonb', 48); const ackStatus = w('text', 4)
  const ackReason = w('text', 4); const status = w('text', 12); const errorCode = w('text', 4); const raw = w('bytea', 300)
  const details = w('jsonb', 4)
  for (const r of records) {
    id.uuid(r.id); occurred.timestamp(r.occurredAt)
    vin.text(r.vin); market.text(r.market); direction.text(r.direction); kind.text(r.kind); type.text(r.type)
    messageId.text(r.messageId); correlationId.text(r.correlationId); createdAtMs.int8(r.createdAtMs); ttl.int4(r.ttlSeconds)
    attributes.json(r.attributes); ackStatus.text(r.ackStatus); ackReason.text(r.ackReason); status.text(r.status)
    errorCode.text(r.errorCode); raw.bytes(r.raw); details.json(r.details)
  }
  return [id, occurred, vin, market, direction, kind, type, messageId, correlationId, createdAtMs, ttl,
    attributes, ackStatus, ackReason, status, errorCode, raw, details].map((c) => c.finish())
}

/**
 * The records the statement inserted, each given its feed position (the xid that inserted it), the
 * database's received_at and its ledger leaf (the statement answers the leaves in id order).
 */
function insertedOf (records: readonly TransactionRecord[], result: AppendResult | undefined): TransactionRecord[] {
  if (result === undefined || result.n === 0) return []
  const { xid, received_at: receivedAt } = result
  const ids = result.ids === null ? null : new Set(result.ids)
  const inserted = ids === null ? records : records.filter((r) => ids.has(r.id))
  const leafOf = new Map<string, Buffer>()
  if (result.leaves !== null) {
    // The statement answers the ids it inserted in the same (uuid) order as the leaves, when it answers them.
    const byId = result.ids ?? inserted.map((r) => r.id).sort()
    for (let i = 0; i < byId.length; i++) leafOf.set(byId[i] as string, result.leaves.subarray(i * 32, i * 32 + 32))
  }
  return inserted.map((r) => {
    const leaf = leafOf.get(r.id)
    return leaf === undefined ? { ...r, receivedAt, xid } : { ...r, receivedAt, xid, leaf }
  })
}

/**
 * Appends go through the commit pool, reads through the API pool: a slow or abusive
 * reader can never make an uplink's PUBACK wait (docs/architecture.md, "Bulkheads").
 */
export class TransactionLog {
  readonly #commitPool: pg.Pool
  readonly #pool: pg.Pool
  /**
   * Records of a failed append: they may be stored already (the answer was what got lost), so the
   * next append of them skips what the unique (vin, occurred_at, id) index already holds. That
   * index also makes the retry wait for a first attempt still running in PostgreSQL, so a row is
   * never stored twice (migration 0014).
   */
  readonly #uncertain = new WeakSet<TransactionRecord>()
  /** Until then, appends skip repeated uplinks instead of failing on them (APPEND_PLAIN). */
  #skipRepeatsUntil = 0

  readonly #committed: LogCommitted

  constructor (commitPool: pg.Pool, readPool: pg.Pool, committed: LogCommitted) {
    this.#commitPool = commitPool
    this.#pool = readPool
    this.#committed = committed
  }

  /**
   * Appends records in one statement (one implicit transaction). Rows that repeat an
   * uplink already stored (same vin, message_id, created_at) are skipped, and so are rows
   * of a failed earlier append of the same records that did commit. Resolves
   * only when committed, with the records actually inserted; rejects with a GatewayError.
   */
  async append (records: readonly TransactionRecord[]): Promise<TransactionRecord[]> {
    if (records.length === 0) return []
    const values = toColumns(records)
    const statement = records.some((r) => this.#uncertain.has(r))
      ? APPEND
      : performance.now() < this.#skipRepeatsUntil ? APPEND : APPEND_PLAIN
    try {
      const inserted = await this.#insert(records, statement, values, true)
      this.#committed.emit(leavesOf(inserted))
      if (statement === APPEND && inserted.length < records.length) await this.#adoptEarlierAttempt(records.filter((r) => this.#uncertain.has(r)))
      return inserted
    } catch (err) {
      // Whether it committed is unknown (the answer may be what was lost): the next attempt checks.
      for (const r of records) this.#uncertain.add(r)
      throw translateError(err)
    }
  }

  /**
   * Rows of ours that an earlier attempt stored while its answer was lost: their leaves never
   * reached the ledger, so they are read back and reported now (only rows this gateway wrote:
   * a row that someone else put in the table is never taken into the ledger this way).
   */
  async #adoptEarlierAttempt (mine: readonly TransactionRecord[]): Promise<void> {
    if (mine.length === 0) return
    try {
      const { rows } = await this.#commitPool.query<{ id: string, xid: string, leaf: Buffer }>(
        `SELECT t.id, t.xid::text AS xid, vgw_log_leaf(t) AS leaf FROM transactions t
         JOIN unnest($1::text[], $2::timestamptz[], $3::uuid[]) AS u(vin, occurred_at, id) ON t.vin IS NOT DISTINCT FROM u.vin AND t.occurred_at = u.occurred_at AND t.id = u.id
         WHERE NOT EXISTS (SELECT 1 FROM ledger_batches b WHERE b.xid = t.xid)`,
        [mine.map((r) => r.vin), mine.map((r) => r.occurredAt), mine.map((r) => r.id)])
      this.#committed.emit(rows)
    } catch {
      // Committed all the same; `vgw log verify` names such rows as in no batch.
    }
  }

  async #insert (records: readonly TransactionRecord[], statement: Statement, values: Buffer[], mayMakePartitions: boolean): Promise<TransactionRecord[]> {
    try {
      return insertedOf(records, (await this.#commitPool.query<AppendResult>({ ...statement, values })).rows[0])
    } catch (err) {
      const code = (err as { code?: string }).code
      if (code === UNIQUE_VIOLATION && statement === APPEND_PLAIN) {
        this.#skipRepeatsUntil = performance.now() + REPEAT_WINDOW_MS
        return await this.#insert(records, APPEND, values, mayMakePartitions)
      }
      if (code !== PARTITION_MISSING || !mayMakePartitions) throw err
      // A row outside the partitions made ahead (e.g. an old created_at): make its month and retry once.
      await this.ensurePartitions(records.map((r) => r.occurredAt))
      return await this.#insert(records, statement, values, false)
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
