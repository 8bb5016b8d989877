import type { Logger } from 'pino'
import type { Store } from '../../store/index.ts'

/** Runs retention inside the gateway every `intervalMs` (0: never); the store's lock keeps it to one gateway at a time. */
export class RetentionJob {
  readonly #store: Store
  readonly #intervalMs: number
  readonly #now: () => number
  readonly #logger: Logger
  #timer: NodeJS.Timeout | null = null

  constructor (store: Store, intervalMs: number, now: () => number, logger: Logger) {
    this.#store = store
    this.#intervalMs = intervalMs
    this.#now = now
    this.#logger = logger
  }

  start (): void {
    if (this.#intervalMs <= 0 || this.#timer !== null) return
    this.#timer = setInterval(() => {
      this.#store.lifecycle.runRetention(new Date(this.#now()), 'gateway:retention-job').then(
        (report) => this.#logger.info({ removed: report.totalRemoved, dropped: report.droppedPartitions.length, skipped: report.skipped }, 'retention run'),
        (err: unknown) => this.#logger.warn({ err }, 'retention run failed; retrying at the next interval'))
    }, this.#intervalMs)
    this.#timer.unref()
  }

  stop (): void {
    if (this.#timer !== null) clearInterval(this.#timer)
    this.#timer = null
  }
}
