import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks'

/** Bounds past which the gateway sheds new work (README, "Load shedding"). */
export interface OverloadBounds {
  /** Requests waiting for a database connection or a commit slot of the API side, at most. */
  maxDatabaseQueue: number
  /** Mean event-loop delay over the last sample, in ms, at most; 0: not checked. */
  maxEventLoopDelayMs: number
  /** How often the event-loop delay is sampled. */
  sampleMs: number
  /** What a refused client is told to wait (Retry-After), in seconds. */
  retryAfterSeconds: number
}

/** The histogram's resolution: a delay below it is not a delay. */
const RESOLUTION_MS = 10

/**
 * Whether the gateway is overloaded now, and why. REST requests are answered 503
 * GW_ERR_OVERLOADED at once while it is (api/load-shedding.ts), and new vehicle connections
 * CONNACK 3; work already accepted carries on. Queues are read when asked, so a queue that
 * grew past its bound refuses the very next request; the event-loop delay is the mean of the
 * last sample (sampleMs), as @fastify/under-pressure measures it.
 */
export class Overload {
  readonly bounds: OverloadBounds
  readonly #queues: Array<() => number> = []
  #histogram: IntervalHistogram | null = null
  #timer: NodeJS.Timeout | null = null
  #loopDelayMs = 0
  #sampledDelay: (() => number) | null

  /** `loopDelayMs` replaces the event-loop sampler (tests inject their own pressure). */
  constructor (bounds: OverloadBounds, opts: { loopDelayMs?: () => number } = {}) {
    this.bounds = bounds
    this.#sampledDelay = opts.loopDelayMs ?? null
  }

  /** A queue whose length counts against maxDatabaseQueue (summed with the others). */
  watchQueue (length: () => number): void {
    this.#queues.push(length)
  }

  start (): void {
    if (this.#sampledDelay !== null || this.bounds.maxEventLoopDelayMs <= 0 || this.#timer !== null) return
    const histogram = monitorEventLoopDelay({ resolution: RESOLUTION_MS })
    histogram.enable()
    this.#histogram = histogram
    this.#timer = setInterval(() => {
      const mean = histogram.mean / 1e6 - RESOLUTION_MS
      this.#loopDelayMs = Number.isNaN(mean) ? 0 : Math.max(0, mean)
      histogram.reset()
    }, this.bounds.sampleMs)
    this.#timer.unref()
  }

  stop (): void {
    if (this.#timer !== null) clearInterval(this.#timer)
    this.#timer = null
    this.#histogram?.disable()
    this.#histogram = null
  }

  get databaseQueue (): number {
    let n = 0
    for (const length of this.#queues) n += length()
    return n
  }

  get eventLoopDelayMs (): number {
    return this.#sampledDelay !== null ? this.#sampledDelay() : this.#loopDelayMs
  }

  /** Why new work is refused now; null when it is not. */
  reason (): string | null {
    const queue = this.databaseQueue
    // At the bound already: this request would wait past it.
    if (queue >= this.bounds.maxDatabaseQueue) return `${queue} requests wait for the database (bound ${this.bounds.maxDatabaseQueue})`
    const max = this.bounds.maxEventLoopDelayMs
    if (max > 0) {
      const delay = this.eventLoopDelayMs
      if (delay > max) return `event-loop delay ${Math.round(delay)} ms (bound ${max} ms)`
    }
    return null
  }
}
