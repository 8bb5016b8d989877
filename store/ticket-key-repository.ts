import { randomBytes } from 'node:crypto'
import type pg from 'pg'
import { translateError } from './store-errors.ts'

/** Bytes of a ticket secret: what Node's tls.Server.setTicketKeys takes (48). */
export const TICKET_SECRET_BYTES = 48

/**
 * TLS session ticket secrets, one per rotation period (migration 0012). Every gateway of a
 * cluster asks for the same (period, epoch) and gets the same row, whoever inserted it first,
 * so a ticket issued by one gateway opens on another and after a restart.
 */
export class TicketKeyRepository {
  readonly #pool: pg.Pool

  constructor (pool: pg.Pool) {
    this.#pool = pool
  }

  /** The secret of rotation period `epoch` (of `periodMs` each), created on first use. */
  async secretFor (periodMs: number, epoch: number): Promise<Buffer> {
    try {
      // ON CONFLICT DO NOTHING returns no row when another gateway got there first: read that one.
      const inserted = await this.#pool.query<{ secret: Buffer }>(
        'INSERT INTO tls_ticket_keys (period_ms, epoch, secret) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING RETURNING secret',
        [periodMs, epoch, randomBytes(TICKET_SECRET_BYTES)])
      const row = inserted.rows[0] ?? (await this.#pool.query<{ secret: Buffer }>(
        'SELECT secret FROM tls_ticket_keys WHERE period_ms = $1 AND epoch = $2', [periodMs, epoch])).rows[0]
      if (row === undefined) throw new Error(`ticket secret of epoch ${epoch} neither inserted nor found`)
      return row.secret
    } catch (err) {
      throw translateError(err)
    }
  }

  /**
   * Removes the secrets whose own period ended more than one period before `nowMs`, by each
   * row's period: a gateway running a shorter rotation never removes a longer one's current secret.
   */
  async pruneEnded (nowMs: number): Promise<number> {
    try {
      const res = await this.#pool.query('DELETE FROM tls_ticket_keys WHERE (epoch + 2) * period_ms <= $1::bigint', [Math.floor(nowMs)])
      return res.rowCount ?? 0
    } catch (err) {
      throw translateError(err)
    }
  }
}
