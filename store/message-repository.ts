import type pg from 'pg'
import { GatewayError } from '../protocol/index.ts'
import { translateError } from './store-errors.ts'
import type { TransactionRecord } from './transaction-log.ts'
import { inTransaction } from './in-transaction.ts'
import { leavesOf, type LogCommitted } from './log-committed.ts'
import { fromRow, LOG_COLUMNS, LOG_RETURNING, type Row } from './transaction-rows.ts'

export const MESSAGE_STATUSES = ['queued', 'sent', 'delivered', 'acknowledged', 'expired', 'failed'] as const
export type MessageStatus = typeof MESSAGE_STATUSES[number]

/** What a downlink says, the same for one message and for a campaign's. */
export interface MessageContent {
  type: string
  payload: Uint8Array
  attributes: Record<string, string>
  ttlSeconds: number
  priority: number
  createdAt: Date
  /** Seconds after createdAt by which, undelivered, the message is reported `fallback_due`; null or unset: never. */
  fallbackAfterSeconds?: number | null
}

export interface NewMessage extends MessageContent {
  id: string
  /** A registered vehicle; its market is read in the same statement. */
  vin: string
  apiKeyId: string | null
  idempotencyKey: string | null
  /** Id of the log row recording the `queued` transition. */
  logId: string
}

export interface MessageRow {
  id: string
  vin: string
  market: string | null
  campaignId: string | null
  type: string
  payload: Buffer
  attributes: Record<string, string>
  ttlSeconds: number
  priority: number
  status: MessageStatus
  ackStatus: string | null
  createdAt: Date
  expiresAt: Date
  sentAt: Date | null
  deliveredAt: Date | null
  acknowledgedAt: Date | null
  finishedAt: Date | null
  fallbackAt: Date | null
  fallbackDueAt: Date | null
}

/** A forward move of one message (README, "Delivery semantics"); `raw` is the envelope for `sent`. */
export interface Transition {
  messageId: string
  vin: string
  status: 'sent' | 'delivered' | 'acknowledged' | 'failed'
  at: Date
  ackStatus?: string | null
  raw?: Uint8Array | null
  logId: string
}

export interface EnqueueResult {
  id: string
  status: MessageStatus
  /** False when the idempotency key had been used: nothing new was created. */
  created: boolean
  /** The `queued` log row, when created. */
  logged: TransactionRecord[]
}

const MESSAGE_COLUMNS = `id, vin, market, campaign_id AS "campaignId", type, payload, attributes, ttl_seconds AS "ttlSeconds", priority, status,
  ack_status AS "ackStatus", created_at AS "createdAt", expires_at AS "expiresAt", sent_at AS "sentAt", delivered_at AS "deliveredAt",
  acknowledged_at AS "acknowledgedAt", finished_at AS "finishedAt", fallback_at AS "fallbackAt", fallback_due_at AS "fallbackDueAt"`

// Statuses only move forward; acknowledged, expired and failed are final.
const RANK = `CASE $STATUS WHEN 'queued' THEN 0 WHEN 'sent' THEN 1 WHEN 'delivered' THEN 2 WHEN 'acknowledged' THEN 3 ELSE 4 END`
const rank = (expr: string): string => RANK.replace('$STATUS', expr)

