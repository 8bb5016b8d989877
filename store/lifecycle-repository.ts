import pg from 'pg'
import { GatewayError } from '../protocol/index.ts'
import { actorArgs, type Actor } from './actor.ts'
import { translateError } from './store-errors.ts'

export interface RetentionPolicy {
  market: string
  retentionDays: number
  updatedAt: Date
}

export interface LegalHold {
  id: string
  vin: string
  reason: string
  createdAt: Date
  createdBy: string
  releasedAt: Date | null
  releasedBy: string | null
  releaseReason: string | null
}

export interface AuditEntry {
  id: string
  at: Date
  actor: string
  action: string
  details: Record<string, unknown>
}

export interface RetentionReport {
  ranAt: string
  policies: Record<string, number>
  heldVins: string[]
  droppedPartitions: Array<{ name: string, rows: number }>
  deletedRows: Record<string, number>
  totalRemoved: number
  durationMs: number
  skipped?: string
}

const PARTITION_NAME = /^transactions_y(\d{4})m(\d{2})$/
const RETENTION_LOCK = 7_733_002
/**
 * Taken by a hold being added (for its transaction, inside vgw_add_hold of migration 0013, which
 * names the same number) and by retention around each hold check and
 * the removal it allows (a partition's detach and drop, or one batch of deletes), so both see the
 * same holds: a hold that committed is seen by every removal after it (README, "Data lifecycle").
 */
const HOLD_LOCK = 7_733_003
const DAY_MS = 24 * 3600_000
const HOLD_COLUMNS = `id, vin, reason, created_at AS "createdAt", created_by AS "createdBy", released_at AS "releasedAt",
  released_by AS "releasedBy", release_reason AS "releaseReason"`
const HELD = 'EXISTS (SELECT 1 FROM legal_holds h WHERE h.vin = x.vin AND h.released_at IS NULL)'

interface Month { name: string, start: number, end: number }

function monthOf (name: string): Month | null {
  const m = PARTITION_NAME.exec(name)
  if (m === null) return null
  return { name, start: Date.UTC(Number(m[1]), Number(m[2]) - 1, 1), end: Date.UTC(Number(m[1]), Number(m[2]), 1) }
}

/** Retention per market as it applies: the policy (or the default's), never below the floor in server configuration. */
export function effectiveRetention (policies: Record<string, number>, floors: Record<string, number>): Record<string, number> {
  const days = (market: string): number => Math.max(policies[market] ?? policies['*'] ?? 3650, floors[market] ?? floors['*'] ?? 0)
  const markets = new Set(['*', ...Object.keys(policies), ...Object.keys(floors)])
  return Object.fromEntries([...markets].sort().map((m) => [m, days(m)]))
}

/**
 * Retention policies, legal holds, the audit trail, and the retention run itself. Policies and
 * the run work on a connection of their own with the owner's rights (DATABASE_URL): the pool's
 * role may only append to the log and read the policies.
 */
export class LifecycleRepository {
  readonly #pool: pg.Pool
  readonly #ownerUrl: string
  readonly #newId: () => string
  readonly #floors: Record<string, number>

  constructor (pool: pg.Pool, ownerUrl: string, newId: () => string, floors: Record<string, number> = {}) {
    this.#pool = pool
    this.#ownerUrl = ownerUrl
    this.#newId = newId
    this.#floors = floors
  }

  async #q<R extends pg.QueryResultRow> (sql: string, params: unknown[] = []): Promise<R[]> {
    try {
      return (await this.#pool.query<R>(sql, params)).rows
    } catch (err) {
      throw translateError(err)
    }
  }

