import pg from 'pg'
import { drizzle, type NodePgDatabase } from 'drizzle-orm/node-postgres'
import type { Logger } from 'pino'

export interface DatabaseOptions {
  url: string
  /** Pool size. */
  maxConnections?: number
  /** Bounds every statement, so a half-open connection cannot stall a batch forever. */
  statementTimeoutMs?: number
  connectTimeoutMs?: number
  logger?: Logger
  /** The role every pooled connection works as (SET ROLE); the owner's rights stay with migrations and retention. */
  role?: string
}

/** The role the gateway's pool works as: it may only append to the transaction log (migration 0005). */
export const APP_ROLE = 'vgw_app'

export interface Database {
  readonly pool: pg.Pool
  readonly orm: NodePgDatabase
  close(): Promise<void>
}

// Timestamps come back as Date (default); bigint (int8) as number: our int8
// columns hold epoch milliseconds, far below 2^53.
pg.types.setTypeParser(pg.types.builtins.INT8, (v) => Number(v))

export function openDatabase (opts: DatabaseOptions): Database {
  const pool = new pg.Pool({
    connectionString: opts.url,
    // The role is set in the startup packet, so not one statement runs with the owner's rights.
    ...(opts.role !== undefined ? { options: `-c role=${opts.role}` } : {}),
    max: opts.maxConnections ?? 10,
    connectionTimeoutMillis: opts.connectTimeoutMs ?? 5000,
    statement_timeout: opts.statementTimeoutMs ?? 15000,
    query_timeout: (opts.statementTimeoutMs ?? 15000) + 2000,
    keepAlive: true,
    application_name: 'vgw'
  })
  // An idle client that loses its server emits here; without a listener the process would crash.
  pool.on('error', (err) => { opts.logger?.warn({ err }, 'database connection lost') })
  const orm = drizzle({ client: pool })
  let closed = false
  return {
    pool,
    orm,
    async close () {
      if (closed) return
      closed = true
      await pool.end()
    }
  }
}
