import type pg from 'pg'
import type { TransactionRecord } from './transaction-log.ts'
import { fromRow, type Row } from './transaction-rows.ts'
import { translateError } from './store-errors.ts'

/** What the trace of one downlink is built from (README, "Operating vgw"). */
export interface MessageTraceRows {
  message: { id: string, vin: string, apiKeyId: string | null, campaignId: string | null, status: string, createdAt: Date }
  /** The message's down rows and the ACK uplinks that answer it, in time order. */
  rows: TransactionRecord[]
  /** For each `sent` row (by its id): the vehicle's connect row that the PUBLISH went out on. */
  connections: Map<string, TransactionRecord>
}

/** A log row with the commit (database transaction) it was part of. */
export interface TransactionWithCommit {
  record: TransactionRecord
  commit: { xid: string, rows: number }
}

interface MessageHead { id: string, vin: string, api_key_id: string | null, campaign_id: string | null, status: string, created_at: Date }

/** Reads for operators: the metrics' database gauge and the traces. All on the API pool. */
export class OpsRepository {
  readonly #pool: pg.Pool

  constructor (pool: pg.Pool) {
    this.#pool = pool
  }

  async #query<R extends pg.QueryResultRow> (sql: string, params: unknown[]): Promise<R[]> {
    try {
      return (await this.#pool.query<R>(sql, params)).rows
    } catch (err) {
      throw translateError(err)
    }
  }

  /** Downlinks queued or sent: an index-only count over the partial index of undelivered messages. */
  async countUndelivered (): Promise<number> {
    const rows = await this.#query<{ n: string }>(`SELECT count(*) AS n FROM messages WHERE status IN ('queued', 'sent')`, [])
    return Number(rows[0]?.n ?? 0)
  }

  async messageTrace (id: string): Promise<MessageTraceRows | null> {
    const head = (await this.#query<MessageHead>('SELECT id, vin, api_key_id, campaign_id, status, created_at FROM messages WHERE id = $1', [id]))[0]
    if (head === undefined) return null
    // The ACK is an uplink of the same vehicle whose correlation id is this message's id.
    const rows = (await this.#query<Row>(
      `SELECT *, xid::text AS xid FROM transactions
        WHERE vin = $1 AND occurred_at >= $3
          AND ((direction = 'down' AND message_id = $2) OR (direction = 'up' AND correlation_id = $2))
        ORDER BY occurred_at, id LIMIT 1000`, [head.vin, id, new Date(head.created_at.getTime() - 60_000)])).map(fromRow)
    const connections = new Map<string, TransactionRecord>()
    for (const sent of rows.filter((r) => r.status === 'sent' && r.kind === 'MESSAGE')) {
      const conn = (await this.#query<Row>(
        `SELECT *, xid::text AS xid FROM transactions
          WHERE vin = $1 AND occurred_at <= $2 AND kind = 'CONNECTION' AND type = 'connect'
          ORDER BY occurred_at DESC, id DESC LIMIT 1`, [head.vin, sent.occurredAt]))[0]
      if (conn !== undefined) connections.set(sent.id, fromRow(conn))
    }
    return {
      message: { id: head.id, vin: head.vin, apiKeyId: head.api_key_id, campaignId: head.campaign_id, status: head.status, createdAt: head.created_at },
      rows,
      connections
    }
  }

  /** One row of a vehicle's log by id, with the size of the commit that stored it (rows sharing its xid). */
  async transaction (vin: string, id: string): Promise<TransactionWithCommit | null> {
    const row = (await this.#query<Row>('SELECT *, xid::text AS xid FROM transactions WHERE vin = $1 AND id = $2', [vin, id]))[0]
    if (row === undefined || row.xid === undefined) return null
    const n = await this.#query<{ n: string }>('SELECT count(*) AS n FROM transactions WHERE xid = $1::xid8', [row.xid])
    return { record: fromRow(row), commit: { xid: row.xid, rows: Number(n[0]?.n ?? 0) } }
  }
}
