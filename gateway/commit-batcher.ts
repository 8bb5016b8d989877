import type { Logger } from 'pino'
import { GatewayError } from '../protocol/index.ts'

export interface BatcherOptions<T> {
  /** Commits a batch; resolves only once it is durable. */
  commit: (items: T[]) => Promise<void>
  maxSize: number
  maxDelayMs: number
  /** Batches committing at once: the next one fills while earlier ones are in flight. */
  maxConcurrent: number
  logger: Logger
  /** Waits between retries while the store is unavailable. */
  retryDelaysMs?: readonly number[]
  /** Bytes an item holds in memory, for `pendingBytes` (the backlog's bound in bytes). */
  sizeOf?: (item: T) => number
}

interface Pending<T> {
  item: T
  bytes: number
  resolve: () => void
  reject: (err: Error) => void
}

/**
 * Groups items into batches that commit on size or after a short delay, and settles
 * each item's promise only after its batch committed: the uplink path answers the
 * vehicle (PUBACK) from that promise, so nothing is acknowledged before it is durable.
 *
 * While the store is unavailable a batch is retried, never dropped. A batch that the
 * store refuses for what it holds is split in halves until the offending items are
 * alone; only those are rejected, so one poison row cannot block the others.
 */
export class CommitBatcher<T> {
  readonly #opts: BatcherOptions<T>
  #queue: Array<Pending<T>> = []
  #timer: NodeJS.Timeout | null = null
  #inFlight = 0
  /** Items in the batches committing now (the backlog bound counts rows, not batches). */
  #inFlightItems = 0
  #pendingBytes = 0
  #idleWaiters: Array<() => void> = []
  #closed = false
  #lastCommitAt = performance.now()
  #lastIdleAt = performance.now()

  constructor (opts: BatcherOptions<T>) {
    this.#opts = opts
  }

  /** Bytes of the items waiting or committing (0 without `sizeOf`). */
  get pendingBytes (): number {
    return this.#pendingBytes
  }

  /** Items waiting or committing. */
  get pending (): number {
    return this.#queue.length + this.#inFlightItems
  }

  /**
   * Milliseconds for which items have been pending without any batch committing; 0 while
   * idle or progressing. Readiness reads it (a wedged commit path drains the gateway).
   */
  stalledForMs (now = performance.now()): number {
    if (this.pending === 0) return 0
    return Math.max(0, now - Math.max(this.#lastCommitAt, this.#lastIdleAt))
  }

  add (item: T): Promise<void> {
    if (this.pending === 0) this.#lastIdleAt = performance.now()
    if (this.#closed) return Promise.reject(new GatewayError('GW_ERR_NOT_READY', 'the gateway is shutting down'))
    const bytes = this.#opts.sizeOf?.(item) ?? 0
    this.#pendingBytes += bytes
    return new Promise<void>((resolve, reject) => {
      this.#queue.push({ item, bytes, resolve, reject })
      if (this.#queue.length >= this.#opts.maxSize) this.#dispatch()
      else this.#timer ??= setTimeout(() => this.#dispatch(), this.#opts.maxDelayMs)
    })
  }

  /** Commits everything queued and waits for all commits in flight. */
  async flush (): Promise<void> {
    this.#dispatch()
    if (this.#queue.length === 0 && this.#inFlight === 0) return
    await new Promise<void>((resolve) => this.#idleWaiters.push(resolve))
  }

  /** Refuses new items, then commits what it holds. */
  async close (): Promise<void> {
    this.#closed = true
    await this.flush()
  }

  // Starts batches while commit slots are free. A batch that finishes starts the next
  // at once with whatever gathered meanwhile: under load, batches fill while others commit.
  #dispatch (): void {
    if (this.#timer !== null) {
      clearTimeout(this.#timer)
      this.#timer = null
    }
    while (this.#queue.length > 0 && this.#inFlight < this.#opts.maxConcurrent) {
      const batch = this.#queue.splice(0, this.#opts.maxSize)
      this.#inFlight++
      this.#inFlightItems += batch.length
      void this.#commitWithRetry(batch).finally(() => {
        this.#inFlight--
        this.#inFlightItems -= batch.length
        for (const p of batch) this.#pendingBytes -= p.bytes
        if (this.#queue.length > 0) {
          this.#dispatch()
        } else if (this.#inFlight === 0) {
          const waiters = this.#idleWaiters
          this.#idleWaiters = []
          for (const w of waiters) w()
        }
      })
    }
  }

  async #commitWithRetry (batch: Array<Pending<T>>): Promise<void> {
    const delays = this.#opts.retryDelaysMs ?? [50, 100, 250, 500, 1000, 2000]
    for (let attempt = 0; ; attempt++) {
      try {
        await this.#opts.commit(batch.map((p) => p.item))
        this.#lastCommitAt = performance.now()
        for (const p of batch) p.resolve()
        return
      } catch (err) {
        if (err instanceof GatewayError && err.code === 'GW_ERR_STORE_UNAVAILABLE') {
          const delay = delays[Math.min(attempt, delays.length - 1)] ?? 1000
          this.#opts.logger.warn({ err, attempt, size: batch.length, delayMs: delay }, 'batch commit failed; store unavailable, retrying')
          await new Promise((resolve) => setTimeout(resolve, delay))
          continue
        }
        if (batch.length === 1) {
          this.#opts.logger.error({ err }, 'the store refused an item')
          batch[0]?.reject(err instanceof Error ? err : new Error(String(err)))
          return
        }
        const half = Math.ceil(batch.length / 2)
        await this.#commitWithRetry(batch.slice(0, half))
        await this.#commitWithRetry(batch.slice(half))
        return
      }
    }
  }
}
