import type pg from 'pg'
import type { FeedItem, FeedPosition } from './feed-repository.ts'
import { EVENT_ATTRIBUTES_SQL } from './event-columns.ts'
import { translateError } from './store-errors.ts'
import { fromRow, type Row } from './transaction-rows.ts'

/** The batch a webhook is delivering: the feed range (cursor, end], re-read on every attempt. */
export interface WebhookBatch {
  end: FeedPosition
  deliveryId: string
  attempts: number
  firstAttemptAt: Date | null
  lastError: string | null
}

export interface Webhook {
  id: string
  url: string
  /** Event names delivered; empty: all. */
  events: string[]
  /** Whether events carry their payload (within VGW_EVENT_PAYLOAD_MAX_BYTES). */
  includePayload: boolean
  createdAt: Date
  /** Everything up to here was delivered (or dead-lettered). */
  cursor: FeedPosition
  batch: WebhookBatch | null
  nextAttemptAt: Date
  /** Dead letters kept for this webhook (in list and get only). */
  failureCount?: number
}

/** A webhook this gateway holds the lease of: only it delivers until the lease ends or is given back. */
export interface LeasedWebhook extends Webhook {
  secret: string
  leaseToken: string
  /** An operator asked to replay one of its dead letters. */
  replayPending: boolean
}

export interface NewWebhook {
  id: string
  url: string
  events: string[]
  includePayload: boolean
  secret: string
  createdAt: Date
  /** Deliver the events after this feed position; null: from now on. */
  after: FeedPosition | null
}

export interface WebhookFailure {
  id: string
  webhookId: string
  deliveryId: string
  /** The batch is the feed range (from, to]. */
  from: FeedPosition
  to: FeedPosition
  eventCount: number
  attempts: number
  lastError: string | null
  failedAt: Date
  replayRequestedAt: Date | null
  replayedAt: Date | null
}

interface WebhookDbRow {
  id: string
  url: string
  events: string[]
  include_payload: boolean
  secret: string
  created_at: Date
  cursor_xid: string
  cursor_id: string
  batch_end_xid: string | null
  batch_end_id: string | null
  delivery_id: string | null
  attempts: number
  first_attempt_at: Date | null
  last_error: string | null
  next_attempt_at: Date
  lease_token: string | null
  failure_count?: number
  replay_pending?: boolean
}

interface FailureDbRow {
  id: string
  webhook_id: string
  delivery_id: string
  from_xid: string
  from_id: string
  to_xid: string
  to_id: string
  event_count: number
  attempts: number
  last_error: string | null
  failed_at: Date
  replay_requested_at: Date | null
  replayed_at: Date | null
}

const COLUMNS = `id, url, events, include_payload, secret, created_at, cursor_xid::text AS cursor_xid, cursor_id, batch_end_xid::text AS batch_end_xid,
  batch_end_id, delivery_id, attempts, first_attempt_at, last_error, next_attempt_at, lease_token`
const FAILURE_COLUMNS = `id, webhook_id, delivery_id, from_xid::text AS from_xid, from_id, to_xid::text AS to_xid, to_id, event_count,
  attempts, last_error, failed_at, replay_requested_at, replayed_at`
const LOG_READ_COLUMNS = `id, occurred_at, received_at, vin, market, direction, kind, type, message_id, correlation_id, created_at_ms,
  ttl_seconds, ${EVENT_ATTRIBUTES_SQL}, ack_status, ack_reason, status, error_code,
  CASE WHEN octet_length(raw) <= $6::int THEN raw END AS raw, CASE WHEN $6::int IS NOT NULL THEN octet_length(raw) END AS raw_bytes, details, xid::text AS xid`
const ZERO_ID = '00000000-0000-0000-0000-000000000000'

