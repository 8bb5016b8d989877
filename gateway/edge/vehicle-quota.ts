export interface QuotaLimits {
  /** Messages per second, sustained. */
  msgRate: number
  /** Messages above the rate in a burst (the bucket's size). */
  msgBurst: number
  /** Uplink bytes per rolling day. */
  bytesPerDay: number
}

/** What a vehicle's next message may do: go now, wait (backpressure), or not go at all. */
export type QuotaVerdict =
  | { ok: true, waitMs: number }
  | { ok: false, reason: 'rate' | 'bytes', detail: string }

interface Buckets {
  msgs: number
  bytes: number
  at: number
}

const DAY_MS = 86_400_000
/** A vehicle that would have to wait longer than this for its next message token is over its rate, not just bursting. */
const MAX_WAIT_MS = 10_000
/** Vehicles tracked at most; full buckets are forgotten first (a full bucket is a fresh one). */
const MAX_TRACKED = 200_000

/**
 * Token buckets per VIN for messages per second and bytes per day. They outlive a
 * connection, so reconnecting does not refill them. A message that finds no token waits
 * for one (its PUBACK waits, and with the in-flight bound the socket stops being read);
 * past MAX_WAIT_MS of debt, or past the day's bytes, the verdict is a refusal.
 */
export class VehicleQuotas {
  readonly #limits: QuotaLimits
  readonly #now: () => number
  readonly #byVin = new Map<string, Buckets>()

  constructor (limits: QuotaLimits, now: () => number) {
    this.#limits = limits
    this.#now = now
  }

  take (vin: string, bytes: number): QuotaVerdict {
    const b = this.#refill(vin)
    if (b.bytes < bytes) {
      return { ok: false, reason: 'bytes', detail: `${bytes} bytes with ${Math.max(0, Math.floor(b.bytes))} of the day's ${this.#limits.bytesPerDay} left` }
    }
    const waitMs = b.msgs >= 1 ? 0 : ((1 - b.msgs) / this.#limits.msgRate) * 1000
    if (waitMs > MAX_WAIT_MS) {
      return { ok: false, reason: 'rate', detail: `over ${this.#limits.msgRate} messages per second (burst ${this.#limits.msgBurst}) for more than ${MAX_WAIT_MS / 1000} s` }
    }
    b.msgs -= 1
    b.bytes -= bytes
    return { ok: true, waitMs }
  }

  #refill (vin: string): Buckets {
    const now = this.#now()
    let b = this.#byVin.get(vin)
    if (b === undefined) {
      if (this.#byVin.size >= MAX_TRACKED) this.#forget(now)
      b = { msgs: this.#limits.msgBurst, bytes: this.#limits.bytesPerDay, at: now }
      this.#byVin.set(vin, b)
      return b
    }
    const elapsed = Math.max(0, now - b.at)
    b.msgs = Math.min(this.#limits.msgBurst, b.msgs + (elapsed * this.#limits.msgRate) / 1000)
    b.bytes = Math.min(this.#limits.bytesPerDay, b.bytes + (elapsed * this.#limits.bytesPerDay) / DAY_MS)
    b.at = now
    return b
  }

  // Full buckets carry no state; if every bucket is in use, the oldest entries go (their vehicles start afresh).
  #forget (now: number): void {
    for (const [vin, b] of this.#byVin) {
      const elapsed = now - b.at
      if (b.msgs + (elapsed * this.#limits.msgRate) / 1000 >= this.#limits.msgBurst &&
        b.bytes + (elapsed * this.#limits.bytesPerDay) / DAY_MS >= this.#limits.bytesPerDay) this.#byVin.delete(vin)
    }
    for (const vin of this.#byVin.keys()) {
      if (this.#byVin.size < MAX_TRACKED * 0.9) break
      this.#byVin.delete(vin)
    }
  }
}
