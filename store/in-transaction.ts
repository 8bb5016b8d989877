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
  try {
    await client.query('BEGIN')
    const result = await fn(client)
    await client.query('COMMIT')
    return result
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined)
    throw translateError(err)
  } finally {
    client.release()
  }
}