const TRANSITION_SQL = `
WITH input AS (
  SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::timestamptz[], $5::text[], $6::bytea[], $7::uuid[])
    AS t(message_id, vin, status, at, ack_status, raw, log_id)
), moved AS (
  UPDATE messages m SET
    status = CASE WHEN ${rank('i.status')} > ${rank('m.status')} AND m.status NOT IN ('acknowledged', 'expired', 'failed') THEN i.status ELSE m.status END,
    ack_status = CASE WHEN i.status = 'acknowledged' THEN i.ack_status ELSE m.ack_status END,
    sent_at = CASE WHEN i.status = 'sent' THEN coalesce(m.sent_at, i.at) ELSE m.sent_at END,
    delivered_at = CASE WHEN i.status IN ('delivered', 'acknowledged') THEN coalesce(m.delivered_at, i.at) ELSE m.delivered_at END,
    acknowledged_at = CASE WHEN i.status = 'acknowledged' THEN i.at ELSE m.acknowledged_at END,
    finished_at = CASE WHEN i.status IN ('acknowledged', 'failed') THEN i.at ELSE m.finished_at END,
    attempts = m.attempts + CASE WHEN i.status = 'sent' THEN 1 ELSE 0 END
  FROM input i
  WHERE m.id = i.message_id AND m.vin = i.vin
    -- A sent transition is an attempt that went out: its row and bytes are recorded whatever the message's
    -- status has become meanwhile (issue #19); every other status only moves forward.
    AND (i.status = 'sent' OR (m.status NOT IN ('acknowledged', 'expired', 'failed') AND ${rank('i.status')} > ${rank('m.status')}))
    -- A batch retried after its answer was lost: its log rows are there, so its transitions are too.
    AND NOT EXISTS (SELECT 1 FROM transactions t WHERE t.vin = i.vin AND t.occurred_at = i.at AND t.id = i.log_id)
  RETURNING m.*, i.at AS t_at, i.raw AS t_raw, i.log_id AS t_log_id, i.status AS t_status
)
INSERT INTO transactions AS t (${LOG_COLUMNS})
SELECT t_log_id, t_at, vin, market, 'down', 'MESSAGE', type, id::text, NULL, (extract(epoch FROM created_at) * 1000)::int8,
  ttl_seconds, attributes, CASE WHEN t_status = 'acknowledged' THEN ack_status END, NULL, t_status, NULL, t_raw,
  CASE WHEN campaign_id IS NULL THEN jsonb_build_object('attempt', attempts) ELSE jsonb_build_object('attempt', attempts, 'campaignId', campaign_id) END
FROM moved
-- The NOT EXISTS above cannot see a first attempt still running; the unique (vin, occurred_at, id) index can.
ON CONFLICT DO NOTHING
${LOG_RETURNING}`

// Messages and their `queued` log rows in one statement, so in one implicit transaction, for
// one send or a batch of concurrent sends (one commit for all). Each vehicle's market comes from
// its row, and no row is made for an unknown vehicle. Rows go in idempotency-key order, so two
// batches holding the same keys wait on each other instead of deadlocking; two sends with one
// key in the same batch make one row (DO NOTHING skips the second).
const ENQUEUE_SQL = `WITH input AS (
  SELECT * FROM unnest($1::uuid[], $2::text[], $3::uuid[], $4::text[], $5::text[], $6::bytea[], $7::jsonb[], $8::int[], $9::int[],
    $10::timestamptz[], $11::uuid[], $12::int[])
    AS t(id, vin, api_key_id, idempotency_key, type, payload, attributes, ttl_seconds, priority, created_at, log_id, fallback_after)
), m AS (
  INSERT INTO messages (id, vin, market, api_key_id, idempotency_key, type, payload, attributes, ttl_seconds, priority, status, created_at, expires_at, fallback_at)
  SELECT i.id, v.vin, v.market, i.api_key_id, i.idempotency_key, i.type, i.payload, i.attributes, i.ttl_seconds, i.priority, 'queued', i.created_at,
    i.created_at + i.ttl_seconds * interval '1 second', i.created_at + i.fallback_after * interval '1 second'
  FROM input i JOIN vehicles v ON v.vin = i.vin
  ORDER BY i.api_key_id, i.idempotency_key
  ON CONFLICT (api_key_id, idempotency_key) DO NOTHING
  RETURNING id, created_at, vin, market, type, ttl_seconds, attributes, priority, expires_at
)
INSERT INTO transactions AS t (${LOG_COLUMNS})
SELECT i.log_id, m.created_at, m.vin, m.market, 'down', 'MESSAGE', m.type, m.id::text, NULL, (extract(epoch FROM m.created_at) * 1000)::int8,
  m.ttl_seconds, m.attributes, NULL, NULL, 'queued', NULL, NULL, jsonb_build_object('priority', m.priority, 'expiresAt', m.expires_at)
FROM m JOIN input i ON i.id = m.id
${LOG_RETURNING}`