  async #asOwner<T> (fn: (owner: pg.Client) => Promise<T>): Promise<T> {
    const owner = new pg.Client({ connectionString: this.#ownerUrl, statement_timeout: 0 })
    try {
      await owner.connect()
    } catch (err) {
      await owner.end().catch(() => undefined)
      throw translateError(err)
    }
    try {
      return await fn(owner)
    } catch (err) {
      await owner.query('ROLLBACK').catch(() => undefined)
      throw translateError(err)
    } finally {
      await owner.end().catch(() => undefined)
    }
  }

  /** The retention floors from server configuration, in days per market (`*`: every other). */
  floors (): Record<string, number> {
    return { ...this.#floors }
  }

  async policies (): Promise<RetentionPolicy[]> {
    return await this.#q<RetentionPolicy>('SELECT market, retention_days AS "retentionDays", updated_at AS "updatedAt" FROM retention_policies ORDER BY market')
  }

  /**
   * Sets a market's period with the owner's rights, audited as retention.set in the same
   * transaction; a period below the market's floor is refused (GW_ERR_RETENTION_FLOOR).
   */
  async setPolicy (market: string, retentionDays: number, by: Actor): Promise<void> {
    const floor = this.#floors[market] ?? this.#floors['*'] ?? 0
    if (retentionDays < floor) {
      throw new GatewayError('GW_ERR_RETENTION_FLOOR', `${market === '*' ? 'default' : market}: ${retentionDays} days is below the floor of ${floor} days set in server configuration (VGW_RETENTION_FLOOR)`)
    }
    await this.#asOwner(async (owner) => {
      await owner.query('BEGIN')
      await owner.query(`INSERT INTO retention_policies (market, retention_days, updated_at) VALUES ($1, $2, now())
        ON CONFLICT (market) DO UPDATE SET retention_days = excluded.retention_days, updated_at = excluded.updated_at`, [market, retentionDays])
      await owner.query("INSERT INTO audit_log (actor, action, details) VALUES (vgw_actor($1, $2), 'retention.set', $3)", [...actorArgs(by), JSON.stringify({ market, retentionDays })])
      await owner.query('COMMIT')
    })
  }

