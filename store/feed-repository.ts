import type pg from 'pg'
import { GatewayError } from '../protocol/index.ts'
import { EVENT_ATTRIBUTES_SQL } from './event-columns.ts'
import { translateError } from './store-errors.ts'
import type { TransactionRecord } from './transaction-log.ts'
import { fromRow, type Row } from './transaction-rows.ts'

/** A place in the feed: the inserting transaction's id, then the row's id (README, "Integrating a backend"). */
export interface FeedPosition {
  xid: string
  id: string
}

export interface FeedQuery {
  /** Rows after this position; null: from the oldest row kept. */
  after: FeedPosition | null
  limit: number
  vin?: string
  kind?: string
  type?: string
  /** Events with their payload (an opt-in): raw bytes of envelopes up to this size are read; larger ones only their size. */
  payloadMaxBytes?: number
}

/** A feed row: the record, and with a payload read the size of its raw bytes (whether they were read or not). */
export type FeedItem = TransactionRecord & { rawBytes?: number | null }

export interface FeedPage {
  /** Committed rows in feed order, each with its `xid`; raw bytes only with payloadMaxBytes and within it; large attribute values summarised (event-columns.ts). */
  items: FeedItem[]
  /** Where the next read starts: after the last item, or after the last row examined when none matched. */
  next: FeedPosition
  /** True when the read stopped at its bound rather than at the feed's head: read again at once. */
  more: boolean
  /** Every transaction with an id below this had finished when the page was read (xid8 as text). */
  finishedBelow: string
}

export const FEED_START: FeedPosition = { xid: '0', id: '00000000-0000-0000-0000-000000000000' }

// A filtered read examines at most this many rows, so a rare VIN cannot make one request scan the whole log.
const FILTERED_SCAN = 5000

/**
 * Only rows whose transaction id is below the oldest transaction still running are served: every
 * transaction that could still insert a row with a smaller position has finished, so a cursor can
 * never step over a row that commits later (the lost-event bug of sequence-ordered feeds).
 */
const FEED_SQL = `
WITH scanned AS MATERIALIZED (
  SELECT id, occurred_at, received_at, vin, market, direction, kind, type, message_id, correlation_id, created_at_ms, ttl_seconds,
    attributes, ack_status, ack_reason, status, error_code, CASE WHEN octet_length(raw) <= $8::int THEN raw END AS raw,
    CASE WHEN $8::int IS NOT NULL THEN octet_length(raw) END AS raw_bytes, details, xid
  FROM transactions
  WHERE xid < pg_snapshot_xmin(pg_current_snapshot()) AND (xid, id) > ($1::xid8, $2::uuid)
  ORDER BY xid, id LIMIT $3
), hits AS (
  -- Large attribute values are summarised for the rows served only, not for every row a filtered read examines.
  SELECT id, occurred_at, received_at, vin, market, direction, kind, type, message_id, correlation_id, created_at_ms, ttl_seconds,
    ${EVENT_ATTRIBUTES_SQL}, ack_status, ack_reason, status, error_code, raw, raw_bytes, details, xid
  FROM scanned
  WHERE ($4::text IS NULL OR vin = $4) AND ($5::text IS NULL OR kind = $5) AND ($6::text IS NULL OR type = $6)
  ORDER BY xid, id LIMIT $7
), tail AS (
  SELECT (SELECT count(*)::int FROM scanned) AS scanned_count, last.xid::text AS last_xid, last.id AS last_id,
    pg_snapshot_xmin(pg_current_snapshot())::text AS finished_below
  FROM (SELECT NULL) one LEFT JOIN (SELECT xid, id FROM scanned ORDER BY xid DESC, id DESC LIMIT 1) last ON true
)
SELECT tail.scanned_count, tail.last_xid, tail.last_id, tail.finished_below, h.*
FROM tail LEFT JOIN hits h ON true ORDER BY h.xid, h.id`

type FeedRow = Partial<Row> & { raw_bytes?: number | null, scanned_count: number, last_xid: string | null, last_id: string | null, finished_below: string }

/** The durable feed: the transaction log in commit-safe order, read on the API pool. */
export class FeedRepository {
  readonly #pool: pg.Pool

  constructor (pool: pg.Pool) {
    this.#pool = pool
  }

  async read (q: FeedQuery): Promise<FeedPage> {
    const after = q.after ?? FEED_START
    const filtered = q.vin !== undefined || q.kind !== undefined || q.type !== undefined
    const scan = filtered ? Math.max(q.limit, FILTERED_SCAN) : q.limit
    let rows: FeedRow[]
    try {
      rows = (await this.#pool.query<FeedRow>(FEED_SQL,
        [after.xid, after.id, scan, q.vin ?? null, q.kind ?? null, q.type ?? null, q.limit, q.payloadMaxBytes ?? null])).rows
    } catch (err) {
      throw translateError(err)
    }
    const head = rows[0]
    const items: FeedItem[] = rows.filter((r) => r.id !== null && r.id !== undefined)
      .map((r) => q.payloadMaxBytes === undefined ? fromRow(r as Row) : { ...fromRow(r as Row), rawBytes: r.raw_bytes ?? null })
    const finishedBelow = head?.finished_below ?? '0'
    const last = items[items.length - 1]
    if (items.length === q.limit && last !== undefined) {
      return { items, next: { xid: last.xid ?? after.xid, id: last.id }, more: true, finishedBelow }
    }
    const next = head?.last_xid !== null && head?.last_xid !== undefined && head.last_id !== null
      ? { xid: head.last_xid, id: head.last_id }
      : after
    return { items, next, more: (head?.scanned_count ?? 0) === scan, finishedBelow }
  }

  /**
   * The first transaction id not yet assigned: every row committed before this call has an xid below it.
   * A reader that has read until `finishedBelow` passes it has seen every such row.
   */
  async horizon (): Promise<string> {
    try {
      const { rows } = await this.#pool.query<{ h: string }>('SELECT pg_snapshot_xmax(pg_current_snapshot())::text AS h')
      return rows[0]?.h ?? '0'
    } catch (err) {
      throw translateError(err)
    }
  }

  /** Whether a row is still kept at this position (false: retention removed it). */
  async exists (p: FeedPosition): Promise<boolean> {
    try {
      const { rowCount } = await this.#pool.query('SELECT 1 FROM transactions WHERE xid = $1::xid8 AND id = $2::uuid', [p.xid, p.id])
      return (rowCount ?? 0) > 0
    } catch (err) {
      throw translateError(err)
    }
  }
}

/** The opaque cursor a client stores: base64url of "xid|id". */
export function encodeFeedCursor (p: FeedPosition): string {
  return Buffer.from(`${p.xid}|${p.id}`).toString('base64url')
}

export function decodeFeedCursor (cursor: string): FeedPosition {
  const text = Buffer.from(cursor, 'base64url').toString('utf8')
  const match = /^(\d{1,20})\|([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$/.exec(text)
  if (match === null) throw new GatewayError('GW_ERR_INVALID_CURSOR')
  return { xid: match[1] as string, id: match[2] as string }
}

/** The feed position of a committed record, when its statement returned one. */
export function feedPositionOf (r: TransactionRecord): FeedPosition | null {
  return r.xid === undefined ? null : { xid: r.xid, id: r.id }
}
