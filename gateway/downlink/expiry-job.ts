import type { Logger } from 'pino'
import type { Store, TransactionRecord } from '../../store/index.ts'
import type { EventHub } from '../events/event-hub.ts'

export interface ExpiryJobDeps {
  store: Store
  hub: EventHub
  now: () => number
  intervalMs: number
  logger: Logger
}

const CHUNK = 10_000

/**
 * Marks downlinks whose TTL ran out before delivery as `expired`, and reports those past their
 * fallback deadline as `fallback_due`: a periodic, set-based job.
 */
export class ExpiryJob {
  readonly #deps: ExpiryJobDeps
  #timer: NodeJS.Timeout | null = null
  #running: Promise<number> | null = null

  constructor (deps: ExpiryJobDeps) {
    this.#deps = deps
  }

  start (): void {
    this.#timer ??= setInterval(() => {
      this.runOnce().catch((err: unknown) => this.#deps.logger.warn({ err }, 'expiry run failed; retrying at the next interval'))
    }, this.#deps.intervalMs)
    this.#timer.unref()
  }

  stop (): void {
    if (this.#timer !== null) clearInterval(this.#timer)
    this.#timer = null
  }

  /** Resolves once a pass that was running when stop() was called has ended (its rows committed or failed). */
  async stopped (): Promise<void> {
    await this.#running?.catch(() => undefined)
  }

  /** One pass; returns how many messages expired. Overlapping calls share the pass in progress. */
  runOnce (): Promise<number> {
    this.#running ??= this.#pass().finally(() => { this.#running = null })
    return this.#running
  }

  async #pass (): Promise<number> {
    // Expiry first: a message past both its TTL and its fallback deadline is reported expired only.
    const expired = await this.#drain((now) => this.#deps.store.messages.expireDue(now, CHUNK))
    await this.#drain((now) => this.#deps.store.messages.fallbackDue(now, CHUNK))
    return expired
  }

  async #drain (step: (now: Date) => Promise<TransactionRecord[]>): Promise<number> {
    let total = 0
    for (;;) {
      const rows = await step(new Date(this.#deps.now()))
      this.#deps.hub.publishRecords(rows)
      if (this.#deps.logger.isLevelEnabled('debug')) for (const r of rows) this.#deps.logger.debug({ vin: r.vin, messageId: r.messageId, status: r.status }, 'downlink ' + r.status)
      total += rows.length
      if (rows.length < CHUNK) return total
    }
  }
}
