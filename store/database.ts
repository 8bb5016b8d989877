import pg from 'pg'
import { drizzle, type NodePgDatabase } from 'drizzle-orm/node-postgres'
import type { Logger } from 'pino'

export interface DatabaseOptions {
  url: string
  /** Names the pool in pg_stat_activity (application_name `vgw-<name>`) and in pool statistics. */
  name?: string
  /** Pool size. */
  maxConnections?: number
  /**
   * Bounds every statement, so a half-open connection cannot stall a batch forever; 0 turns
   * the server-side bound off (the export pool bounds each fetch itself instead).
   */
  statementTimeoutMs?: number
  /** Client-side bound on one query's answer; defaults to the statement timeout plus 2 s; 0: none. */
  queryTimeoutMs?: number
  /**
   * Server-side backstop: a session left idle inside a transaction (a client that went away
   * mid-cursor, a bug that forgot ROLLBACK) is ended by PostgreSQL after this long, so it
   * can never hold a pooled connection for good (docs/architecture.md, "Bulkheads").
   */
  idleInTransactionTimeoutMs?: number
  connectTimeoutMs?: number
  logger?: Logger
  /** The role every pooled connection works as (SET ROLE); the owner's rights stay with migrations and retention. */
  role?: string
}

/** The role the gateway's pool works as: it may only append to the transaction log (migration 0005). */
export const APP_ROLE = 'vgw_app'

export interface Database {
  readonly name: string
  readonly pool: pg.Pool
  readonly orm: NodePgDatabase
  close(): Promise<void>
}

// Timestamps come back as Date (default); bigint (int8) as number: our int8
// columns hold epoch milliseconds, far below 2^53.
pg.types.setTypeParser(pg.types.builtins.INT8, (v) => Number(v))

export const DEFAULT_STATEMENT_TIMEOUT_MS = 15_000
export const DEFAULT_IDLE_IN_TRANSACTION_TIMEOUT_MS = 60_000

export function openDatabase (opts: DatabaseOptions): Database {
  const name = opts.name ?? 'main'
  const statementTimeout = opts.statementTimeoutMs ?? DEFAULT_STATEMENT_TIMEOUT_MS
  const queryTimeout = opts.queryTimeoutMs ?? (statementTimeout === 0 ? 0 : statementTimeout + 2000)
  const pool = new pg.Pool({
    connectionString: opts.url,
    // The role is set in the startup packet, so not one statement runs with the owner's rights.
    ...(opts.role !== undefined ? { options: `-c role=${opts.role}` } : {}),
    max: opts.maxConnections ?? 10,
    connectionTimeoutMillis: opts.connectTimeoutMs ?? 5000,
    ...(statementTimeout > 0 ? { statement_timeout: statementTimeout } : {}),
    ...(queryTimeout > 0 ? { query_timeout: queryTimeout } : {}),
    idle_in_transaction_session_timeout: opts.idleInTransactionTimeoutMs ?? DEFAULT_IDLE_IN_TRANSACTION_TIMEOUT_MS,
    keepAlive: true,
    application_name: `vgw-${name}`
  })
  // An idle client that loses its server emits here; without a listener the process would crash.
  pool.on('error', (err) => { opts.logger?.warn({ err, pool: name }, 'database connection lost') })
  const orm = drizzle({ client: pool })
  let closed = false
  return {
    name,
    pool,
    orm,
    async close () {
      if (closed) return
      closed = true
      await pool.end()
    }
  }
}
