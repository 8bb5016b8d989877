import type pg from 'pg'
import { translateError } from './store-errors.ts'
import type { TransactionRecord } from './transaction-log.ts'
import { fromRow, type Row } from './transaction-rows.ts'

/** Rows per FETCH: each fetch is one statement, so the pool's statement timeout bounds it. */
const FETCH_ROWS = 500

/**
 * Streams one vehicle's log over a time range, oldest first, through a server-side cursor:
 * constant memory and no time limit for any size (docs/architecture.md, "Bulkheads").
 *
 * The cursor is a SQL cursor read with one FETCH statement per batch rather than an
 * extended-protocol portal: a portal stays one statement until its Sync, so the statement
 * timeout and pg's query_timeout would cut a long export, while a FETCH is a statement of
 * its own and each is bounded by them.
 */
export class ExportReader {
  readonly #pool: pg.Pool

  constructor (pool: pg.Pool) {
    this.#pool = pool
  }

  /**
   * Every early exit (a consumer that stops iterating, an error, `signal` aborted) rolls
   * the transaction back and returns the connection; one whose ROLLBACK fails or whose
   * session died is destroyed instead of going back to the pool.
   */
  async * rows (vin: string, from: Date, to: Date, signal?: AbortSignal): AsyncGenerator<TransactionRecord> {
    let client: pg.PoolClient
    try {
      client = await this.#pool.connect()
    } catch (err) {
      throw translateError(err)
    }
    // A checked-out client has no error listener of the pool's: without ours, a session the
    // server ends between two fetches (idle-in-transaction timeout) would crash the process.
    let broken: Error | undefined
    const onError = (err: Error): void => { broken = err }
    client.on('error', onError)
    let committed = false
    try {
      // A repeatable-read snapshot: the export is one consistent picture even while vehicles keep publishing.
      await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY')
      await client.query('DECLARE export_rows NO SCROLL CURSOR FOR SELECT * FROM transactions WHERE vin = $1 AND occurred_at >= $2 AND occurred_at < $3 ORDER BY occurred_at, id', [vin, from, to])
      for (;;) {
        signal?.throwIfAborted()
        const batch = await client.query<Row>(`FETCH ${FETCH_ROWS} FROM export_rows`)
        for (const row of batch.rows) yield fromRow(row)
        if (batch.rows.length < FETCH_ROWS) break
      }
      await client.query('COMMIT')
      committed = true
    } catch (err) {
      throw signal?.aborted === true && err === signal.reason ? err : translateError(err)
    } finally {
      if (!committed && broken === undefined) {
        await client.query('ROLLBACK').catch((err: unknown) => { broken = err instanceof Error ? err : new Error(String(err)) })
      }
      client.off('error', onError)
      client.release(broken)
    }
  }
}
