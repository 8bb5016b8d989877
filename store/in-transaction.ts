import type pg from 'pg'
import { translateError } from './store-errors.ts'

/** Runs `fn` in one transaction on a pooled connection; rolls back and translates any error. */
export async function inTransaction<T> (pool: pg.Pool, fn: (client: pg.PoolClient) => Promise<T>): Promise<T> {
  let client: pg.PoolClient
  try {
    client = await pool.connect()
  } catch (err) {
    throw translateError(err)
  }
  let broken: Error | undefined
  try {
    await client.query('BEGIN')
    const result = await fn(client)
    await client.query('COMMIT')
    return result
  } catch (err) {
    // A connection whose ROLLBACK fails is discarded, never handed back mid-transaction.
    await client.query('ROLLBACK').catch((rollbackErr: unknown) => {
      broken = rollbackErr instanceof Error ? rollbackErr : new Error(String(rollbackErr))
    })
    throw translateError(err)
  } finally {
    client.release(broken)
  }
}
