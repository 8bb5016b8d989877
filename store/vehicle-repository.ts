import { eq, sql } from 'drizzle-orm'
import type { NodePgDatabase } from 'drizzle-orm/node-postgres'
import type pg from 'pg'
import { vehicles } from './schema/tables.ts'
import { translateError } from './store-errors.ts'

export interface VehicleRow {
  vin: string
  market: string | null
  certFingerprint: string | null
  firstSeenAt: Date
  lastSeenAt: Date | null
  lastConnectedAt: Date | null
  lastDisconnectedAt: Date | null
  registeredAt: Date | null
}

/** One vehicle's (re)connection, as the connect batcher hands it over. */
export interface ConnectRow {
  vin: string
  market: string | null
  certFingerprint: string
  at: Date
}

/** The end of the session that connected at `sessionConnectedAt`. */
export interface DisconnectRow {
  vin: string
  at: Date
  sessionConnectedAt: Date
}

// One statement per batch: the rows travel as arrays, so a batch of 500 connects costs one
// round trip and one plan instead of 500. ON CONFLICT DO UPDATE may not touch a row twice in
// one statement, so recordConnects keeps only the latest connect of a VIN in a batch.
const UPSERT_CONNECTS = `INSERT INTO vehicles AS v (vin, market, cert_fingerprint, first_seen_at, last_seen_at, last_connected_at)
  SELECT u.vin, u.market, u.fp, u.at, u.at, u.at FROM unnest($1::text[], $2::text[], $3::text[], $4::timestamptz[]) AS u(vin, market, fp, at)
  ON CONFLICT (vin) DO UPDATE SET market = coalesce(excluded.market, v.market), cert_fingerprint = excluded.cert_fingerprint,
    last_seen_at = excluded.last_seen_at, last_connected_at = excluded.last_connected_at
  WHERE v.last_connected_at IS NULL OR v.last_connected_at <= excluded.last_connected_at`
const UPDATE_DISCONNECTS = `UPDATE vehicles AS v SET last_seen_at = u.at, last_disconnected_at = u.at
  FROM unnest($1::text[], $2::timestamptz[], $3::timestamptz[]) AS u(vin, at, since)
  WHERE v.vin = u.vin AND v.last_connected_at = u.since`

/** VIN order (bytewise, as the statements lock rows): batches committing at once then cannot deadlock. */
function byVin (a: { vin: string }, b: { vin: string }): number {
  return a.vin < b.vin ? -1 : a.vin > b.vin ? 1 : 0
}

/** Connects and disconnects go through the commit pool (CONNACK waits on them); the rest through the API pool. */
export class VehicleRepository {
  readonly #commitPool: pg.Pool
  readonly #orm: NodePgDatabase

  constructor (commitPool: pg.Pool, orm: NodePgDatabase) {
    this.#commitPool = commitPool
    this.#orm = orm
  }

  /** Records a (re)connection: creates the vehicle on first sight, refreshes market and certificate. */
  async recordConnect (vin: string, market: string | null, certFingerprint: string, at: Date): Promise<void> {
    await this.recordConnects([{ vin, market, certFingerprint, at }])
  }

  /** recordConnect for a batch, in one statement; of several connects of one VIN the latest counts. */
  async recordConnects (rows: readonly ConnectRow[]): Promise<void> {
    const latest = new Map<string, ConnectRow>()
    for (const r of rows) {
      const seen = latest.get(r.vin)
      if (seen === undefined || seen.at.getTime() <= r.at.getTime()) latest.set(r.vin, r)
    }
    // In VIN order, so that two batches committing at once lock their rows in the same order (no deadlock);
    // a batch that reaches a VIN after a newer connect of it changes nothing (the WHERE above).
    const unique = [...latest.values()].sort(byVin)
    try {
      await this.#commitPool.query(UPSERT_CONNECTS, [unique.map((r) => r.vin), unique.map((r) => r.market), unique.map((r) => r.certFingerprint), unique.map((r) => r.at)])
    } catch (err) {
      throw translateError(err)
    }
  }

  /** Registers a vehicle before it ever connects (PUT /v1/vehicles/{vin}); true when it was new. */
  async register (vin: string, market: string, at: Date): Promise<boolean> {
    try {
      const rows = await this.#orm.insert(vehicles)
        .values({ vin, market, firstSeenAt: at, registeredAt: at })
        .onConflictDoUpdate({ target: vehicles.vin, set: { market, registeredAt: sql`coalesce(${vehicles.registeredAt}, ${at})` } })
        .returning({ inserted: sql<boolean>`(xmax = 0)` })
      return rows[0]?.inserted ?? false
    } catch (err) {
      throw translateError(err)
    }
  }

  /**
   * Records the end of the session that connected at `sessionConnectedAt`, unless a newer
   * session (on another gateway of a cluster, say) has connected since.
   */
  async recordDisconnect (vin: string, at: Date, sessionConnectedAt: Date): Promise<void> {
    await this.recordDisconnects([{ vin, at, sessionConnectedAt }])
  }

  /** recordDisconnect for a batch, in one statement. */
  async recordDisconnects (unordered: readonly DisconnectRow[]): Promise<void> {
    const rows = [...unordered].sort(byVin)
    try {
      await this.#commitPool.query(UPDATE_DISCONNECTS, [rows.map((r) => r.vin), rows.map((r) => r.at), rows.map((r) => r.sessionConnectedAt)])
    } catch (err) {
      throw translateError(err)
    }
  }

  async get (vin: string): Promise<VehicleRow | null> {
    try {
      const rows = await this.#orm.select().from(vehicles).where(eq(vehicles.vin, vin)).limit(1)
      return rows[0] ?? null
    } catch (err) {
      throw translateError(err)
    }
  }
}