// What a finished batch (delivered or dead-lettered) leaves: the cursor at its end, no batch, no lease.
const ADVANCE_SET = `cursor_xid = $3::xid8, cursor_id = $4::uuid, batch_end_xid = NULL, batch_end_id = NULL, delivery_id = NULL,
  attempts = 0, first_attempt_at = NULL, last_error = NULL, next_attempt_at = $5,
  lease_token = CASE WHEN $6::timestamptz IS NULL THEN NULL ELSE lease_token END, lease_until = $6::timestamptz`

function webhookOf (r: WebhookDbRow): Webhook {
  const batch = r.batch_end_xid !== null && r.batch_end_id !== null && r.delivery_id !== null
    ? { end: { xid: r.batch_end_xid, id: r.batch_end_id }, deliveryId: r.delivery_id, attempts: r.attempts, firstAttemptAt: r.first_attempt_at, lastError: r.last_error }
    : null
  return {
    id: r.id,
    url: r.url,
    events: r.events,
    includePayload: r.include_payload,
    createdAt: r.created_at,
    cursor: { xid: r.cursor_xid, id: r.cursor_id },
    batch,
    nextAttemptAt: r.next_attempt_at,
    ...(r.failure_count !== undefined ? { failureCount: r.failure_count } : {})
  }
}

function failureOf (r: FailureDbRow): WebhookFailure {
  return {
    id: r.id,
    webhookId: r.webhook_id,
    deliveryId: r.delivery_id,
    from: { xid: r.from_xid, id: r.from_id },
    to: { xid: r.to_xid, id: r.to_id },
    eventCount: r.event_count,
    attempts: r.attempts,
    lastError: r.last_error,
    failedAt: r.failed_at,
    replayRequestedAt: r.replay_requested_at,
    replayedAt: r.replayed_at
  }
}

/**
 * Webhooks and their delivery state (README, "Integrating a backend"), on the API pool. Every
 * change a delivering gateway makes is fenced by its lease token: a gateway whose lease ran out
 * (and was taken over) changes nothing.
 */
export class WebhookRepository {
  readonly #pool: pg.Pool

  constructor (pool: pg.Pool) {
    this.#pool = pool
  }

