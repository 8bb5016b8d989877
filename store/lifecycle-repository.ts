import pg from 'pg'
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
 * Retention policies, legal holds, the audit trail, and the retention run itself. The
 * run works on a connection of its own with the owner's rights: the pool's role may
 * only append to the log.
 */
export class LifecycleRepository {
  readonly #pool: pg.Pool
  readonly #ownerUrl: string
  readonly #newId: () => string

  constructor (pool: pg.Pool, ownerUrl: string, newId: () => string) {
    this.#pool = pool
    this.#ownerUrl = ownerUrl
    this.#newId = newId
  }

  async #q<R extends pg.QueryResultRow> (sql: string, params: unknown[] = []): Promise<R[]> {
    try {
      return (await this.#pool.query<R>(sql, params)).rows
    } catch (err) {
      throw translateError(err)
    }
  }

  async policies (): Promise<RetentionPolicy[]> {
    return await this.#q<RetentionPolicy>('SELECT market, retention_days AS "retentionDays", updated_at AS "updatedAt" FROM retention_policies ORDER BY market')
  }

  async setPolicy (market: string, retentionDays: number, actor: string, at: Date): Promise<void> {
    await this.#q(`INSERT INTO retention_policies (market, retention_days, updated_at) VALUES ($1, $2, $3)
      ON CONFLICT (market) DO UPDATE SET retention_days = excluded.retention_days, updated_at = excluded.updated_at`, [market, retentionDays, at])
    await this.audit(actor, 'retention.set', { market, retentionDays }, at)
  }

  async addHold (vin: string, reason: string, actor: string, at: Date): Promise<LegalHold> {
    const id = this.#newId()
    await this.#q('INSERT INTO legal_holds (id, vin, reason, created_at, created_by) VALUES ($1, $2, $3, $4, $5)', [id, vin, reason, at, actor])
    await this.audit(actor, 'hold.add', { holdId: id, vin, reason }, at)
    return { id, vin, reason, createdAt: at, createdBy: actor, releasedAt: null, releasedBy: null, releaseReason: null }
  }

  /** Releases every active hold of the vehicle; returns how many. */
  async releaseHolds (vin: string, reason: string, actor: string, at: Date): Promise<number> {
    const rows = await this.#q<{ id: string }>(
      'UPDATE legal_holds SET released_at = $2, released_by = $3, release_reason = $4 WHERE vin = $1 AND released_at IS NULL RETURNING id', [vin, at, actor, reason])
    if (rows.length > 0) await this.audit(actor, 'hold.release', { vin, reason, holdIds: rows.map((r) => r.id) }, at)
    return rows.length
  }

  async holds (activeOnly: boolean): Promise<LegalHold[]> {
    return await this.#q<LegalHold>(`SELECT id, vin, reason, created_at AS "createdAt", created_by AS "createdBy", released_at AS "releasedAt",
      released_by AS "releasedBy", release_reason AS "releaseReason" FROM legal_holds ${activeOnly ? 'WHERE released_at IS NULL' : ''} ORDER BY created_at`)
  }

  async audit (actor: string, action: string, details: Record<string, unknown>, at: Date): Promise<void> {
    await this.#q('INSERT INTO audit_log (id, at, actor, action, details) VALUES ($1, $2, $3, $4, $5)', [this.#newId(), at, actor, action, JSON.stringify(details)])
  }

  async auditTrail (limit: number, action?: string): Promise<AuditEntry[]> {
    return await this.#q<AuditEntry>(`SELECT id, at, actor, action, details FROM audit_log ${action !== undefined ? 'WHERE action = $2' : ''} ORDER BY at DESC, id DESC LIMIT $1`,
      action !== undefined ? [limit, action] : [limit])
  }

  /**
   * Removes what is past its market's retention period, except rows of vehicles under
   * legal hold. A monthly partition past every market's period and holding no held
   * vehicle's rows is detached concurrently and dropped; elsewhere rows go in bounded
   * batches, each its own short transaction. Writes one audit record.
   */
  async runRetention (now: Date, actor: string, batchSize = 5000): Promise<RetentionReport> {
    const started = performance.now()
    const owner = new pg.Client({ connectionString: this.#ownerUrl, statement_timeout: 0 })
    try {
      await owner.connect()
    } catch (err) {
      throw translateError(err)
    }
    try {
      // One run at a time across every gateway of a cluster.
      const locked = await owner.query<{ ok: boolean }>('SELECT pg_try_advisory_lock($1) AS ok', [RETENTION_LOCK])
      if (locked.rows[0]?.ok !== true) {
        return { ranAt: now.toISOString(), policies: {}, heldVins: [], droppedPartitions: [], deletedRows: {}, totalRemoved: 0, durationMs: 0, skipped: 'another retention run holds the lock' }
      }
      const policyRows = await owner.query<{ market: string, retention_days: number }>('SELECT market, retention_days FROM retention_policies')
      const policies = Object.fromEntries(policyRows.rows.map((r) => [r.market, r.retention_days]))
      const defaultDays = policies['*'] ?? 3650
      const longest = Math.max(defaultDays, ...Object.values(policies))
      const shortest = Math.min(defaultDays, ...Object.values(policies))
      const held = (await owner.query<{ vin: string }>('SELECT DISTINCT vin FROM legal_holds WHERE released_at IS NULL ORDER BY vin')).rows.map((r) => r.vin)
      const parts = (await owner.query<{ name: string }>(
        "SELECT c.relname AS name FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = 'transactions'::regclass ORDER BY 1")).rows
      const dayMs = 24 * 3600_000
      const droppedPartitions: RetentionReport['droppedPartitions'] = []
      const deletedRows: Record<string, number> = {}
      for (const { name } of parts) {
        const m = PARTITION_NAME.exec(name)
        if (m === null) continue
        const start = Date.UTC(Number(m[1]), Number(m[2]) - 1, 1)
        const end = Date.UTC(Number(m[1]), Number(m[2]), 1)
        if (start >= now.getTime() - shortest * dayMs) continue // nothing in it is old enough for any market
        const ident = `"${name}"`
        if (end <= now.getTime() - longest * dayMs) {
          const hasHeld = held.length > 0 && (await owner.query(`SELECT 1 FROM ${ident} WHERE vin = ANY($1) LIMIT 1`, [held])).rowCount !== 0
          if (!hasHeld) {
            const rows = (await owner.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${ident}`)).rows[0]?.n ?? 0
            await owner.query(`ALTER TABLE transactions DETACH PARTITION ${ident} CONCURRENTLY`)
            await owner.query(`DROP TABLE ${ident}`)
            droppedPartitions.push({ name, rows })
            continue
          }
        }
        for (;;) {
          await owner.query('BEGIN')
          await owner.query("SET LOCAL vgw.retention = 'on'")
          const removed = await owner.query<{ market: string | null }>(
            `DELETE FROM ${ident} t WHERE t.ctid = ANY(ARRAY(
               SELECT x.ctid FROM ${ident} x LEFT JOIN retention_policies rp ON rp.market = x.market
               WHERE x.occurred_at < $1::timestamptz - coalesce(rp.retention_days, $2) * interval '1 day'
                 AND (x.vin IS NULL OR NOT (x.vin = ANY($3)))
               LIMIT $4))
             RETURNING t.market`, [now, defaultDays, held, batchSize])
          await owner.query('COMMIT')
          for (const r of removed.rows) deletedRows[r.market ?? '*'] = (deletedRows[r.market ?? '*'] ?? 0) + 1
          if ((removed.rowCount ?? 0) < batchSize) break
        }
      }
      const totalRemoved = droppedPartitions.reduce((s, p) => s + p.rows, 0) + Object.values(deletedRows).reduce((s, n) => s + n, 0)
      const report: RetentionReport = {
        ranAt: now.toISOString(), policies, heldVins: held, droppedPartitions, deletedRows, totalRemoved, durationMs: Math.round(performance.now() - started)
      }
      await owner.query('INSERT INTO audit_log (id, at, actor, action, details) VALUES ($1, $2, $3, $4, $5)',
        [this.#newId(), now, actor, 'retention.run', JSON.stringify(report)])
      return report
    } catch (err) {
      await owner.query('ROLLBACK').catch(() => undefined)
      throw translateError(err)
    } finally {
      await owner.end().catch(() => undefined)
    }
  }
}