  /**
   * Puts a vehicle under hold through the owner-run vgw_add_hold (migration 0013): created now,
   * by the database's clock, audited as hold.add, under HOLD_LOCK for its transaction (retention
   * takes the same lock around each hold check and the removal it allows).
   */
  async addHold (vin: string, reason: string, by: Actor): Promise<LegalHold> {
    return (await this.#q<LegalHold>(`SELECT ${HOLD_COLUMNS} FROM vgw_add_hold($1, $2, $3, $4, $5)`, [this.#newId(), vin, reason, ...actorArgs(by)]))[0] as LegalHold
  }

  /** Releases every active hold of the vehicle, now, audited as hold.release (vgw_release_holds); returns how many. */
  async releaseHolds (vin: string, reason: string, by: Actor): Promise<number> {
    return (await this.#q('SELECT id FROM vgw_release_holds($1, $2, $3, $4) AS id', [vin, reason, ...actorArgs(by)])).length
  }

  async holds (activeOnly: boolean): Promise<LegalHold[]> {
    return await this.#q<LegalHold>(`SELECT ${HOLD_COLUMNS} FROM legal_holds ${activeOnly ? 'WHERE released_at IS NULL' : ''} ORDER BY created_at`)
  }

  /**
   * An audit entry other than a key's, a hold's or retention's (those are written by their own
   * paths): through the owner-run vgw_audit, at the database's time; returns that time.
   */
  async audit (by: Actor, action: string, details: Record<string, unknown>): Promise<Date> {
    const rows = await this.#q<{ at: Date }>('SELECT vgw_audit($1, $2, $3, $4) AS at', [action, JSON.stringify(details), ...actorArgs(by)])
    return rows[0]?.at as Date
  }

  async auditTrail (limit: number, action?: string): Promise<AuditEntry[]> {
    return await this.#q<AuditEntry>(`SELECT id, at, actor, action, details FROM audit_log ${action !== undefined ? 'WHERE action = $2' : ''} ORDER BY at DESC, id DESC LIMIT $1`,
      action !== undefined ? [limit, action] : [limit])
  }

  /**
   * Removes what is past its market's retention period (never below the floor), except rows of
   * vehicles under legal hold. A monthly partition past every market's period and holding no
   * held vehicle's rows is detached concurrently and dropped; elsewhere rows go in bounded
   * batches, each its own short transaction. A detach or drop that an earlier run left
   * unfinished is finished first. Writes one audit record.
   */
  async runRetention (now: Date, by: Actor, batchSize = 5000): Promise<RetentionReport> {
    const started = performance.now()
    return await this.#asOwner(async (owner) => {
      // One run at a time across every gateway of a cluster.
      const locked = await owner.query<{ ok: boolean }>('SELECT pg_try_advisory_lock($1) AS ok', [RETENTION_LOCK])
      if (locked.rows[0]?.ok !== true) {
        return { ranAt: now.toISOString(), policies: {}, heldVins: [], droppedPartitions: [], deletedRows: {}, totalRemoved: 0, durationMs: 0, skipped: 'another retention run holds the lock' }
      }
      const policyRows = await owner.query<{ market: string, retention_days: number }>('SELECT market, retention_days FROM retention_policies')
      const policies = effectiveRetention(Object.fromEntries(policyRows.rows.map((r) => [r.market, r.retention_days])), this.#floors)
      const held = (await owner.query<{ vin: string }>('SELECT DISTINCT vin FROM legal_holds WHERE released_at IS NULL ORDER BY vin')).rows.map((r) => r.vin)
      const oldestKept = now.getTime() - Math.max(...Object.values(policies)) * DAY_MS
      const droppedPartitions: RetentionReport['droppedPartitions'] = []
      await this.#finishInterrupted(owner, oldestKept, droppedPartitions)
      const deletedRows: Record<string, number> = {}
      for (const month of await this.#partitions(owner)) {
        if (month.start >= now.getTime() - Math.min(...Object.values(policies)) * DAY_MS) continue // nothing in it is old enough for any market
        if (month.end <= oldestKept) {
          const rows = await this.#dropUnlessHeld(owner, month)
          if (rows !== null) {
            droppedPartitions.push({ name: month.name, rows })
            continue
          }
        }
        await this.#deleteExpired(owner, month.name, now, policies, batchSize, deletedRows)
      }
      const totalRemoved = droppedPartitions.reduce((s, p) => s + p.rows, 0) + Object.values(deletedRows).reduce((s, n) => s + n, 0)
      const report: RetentionReport = {
        ranAt: now.toISOString(), policies, heldVins: held, droppedPartitions, deletedRows, totalRemoved, durationMs: Math.round(performance.now() - started)
      }
      // The row's time is the database's (a trigger sets it); `ranAt` in the report is the run's own `now`.
      await owner.query("INSERT INTO audit_log (actor, action, details) VALUES (vgw_actor($1, $2), 'retention.run', $3)", [...actorArgs(by), JSON.stringify(report)])
      return report
    })
  }

