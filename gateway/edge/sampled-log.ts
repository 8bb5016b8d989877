import { LRUCache } from 'lru-cache'
import type { Logger } from 'pino'

/** Source addresses remembered per window, at most; an address-spraying client cannot grow this. */
const MAX_ADDRESSES = 10_000
/** Addresses named in a summary line. */
const TOP_ADDRESSES = 5

/**
 * Log lines for refusals at the MQTT port that a client can cause as often as it likes
 * (refused connections, failed handshakes): the first line per code and source address per
 * window, then counts only, and one summary line per window with what was not written.
 * A flood from one address therefore costs a couple of lines a minute, not one per attempt.
 */
export class SampledLog {
  readonly #logger: Logger
  readonly #windowMs: number
  /** (code, address) pairs already logged in this window. */
  readonly #logged: LRUCache<string, true>
  /** Attempts per address in this window, for the summary's top addresses. */
  readonly #byAddress = new LRUCache<string, number>({ max: MAX_ADDRESSES })
  #byKind = new Map<string, number>()
  #windowStart = Date.now()
  readonly #timer: NodeJS.Timeout

  constructor (logger: Logger, windowMs = 60_000) {
    this.#logger = logger
    this.#windowMs = windowMs
    this.#logged = new LRUCache({ max: MAX_ADDRESSES, ttl: windowMs })
    this.#timer = setInterval(() => this.summarise(), windowMs)
    this.#timer.unref() // never keeps the process alive on its own
  }

  /**
   * Counts one refusal of this kind (a catalogue code where there is one); logs it, with
   * `fields`, when it is the first of its kind from this address in the window.
   */
  note (kind: string, address: string, msg: string, fields: Record<string, unknown> = {}): void {
    this.#byKind.set(kind, (this.#byKind.get(kind) ?? 0) + 1)
    this.#byAddress.set(address, (this.#byAddress.get(address) ?? 0) + 1)
    const key = `${kind} ${address}`
    if (this.#logged.has(key)) return
    this.#logged.set(key, true)
    this.#logger.warn({ kind, remoteAddress: address, ...fields, sampled: `first of its kind from this address in ${this.#windowMs / 1000} s; the rest are counted` }, msg)
  }

  /** Writes the window's counts as one line (nothing when the window was quiet) and starts a new window. */
  summarise (): void {
    if (this.#byKind.size > 0) {
      const top = [...this.#byAddress.entries()].sort((a, b) => b[1] - a[1]).slice(0, TOP_ADDRESSES)
      this.#logger.warn({
        counts: Object.fromEntries(this.#byKind),
        addresses: this.#byAddress.size,
        top: Object.fromEntries(top),
        windowMs: Date.now() - this.#windowStart
      }, 'MQTT port refusals in the last window')
    }
    this.#byKind = new Map()
    this.#byAddress.clear()
    this.#windowStart = Date.now()
  }

  close (): void {
    clearInterval(this.#timer)
    this.summarise()
  }
}
