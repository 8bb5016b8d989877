import { and, eq, sql } from 'drizzle-orm'
import type { NodePgDatabase } from 'drizzle-orm/node-postgres'
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

/** Connects and disconnects go through the commit pool (CONNACK waits on them); the rest through the API pool. */
export class VehicleRepository {
  readonly #commitOrm: NodePgDatabase
  readonly #orm: NodePgDatabase

  constructor (commitOrm: NodePgDatabase, orm: NodePgDatabase) {
    this.#commitOrm = commitOrm
    this.#orm = orm
  }

  /** Records a (re)connection: creates the vehicle on first sight, refreshes market and certificate. */
  async recordConnect (vin: string, market: string | null, certFingerprint: string, at: Date): Promise<void> {
    try {
      await this.#commitOrm.insert(vehicles)
        .values({ vin, market, certFingerprint, firstSeenAt: at, lastSeenAt: at, lastConnectedAt: at })
        .onConflictDoUpdate({
          target: vehicles.vin,
          set: { market: sql`coalesce(excluded.market, ${vehicles.market})`, certFingerprint, lastSeenAt: at, lastConnectedAt: at }
        })
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
    try {
      await this.#commitOrm.update(vehicles).set({ lastSeenAt: at, lastDisconnectedAt: at })
        .where(and(eq(vehicles.vin, vin), eq(vehicles.lastConnectedAt, sessionConnectedAt)))
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
