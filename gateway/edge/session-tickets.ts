import { createHash, hkdfSync, randomBytes } from 'node:crypto'
import type { Logger } from 'pino'

/** What SessionTickets needs of the store (store/ticket-key-repository.ts). */
export interface TicketSecretStore {
  secretFor(periodMs: number, epoch: number): Promise<Buffer>
  pruneEnded(nowMs: number): Promise<number>
}

export interface SessionTicketDeps {
  store: TicketSecretStore
  /** The server's private key (PEM): half of what a ticket key is derived from. */
  serverKey: string | Buffer
  /** A new ticket key every this many ms, at the same instant on every gateway (epoch boundaries). */
  rotationMs: number
  /** Installs a new ticket key (tls.Server.setTicketKeys). */
  apply: (key: Buffer) => void
  logger: Logger
  now?: () => number
  /** Wait before asking the database again after it failed. */
  retryMs?: number
}

const MAX_TIMER_MS = 2 ** 31 - 1
const TICKET_KEY_BYTES = 48

/**
 * The ticket key of one period: HKDF of the period's stored secret with the server's private
 * key, so that the table alone (a database dump, a read-only role) cannot forge a session ticket,
 * which would stand for any vehicle's certificate. Gateways of a cluster share the server key.
 */
export function ticketKeyFrom (secret: Buffer, serverKey: string | Buffer, epoch: number): Buffer {
  return Buffer.from(hkdfSync('sha256', Buffer.concat([Buffer.from(serverKey), secret]), 'vgw tls session ticket key', `epoch ${epoch}`, TICKET_KEY_BYTES))
}

/**
 * The session id context the server's certificate requests are made in: OpenSSL resumes a
 * session only in the context it began in, and Node's default is a hash of the process'
 * arguments, which differs between gateways. Ours is the CA bundle's: the same on every
 * gateway of a cluster, and a new CA starts new sessions.
 */
export function sessionIdContext (ca: string | Buffer): string {
  return createHash('sha256').update(ca).digest('hex').slice(0, 32)
}

/**
 * Session ticket keys shared by every gateway of a cluster and surviving restarts (README,
 * "Reconnect storms"): the key of the current rotation period comes from PostgreSQL, and at
 * each period boundary every gateway moves to the next one. Node holds one ticket key at a
 * time, so tickets issued before a rotation no longer resume after it (a full handshake).
 * Until the database answers, a random key of this process serves.
 */
export class SessionTickets {
  readonly #d: SessionTicketDeps
  readonly #now: () => number
  #timer: NodeJS.Timeout | null = null
  #closed = false
  #epoch = -1

  constructor (deps: SessionTicketDeps) {
    this.#d = deps
    this.#now = deps.now ?? Date.now
  }

  /** The key to start the listener with: the current period's, or a random one if the database fails. */
  async start (): Promise<Buffer> {
    const key = await this.#load()
    return key ?? randomBytes(TICKET_KEY_BYTES)
  }

  close (): void {
    this.#closed = true
    if (this.#timer !== null) clearTimeout(this.#timer)
    this.#timer = null
  }

  async #load (): Promise<Buffer | null> {
    const { rotationMs } = this.#d
    const epoch = Math.floor(this.#now() / rotationMs)
    try {
      const key = ticketKeyFrom(await this.#d.store.secretFor(rotationMs, epoch), this.#d.serverKey, epoch)
      this.#epoch = epoch
      this.#schedule((epoch + 1) * rotationMs - this.#now())
      // Secrets of ended periods are of no use to anyone: Node can only open tickets of the current key.
      this.#d.store.pruneEnded(this.#now()).catch((err: unknown) => this.#d.logger.warn({ err }, 'old TLS ticket secrets not pruned'))
      return key
    } catch (err) {
      this.#d.logger.warn({ err, epoch }, 'TLS ticket key not read from the database; retrying (sessions do not resume across gateways meanwhile)')
      this.#schedule(this.#d.retryMs ?? 30_000)
      return null
    }
  }

  #schedule (ms: number): void {
    if (this.#closed) return
    if (this.#timer !== null) clearTimeout(this.#timer)
    this.#timer = setTimeout(() => {
      this.#timer = null
      void this.#load().then((key) => {
        if (key !== null && !this.#closed) this.#d.apply(key)
      })
    }, Math.min(MAX_TIMER_MS, Math.max(0, ms)))
    this.#timer.unref()
  }

  /** The rotation period now in use (-1 before the database answered). */
  get epoch (): number {
    return this.#epoch
  }
}