  async #partitions (owner: pg.Client): Promise<Month[]> {
    const rows = (await owner.query<{ name: string }>(
      "SELECT c.relname AS name FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = 'transactions'::regclass ORDER BY 1")).rows
    return rows.map((r) => monthOf(r.name)).filter((m): m is Month => m !== null)
  }

  /**
   * Under HOLD_LOCK: a partition with no held vehicle's row is detached and dropped (its row
   * count returned); one with such a row is left (null). The lock is a session lock because
   * DETACH … CONCURRENTLY cannot run inside a transaction.
   */
  async #dropUnlessHeld (owner: pg.Client, month: Month): Promise<number | null> {
    const ident = `"${month.name}"`
    await owner.query('SELECT pg_advisory_lock($1)', [HOLD_LOCK])
    try {
      if ((await owner.query(`SELECT 1 FROM ${ident} x WHERE ${HELD} LIMIT 1`)).rowCount !== 0) return null
      const rows = (await owner.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${ident}`)).rows[0]?.n ?? 0
      await owner.query(`ALTER TABLE transactions DETACH PARTITION ${ident} CONCURRENTLY`)
      await owner.query(`DROP TABLE ${ident}`)
      return rows
    } finally {
      await owner.query('SELECT pg_advisory_unlock($1)', [HOLD_LOCK])
    }
  }

  /**
   * A run interrupted during `DETACH PARTITION … CONCURRENTLY` leaves the partition pending
   * detach (no later detach can start until it is finalized); one interrupted between detach
   * and drop leaves a table outside the log. Both are finished here: dropped when past every
   * period and free of held rows, otherwise attached again so retention treats it row by row.
   */
  async #finishInterrupted (owner: pg.Client, oldestKept: number, dropped: RetentionReport['droppedPartitions']): Promise<void> {
    const pending = (await owner.query<{ name: string }>(
      "SELECT c.relname AS name FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = 'transactions'::regclass AND i.inhdetachpending")).rows
    for (const { name } of pending) await owner.query(`ALTER TABLE transactions DETACH PARTITION "${name}" FINALIZE`)
    const loose = (await owner.query<{ name: string }>(
      `SELECT c.relname AS name FROM pg_class c WHERE c.relnamespace = 'public'::regnamespace AND c.relkind = 'r'
         AND NOT c.relispartition AND c.relname ~ '^transactions_y[0-9]{4}m[0-9]{2}$' ORDER BY 1`)).rows
    for (const { name } of loose) {
      const month = monthOf(name)
      if (month === null) continue
      const ident = `"${name}"`
      await owner.query('SELECT pg_advisory_lock($1)', [HOLD_LOCK])
      try {
        const hasHeld = (await owner.query(`SELECT 1 FROM ${ident} x WHERE ${HELD} LIMIT 1`)).rowCount !== 0
        if (month.end <= oldestKept && !hasHeld) {
          const rows = (await owner.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${ident}`)).rows[0]?.n ?? 0
          await owner.query(`DROP TABLE ${ident}`)
          dropped.push({ name, rows })
        } else {
          const [from, to] = [month.start, month.end].map((ms) => owner.escapeLiteral(new Date(ms).toISOString()))
          await owner.query(`ALTER TABLE transactions ATTACH PARTITION ${ident} FOR VALUES FROM (${from ?? ''}) TO (${to ?? ''})`)
        }
      } finally {
        await owner.query('SELECT pg_advisory_unlock($1)', [HOLD_LOCK])
      }
    }
  }

  /** Deletes expired rows of one partition in batches, each its own transaction that reads the holds under HOLD_LOCK. */
  async #deleteExpired (owner: pg.Client, name: string, now: Date, policies: Record<string, number>, batchSize: number, deletedRows: Record<string, number>): Promise<void> {
    const ident = `"${name}"`
    const markets = Object.keys(policies).filter((m) => m !== '*')
    for (;;) {
      await owner.query('BEGIN')
      await owner.query('SELECT pg_advisory_xact_lock($1)', [HOLD_LOCK])
      await owner.query("SET LOCAL vgw.retention = 'on'")
      const removed = await owner.query<{ market: string | null }>(
        `DELETE FROM ${ident} t WHERE t.ctid = ANY(ARRAY(
           SELECT x.ctid FROM ${ident} x LEFT JOIN unnest($3::text[], $4::int[]) AS p(market, days) ON p.market = x.market
           WHERE x.occurred_at < $1::timestamptz - coalesce(p.days, $2) * interval '1 day'
             AND (x.vin IS NULL OR NOT ${HELD})
           LIMIT $5))
         RETURNING t.market`, [now, policies['*'], markets, markets.map((m) => policies[m]), batchSize])
      await owner.query('COMMIT')
      for (const r of removed.rows) deletedRows[r.market ?? '*'] = (deletedRows[r.market ?? '*'] ?? 0) + 1
      if ((removed.rowCount ?? 0) < batchSize) break
    }
  }
}
