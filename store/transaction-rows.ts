import type { Direction, TransactionRecord } from './transaction-log.ts'

/** A `transactions` row as pg returns it. */
export interface Row {
  id: string
  occurred_at: Date
  received_at: Date
  vin: string | null
  market: string | null
  direction: Direction
  kind: string
  type: string | null
  message_id: string | null
  correlation_id: string | null
  created_at_ms: number | null
  ttl_seconds: number | null
  attributes: Record<string, string> | null
  ack_status: string | null
  ack_reason: string | null
  status: string
  error_code: string | null
  raw: Buffer | null
  details: Record<string, unknown> | null
  /** The inserting transaction's id (xid8, as text), where the statement returned it. */
  xid?: string
  /** The row's ledger leaf (vgw_log_leaf, migration 0015), where the statement returned it. */
  leaf?: Buffer
}

export function fromRow (r: Row): TransactionRecord {
  return {
    id: r.id,
    occurredAt: r.occurred_at,
    receivedAt: r.received_at,
    vin: r.vin,
    market: r.market,
    direction: r.direction,
    kind: r.kind,
    type: r.type,
    messageId: r.message_id,
    correlationId: r.correlation_id,
    createdAtMs: r.created_at_ms,
    ttlSeconds: r.ttl_seconds,
    attributes: r.attributes,
    ackStatus: r.ack_status,
    ackReason: r.ack_reason,
    status: r.status,
    errorCode: r.error_code,
    raw: r.raw,
    details: r.details,
    ...(r.xid !== undefined ? { xid: r.xid } : {}),
    ...(r.leaf !== undefined ? { leaf: r.leaf } : {})
  }
}


/**
 * The log's columns in insert order, for statements that write log rows next to their status changes.
 * received_at and xid are not among them: the database sets both (migration 0014).
 */
/** What a statement that writes log rows answers for each: the row, its xid and its ledger leaf (INSERT INTO transactions AS t). */
export const LOG_RETURNING = 'RETURNING t.*, vgw_log_leaf(t) AS leaf'

export const LOG_COLUMNS = `id, occurred_at, vin, market, direction, kind, type, message_id, correlation_id, created_at_ms,
  ttl_seconds, attributes, ack_status, ack_reason, status, error_code, raw, details`