  async #query<R extends pg.QueryResultRow> (sql: string, params: unknown[]): Promise<pg.QueryResult<R>> {
    try {
      return await this.#pool.query<R>(sql, params)
    } catch (err) {
      throw translateError(err)
    }
  }

  /** Without `after`, the cursor starts below every transaction still running: nothing committed from now on is missed. */
  async create (w: NewWebhook): Promise<Webhook> {
    const { rows } = await this.#query<WebhookDbRow>(`
      INSERT INTO webhooks (id, url, events, secret, created_at, cursor_xid, cursor_id, next_attempt_at, include_payload)
      VALUES ($1, $2, $3, $4, $5, COALESCE($6::xid8, pg_snapshot_xmin(pg_current_snapshot())), $7, $5, $8)
      RETURNING ${COLUMNS}`,
    [w.id, w.url, w.events, w.secret, w.createdAt, w.after?.xid ?? null, w.after?.id ?? ZERO_ID, w.includePayload])
    return webhookOf(rows[0] as WebhookDbRow)
  }

  async list (): Promise<Webhook[]> {
    const { rows } = await this.#query<WebhookDbRow>(`SELECT ${COLUMNS},
      (SELECT count(*)::int FROM webhook_failures f WHERE f.webhook_id = webhooks.id) AS failure_count
      FROM webhooks ORDER BY created_at, id`, [])
    return rows.map(webhookOf)
  }

  async get (id: string): Promise<Webhook | null> {
    const { rows } = await this.#query<WebhookDbRow>(`SELECT ${COLUMNS},
      (SELECT count(*)::int FROM webhook_failures f WHERE f.webhook_id = webhooks.id) AS failure_count
      FROM webhooks WHERE id = $1`, [id])
    const row = rows[0]
    return row === undefined ? null : webhookOf(row)
  }

  async remove (id: string): Promise<boolean> {
    const { rowCount } = await this.#query('DELETE FROM webhooks WHERE id = $1', [id])
    return (rowCount ?? 0) > 0
  }

  /**
   * Leases up to `limit` webhooks that are due and not leased (or whose lease ran out: its gateway
   * died). A short statement: SKIP LOCKED keeps two gateways from leasing the same row. With
   * `wake`, webhooks without a batch in progress (caught up) are due whatever their next poll.
   */
  async lease (q: { now: Date, until: Date, limit: number, token: string, wake: boolean }): Promise<LeasedWebhook[]> {
    const { rows } = await this.#query<WebhookDbRow>(`
      UPDATE webhooks SET lease_token = $1, lease_until = $2
      WHERE id IN (SELECT id FROM webhooks WHERE (next_attempt_at <= $3 OR ($5 AND batch_end_xid IS NULL))
        AND (lease_until IS NULL OR lease_until < $3)
        ORDER BY next_attempt_at LIMIT $4 FOR UPDATE SKIP LOCKED)
      RETURNING ${COLUMNS}, EXISTS (SELECT 1 FROM webhook_failures f WHERE f.webhook_id = webhooks.id AND f.replay_requested_at IS NOT NULL) AS replay_pending`,
    [q.token, q.until, q.now, q.limit, q.wake])
    return rows.map((r) => ({ ...webhookOf(r), secret: r.secret, leaseToken: q.token, replayPending: r.replay_pending === true }))
  }

  /** Records the batch before its first attempt, so every retry (on any gateway) sends the same range with the same delivery id. */
  async startBatch (w: LeasedWebhook, batch: { end: FeedPosition, deliveryId: string, at: Date }): Promise<boolean> {
    const { rowCount } = await this.#query(`UPDATE webhooks SET batch_end_xid = $3::xid8, batch_end_id = $4::uuid, delivery_id = $5,
      attempts = 0, first_attempt_at = $6, last_error = NULL WHERE id = $1 AND lease_token = $2`,
    [w.id, w.leaseToken, batch.end.xid, batch.end.id, batch.deliveryId, batch.at])
    return (rowCount ?? 0) > 0
  }

  /**
   * The batch was delivered (or had nothing to deliver): the cursor moves to `to`. The lease is
   * renewed until `leaseUntil`, or ends when it is null.
   */
  async advance (w: LeasedWebhook, to: FeedPosition, nextAttemptAt: Date, leaseUntil: Date | null): Promise<boolean> {
    const { rowCount } = await this.#query(`UPDATE webhooks SET ${ADVANCE_SET} WHERE id = $1 AND lease_token = $2`,
      [w.id, w.leaseToken, to.xid, to.id, nextAttemptAt, leaseUntil])
    return (rowCount ?? 0) > 0
  }

  /** An attempt failed: try again at `nextAttemptAt`, on whichever gateway leases it then. */
  async retryLater (w: LeasedWebhook, attempts: number, error: string, nextAttemptAt: Date): Promise<boolean> {
    const { rowCount } = await this.#query(`UPDATE webhooks SET attempts = $3, last_error = $4, next_attempt_at = $5,
      lease_token = NULL, lease_until = NULL WHERE id = $1 AND lease_token = $2`, [w.id, w.leaseToken, attempts, error, nextAttemptAt])
    return (rowCount ?? 0) > 0
  }

  /** Gives the lease back unchanged (a gateway shutting down mid-attempt). */
  async release (w: LeasedWebhook): Promise<void> {
    await this.#query('UPDATE webhooks SET lease_token = NULL, lease_until = NULL WHERE id = $1 AND lease_token = $2', [w.id, w.leaseToken])
  }

  /** The retry period is over: the batch becomes a dead letter and the cursor moves past it, in one statement. */
  async deadLetter (w: LeasedWebhook, f: { id: string, eventCount: number, attempts: number, lastError: string, at: Date }, nextAttemptAt: Date): Promise<boolean> {
    if (w.batch === null) return false
    const { rowCount } = await this.#query(`
      WITH moved AS (UPDATE webhooks SET ${ADVANCE_SET} WHERE id = $1 AND lease_token = $2 RETURNING id)
      INSERT INTO webhook_failures (id, webhook_id, delivery_id, from_xid, from_id, to_xid, to_id, event_count, attempts, last_error, failed_at)
      SELECT $7, moved.id, $8, $9::xid8, $10::uuid, $3::xid8, $4::uuid, $11, $12, $13, $14 FROM moved`,
    [w.id, w.leaseToken, w.batch.end.xid, w.batch.end.id, nextAttemptAt, null, f.id, w.batch.deliveryId, w.cursor.xid, w.cursor.id,
      f.eventCount, f.attempts, f.lastError, f.at])
    return (rowCount ?? 0) > 0
  }

  async failures (webhookId: string, limit: number): Promise<WebhookFailure[]> {
    const { rows } = await this.#query<FailureDbRow>(`SELECT ${FAILURE_COLUMNS} FROM webhook_failures
      WHERE webhook_id = $1 ORDER BY failed_at DESC, id DESC LIMIT $2`, [webhookId, limit])
    return rows.map(failureOf)
  }

  /** Asks for one more attempt at a dead letter; its webhook becomes due at once. False: no such failure. */
  async requestReplay (webhookId: string, failureId: string, now: Date): Promise<WebhookFailure | null> {
    const { rows } = await this.#query<FailureDbRow>(`
      WITH wake AS (UPDATE webhooks SET next_attempt_at = LEAST(next_attempt_at, $3) WHERE id = $1 RETURNING id)
      UPDATE webhook_failures SET replay_requested_at = $3 WHERE id = $2 AND webhook_id IN (SELECT id FROM wake)
      RETURNING ${FAILURE_COLUMNS}`, [webhookId, failureId, now])
    const row = rows[0]
    return row === undefined ? null : failureOf(row)
  }

  /** The oldest dead letter of this webhook an operator asked to replay. */
  async nextReplay (webhookId: string): Promise<WebhookFailure | null> {
    const { rows } = await this.#query<FailureDbRow>(`SELECT ${FAILURE_COLUMNS} FROM webhook_failures
      WHERE webhook_id = $1 AND replay_requested_at IS NOT NULL ORDER BY failed_at, id LIMIT 1`, [webhookId])
    const row = rows[0]
    return row === undefined ? null : failureOf(row)
  }

  /** A replay is one attempt: delivered, or back on the list with its error. */
  async replayed (failureId: string, result: { ok: true, at: Date } | { ok: false, error: string }): Promise<void> {
    if (result.ok) {
      await this.#query('UPDATE webhook_failures SET replay_requested_at = NULL, replayed_at = $2, last_error = NULL WHERE id = $1', [failureId, result.at])
    } else {
      await this.#query('UPDATE webhook_failures SET replay_requested_at = NULL, attempts = attempts + 1, last_error = $2 WHERE id = $1', [failureId, result.error])
    }
  }

  /**
   * The log rows of the feed range (from, to], in feed order, without raw bytes. Every row of it
   * was below the feed's horizon when the range was cut, so the same rows come back each time
   * (less any that retention removed since).
   */
  /** The feed range (from, to], as the feed reads it (summaries; raw bytes up to payloadMaxBytes when given). */
  async readRange (from: FeedPosition, to: FeedPosition, limit: number, payloadMaxBytes?: number): Promise<FeedItem[]> {
    const { rows } = await this.#query<Row & { raw_bytes: number | null }>(`SELECT ${LOG_READ_COLUMNS} FROM transactions
      WHERE xid >= $1::xid8 AND xid <= $3::xid8 AND (xid, id) > ($1::xid8, $2::uuid) AND (xid, id) <= ($3::xid8, $4::uuid)
      ORDER BY xid, id LIMIT $5`, [from.xid, from.id, to.xid, to.id, limit, payloadMaxBytes ?? null])
    return rows.map((r) => payloadMaxBytes === undefined ? fromRow(r) : { ...fromRow(r), rawBytes: r.raw_bytes })
  }
}
