import type { Logger } from 'pino'

/**
 * "Last used" for API keys without a write per request: each request only notes the time in
 * memory; every `flushMs` one statement writes the latest time of every key used since.
 */
export class KeyUsage {
  readonly #write: (lastUsed: ReadonlyMap<string, Date>) => Promise<void>
  readonly #logger: Logger
  #pending = new Map<string, Date>()
  readonly #timer: NodeJS.Timeout

  constructor (write: (lastUsed: ReadonlyMap<string, Date>) => Promise<void>, flushMs: number, logger: Logger) {
    this.#write = write
    this.#logger = logger
    this.#timer = setInterval(() => { void this.flush() }, flushMs)
    this.#timer.unref()
  }

  note (keyId: string, at: Date): void {
    this.#pending.set(keyId, at)
  }

  /** Writes what was noted; a failed write is merged back and tried at the next flush. */
  async flush (): Promise<void> {
    if (this.#pending.size === 0) return
    const batch = this.#pending
    this.#pending = new Map()
    try {
      await this.#write(batch)
    } catch (err) {
      for (const [id, at] of batch) if (!this.#pending.has(id)) this.#pending.set(id, at)
      this.#logger.warn({ err, keys: batch.size }, 'could not record API keys\' last use; retrying')
    }
  }

  async close (): Promise<void> {
    clearInterval(this.#timer)
    await this.flush()
  }
}