// What became of sends that made no row: the id their idempotency key already names, or whether their vehicle exists.
const EXISTING_SQL = `SELECT m.api_key_id AS "apiKeyId", m.idempotency_key AS "idempotencyKey", m.id, m.status
  FROM unnest($1::uuid[], $2::text[]) AS k(api_key_id, idempotency_key)
  JOIN messages m ON m.api_key_id = k.api_key_id AND m.idempotency_key = k.idempotency_key`

/** The batch's columns as the arrays ENQUEUE_SQL unnests. */
function enqueueColumns (ms: readonly NewMessage[]): unknown[] {
  return [
    ms.map((m) => m.id), ms.map((m) => m.vin), ms.map((m) => m.apiKeyId), ms.map((m) => m.idempotencyKey), ms.map((m) => m.type),
    ms.map((m) => Buffer.from(m.payload)), ms.map((m) => JSON.stringify(m.attributes)), ms.map((m) => m.ttlSeconds), ms.map((m) => m.priority),
    ms.map((m) => m.createdAt), ms.map((m) => m.logId), ms.map((m) => m.fallbackAfterSeconds ?? null)
  ]
}

const PENDING_SQL = `SELECT ${MESSAGE_COLUMNS} FROM messages
  WHERE vin = $1 AND status IN ('queued', 'sent') AND expires_at > $2 AND NOT (id = ANY($4::uuid[]))
  ORDER BY priority DESC, created_at, id LIMIT $3`

/** Status transitions commit through the commit pool; sends, reads and expiry use the API pool. */
export class MessageRepository {
  readonly #commitPool: pg.Pool
  readonly #pool: pg.Pool

  readonly #committed: LogCommitted

  constructor (commitPool: pg.Pool, pool: pg.Pool, committed: LogCommitted) {
    this.#commitPool = commitPool
    this.#pool = pool
    this.#committed = committed
  }

  /** One send: see enqueueMany. */
  async enqueue (m: NewMessage): Promise<EnqueueResult | 'vehicle-not-found'> {
    const [result] = await this.enqueueMany([m])
    if (result === undefined) throw new Error('enqueueMany answered nothing for one message')
    if (result instanceof GatewayError) throw result
    return result
  }

