import type { ErrorCode } from '../protocol/index.ts'

/** Why the gateway is not ready: a catalogue code and a sentence for the operator. */
export interface NotReady {
  code: ErrorCode
  message: string
}

/** What readiness needs of a commit batcher (CommitBatcher). */
export interface CommitProgress {
  readonly pending: number
  stalledForMs(now?: number): number
}

/**
 * GW_ERR_COMMIT_STALLED when a batcher has held work for `stallMs` without any commit
 * succeeding (a locked table, a wedged database): /ready then answers 503 so a balancer
 * drains this gateway, and answers 200 again by itself once commits progress.
 */
export function commitStallReason (batchers: Readonly<Record<string, CommitProgress>>, stallMs: number, now = performance.now()): NotReady | null {
  for (const [name, batcher] of Object.entries(batchers)) {
    const stalled = batcher.stalledForMs(now)
    if (stalled >= stallMs) {
      return {
        code: 'GW_ERR_COMMIT_STALLED',
        message: `no ${name} commit has succeeded for ${Math.round(stalled / 1000)} s while ${batcher.pending} items wait (VGW_COMMIT_STALL_MS ${stallMs})`
      }
    }
  }
  return null
}

export interface ReadinessProbeOptions {
  /** The check that costs a round trip (the database ping); throws or answers a reason when not ready. */
  check: () => Promise<string | NotReady | null>
  /** A new probe this long after the last one settled (default 1000). */
  intervalMs?: number
  /** A probe not settled by then makes the verdict "not ready" (default 2000). */
  timeoutMs?: number
}

/**
 * The part of readiness that costs a database round trip, asked by one background probe every
 * `intervalMs` rather than by each GET /ready: a flood of probes (with no key, never limited)
 * then costs no query and cannot fill the API pool's queue that load shedding watches
 * (issue #20). At most one probe is outstanding: a database that does not answer leaves the
 * verdict "not ready" and adds no second waiter.
 */
export class ReadinessProbe {
  readonly #o: Required<ReadinessProbeOptions>
  #verdict: string | NotReady | null = 'the readiness probe has not run yet'
  #timer: NodeJS.Timeout | null = null
  #running: Promise<void> | null = null
  #stopped = false
  /** Probes started so far (tests count them). */
  probes = 0

  constructor (options: ReadinessProbeOptions) {
    this.#o = { intervalMs: 1000, timeoutMs: 2000, ...options }
  }

  /** Runs the first probe (so that the first /ready has a verdict), then one every interval. */
  async start (): Promise<void> {
    this.#stopped = false
    await this.#probe()
  }

  stop (): void {
    this.#stopped = true
    if (this.#timer !== null) clearTimeout(this.#timer)
    this.#timer = null
  }

  /** The last probe's verdict: null when the database answered. */
  get verdict (): string | NotReady | null {
    return this.#verdict
  }

  #probe (): Promise<void> {
    if (this.#running !== null) return this.#running
    this.probes++
    const { check, timeoutMs } = this.#o
    let timer: NodeJS.Timeout | undefined
    const settled = check().then((v) => { this.#verdict = v }, () => { this.#verdict = 'the database is not reachable' })
    const timeout = new Promise<void>((resolve) => {
      timer = setTimeout(() => {
        this.#verdict = `the database did not answer the readiness probe within ${timeoutMs} ms`
        resolve()
      }, timeoutMs)
      timer.unref()
    })
    // The verdict is set at the timeout, but the next probe waits until this one settles.
    this.#running = settled.finally(() => {
      clearTimeout(timer)
      this.#running = null
      this.#schedule()
    })
    return Promise.race([settled, timeout])
  }

  #schedule (): void {
    if (this.#stopped) return
    this.#timer = setTimeout(() => { this.#timer = null; void this.#probe() }, this.#o.intervalMs)
    this.#timer.unref()
  }
}
