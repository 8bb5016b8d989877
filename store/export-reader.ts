import type pg from 'pg'
import QueryStream from 'pg-query-stream'
import { translateError } from './store-errors.ts'
import type { TransactionRecord } from './transaction-log.ts'
import { fromRow, type Row } from './transaction-rows.ts'

/** Streams one vehicle's log over a time range, oldest first, through a server-side cursor: constant memory for any size. */
export class ExportReader {
  readonly #pool: pg.Pool

  constructor (pool: pg.Pool) {
    this.#pool = pool
  }

  async * rows (vin: string, from: Date, to: Date): AsyncGenerator<TransactionRecord> {
    let client: pg.PoolClient
    try {
      client = await this.#pool.connect()
    } catch (err) {
      throw translateError(err)
    }
    try {
      // A repeatable-read snapshot: the export is one consistent picture even while vehicles keep publishing.
      await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY')
      const stream = client.query(new QueryStream(
        'SELECT * FROM transactions WHERE vin = $1 AND occurred_at >= $2 AND occurred_at < $3 ORDER BY occurred_at, id', [vin, from, to], { batchSize: 500 }))
      for await (const row of stream) yield fromRow(row as Row)
      await client.query('COMMIT')
    } catch (err) {
      await client.query('ROLLBACK').catch(() => undefined)
      throw translateError(err)
    } finally {
      client.release()
    }
  }
}