  /**
   * Commits new messages (status `queued`), each with its log row, in one statement and so one
   * commit (the REST send's cost is mostly per statement and per commit, not per row). A send
   * whose idempotency key the same API key already used answers the existing id instead; the
   * unique index makes that hold for racing requests and within one batch too. Answers one
   * result per message, in order.
   */
  async enqueueMany (ms: readonly NewMessage[]): Promise<Array<EnqueueResult | 'vehicle-not-found' | GatewayError>> {
    let rows: Row[]
    try {
      rows = (await this.#pool.query<Row>({ name: 'vgw_enqueue_v2', text: ENQUEUE_SQL, values: enqueueColumns(ms) })).rows
    } catch (err) {
      throw translateError(err)
    }
    this.#committed.emit(leavesOf(rows))
    const logged = new Map(rows.map((r) => [r.message_id, fromRow(r)]))
    const results = ms.map((m): EnqueueResult | null => {
      const row = logged.get(m.id)
      return row === undefined ? null : { id: m.id, status: 'queued', created: true, logged: [row] }
    })
    if (logged.size === ms.length) return results as EnqueueResult[]
    try {
      return await this.#notCreated(ms, results)
    } catch (err) {
      // The insert has committed: the sends it stored keep their answer, only the others fail
      // (a retry with the same key then answers the stored id).
      const failed = translateError(err)
      return results.map((r) => r ?? failed)
    }
  }

  /**
   * Sends that made no row: their key was used before (or by a racing send that committed
   * first), or their vehicle is unknown. Both are read after the insert committed.
   */
  async #notCreated (ms: readonly NewMessage[], results: ReadonlyArray<EnqueueResult | null>): Promise<Array<EnqueueResult | 'vehicle-not-found' | GatewayError>> {
    const missing = ms.filter((_, i) => results[i] === null)
    const keyed = missing.filter((m) => m.idempotencyKey !== null)
    const existing = new Map<string, { id: string, status: MessageStatus }>()
    if (keyed.length > 0) {
      const { rows } = await this.#pool.query<{ apiKeyId: string | null, idempotencyKey: string, id: string, status: MessageStatus }>(EXISTING_SQL,
        [keyed.map((m) => m.apiKeyId), keyed.map((m) => m.idempotencyKey)])
      for (const r of rows) existing.set(`${r.apiKeyId ?? ''}\n${r.idempotencyKey}`, { id: r.id, status: r.status })
    }
    const { rows: known } = await this.#pool.query<{ vin: string }>('SELECT vin FROM vehicles WHERE vin = ANY($1::text[])', [[...new Set(missing.map((m) => m.vin))]])
    const vins = new Set(known.map((r) => r.vin))
    return ms.map((m, i) => {
      const made = results[i]
      if (made !== null && made !== undefined) return made
      const row = m.idempotencyKey === null ? undefined : existing.get(`${m.apiKeyId ?? ''}\n${m.idempotencyKey}`)
      if (row !== undefined) return { id: row.id, status: row.status, created: false, logged: [] }
      if (!vins.has(m.vin)) return 'vehicle-not-found'
      return new GatewayError('GW_ERR_INTERNAL', 'idempotency conflict without a row')
    })
  }

  /** Undelivered, unexpired messages of a vehicle in delivery order, skipping ids already in flight. */
  async pending (vin: string, now: Date, limit: number, exclude: readonly string[]): Promise<MessageRow[]> {
    try {
      const { rows } = await this.#pool.query<MessageRow>({ name: 'vgw_pending', text: PENDING_SQL, values: [vin, now, limit, exclude] })
      return rows
    } catch (err) {
      throw translateError(err)
    }
  }

  /**
   * Applies transitions set-based, each with its log row in the same statement. Several
   * transitions of one message in a batch are applied in rounds, in the order given.
   * Returns the log rows of the transitions that moved a message; the others (late,
   * duplicate, or for a finished message) change nothing.
   */
  async applyTransitions (transitions: readonly Transition[]): Promise<TransactionRecord[]> {
    const rounds: Transition[][] = []
    const seen = new Map<string, number>()
    for (const tr of transitions) {
      const round = seen.get(tr.messageId) ?? 0
      seen.set(tr.messageId, round + 1)
      ;(rounds[round] ??= []).push(tr)
    }
    const logged = await inTransaction(this.#commitPool, async (client) => {
      const logged: TransactionRecord[] = []
      for (const round of rounds) {
        const { rows } = await client.query<Row>(TRANSITION_SQL, [
          round.map((t) => t.messageId), round.map((t) => t.vin), round.map((t) => t.status), round.map((t) => t.at),
          round.map((t) => t.ackStatus ?? null), round.map((t) => (t.raw === undefined || t.raw === null ? null : Buffer.from(t.raw))),
          round.map((t) => t.logId)
        ])
        logged.push(...rows.map(fromRow))
      }
      return logged
    })
    this.#committed.emit(leavesOf(logged))
    return logged
  }

  /** Marks every queued or sent message whose TTL has run out as expired, with log rows; set-based. */
  async expireDue (now: Date, limit: number): Promise<TransactionRecord[]> {
    try {
      const { rows } = await this.#pool.query<Row>(
        `WITH due AS (
           SELECT id FROM messages WHERE status IN ('queued', 'sent') AND expires_at <= $1 ORDER BY expires_at LIMIT $2 FOR UPDATE SKIP LOCKED
         ), expired AS (
           UPDATE messages m SET status = 'expired', finished_at = $1 FROM due WHERE m.id = due.id RETURNING m.*
         )
         INSERT INTO transactions AS t (${LOG_COLUMNS})
         SELECT vgw_uuid_v7($1), $1, vin, market, 'down', 'MESSAGE', type, id::text, NULL, (extract(epoch FROM created_at) * 1000)::int8,
           ttl_seconds, attributes, NULL, NULL, 'expired', NULL, NULL, jsonb_build_object('expiresAt', expires_at)
         FROM expired ${LOG_RETURNING}`, [now, limit])
      this.#committed.emit(leavesOf(rows))
      return rows.map(fromRow)
    } catch (err) {
      throw translateError(err)
    }
  }

  /**
   * Writes one `fallback_due` log row for every message still queued or sent whose fallback deadline
   * has passed, set-based; the message itself stays queued (a later delivery still counts).
   */
  async fallbackDue (now: Date, limit: number): Promise<TransactionRecord[]> {
    try {
      const { rows } = await this.#pool.query<Row>(
        `WITH due AS (
           SELECT id FROM messages WHERE fallback_at <= $1 AND fallback_due_at IS NULL AND status IN ('queued', 'sent') AND expires_at > $1
           ORDER BY fallback_at LIMIT $2 FOR UPDATE SKIP LOCKED
         ), fell AS (
           UPDATE messages m SET fallback_due_at = $1 FROM due WHERE m.id = due.id RETURNING m.*
         )
         INSERT INTO transactions AS t (${LOG_COLUMNS})
         SELECT vgw_uuid_v7($1), $1, vin, market, 'down', 'MESSAGE', type, id::text, NULL, (extract(epoch FROM created_at) * 1000)::int8,
           ttl_seconds, attributes, NULL, NULL, 'fallback_due', NULL, NULL,
           jsonb_strip_nulls(jsonb_build_object('messageStatus', status, 'fallbackAt', fallback_at, 'expiresAt', expires_at, 'campaignId', campaign_id))
         FROM fell ${LOG_RETURNING}`, [now, limit])
      this.#committed.emit(leavesOf(rows))
      return rows.map(fromRow)
    } catch (err) {
      throw translateError(err)
    }
  }

  async get (id: string): Promise<MessageRow | null> {
    try {
      const { rows } = await this.#pool.query<MessageRow>(`SELECT ${MESSAGE_COLUMNS} FROM messages WHERE id = $1`, [id])
      return rows[0] ?? null
    } catch (err) {
      throw translateError(err)
    }
  }

  /** The message's transitions from the log, oldest first. */
  async history (vin: string, id: string): Promise<TransactionRecord[]> {
    try {
      const { rows } = await this.#pool.query<Row>(
        `SELECT * FROM transactions WHERE vin = $1 AND message_id = $2 AND direction = 'down' ORDER BY occurred_at, id`, [vin, id])
      return rows.map(fromRow)
    } catch (err) {
      throw translateError(err)
    }
  }

  async vehicleSummary (vin: string, now: Date): Promise<{ pending: number, lastDeliveryAt: Date | null }> {
    try {
      const { rows } = await this.#pool.query<{ pending: number, last: Date | null }>(
        `SELECT (SELECT count(*)::int FROM messages WHERE vin = $1 AND status IN ('queued', 'sent') AND expires_at > $2) AS pending,
                (SELECT max(delivered_at) FROM messages WHERE vin = $1) AS last`, [vin, now])
      return { pending: rows[0]?.pending ?? 0, lastDeliveryAt: rows[0]?.last ?? null }
    } catch (err) {
      throw translateError(err)
    }
  }
}
