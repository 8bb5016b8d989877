import { randomBytes } from 'node:crypto'
import { newUuidV7, type EnvelopeInput } from '../protocol/index.ts'

// Payload bytes only need to look random to the gateway: slices of one random block spare a
// crypto call per message, which matters when the fleet shares the cores with the gateway.
const PAYLOAD_POOL = randomBytes(64 * 1024)

function randomPayload (bytes: number): Uint8Array {
  if (bytes > PAYLOAD_POOL.length) return randomBytes(bytes)
  const start = Math.floor(Math.random() * (PAYLOAD_POOL.length - bytes + 1))
  return PAYLOAD_POOL.subarray(start, start + bytes)
}

/** A vehicle's own uplink: mostly position telemetry, one in ten a door event. */
export function telemetryEnvelope (payloadBytes: number): EnvelopeInput {
  const event = Math.random() < 0.1
  return {
    messageId: newUuidV7(),
    kind: event ? 'EVENT' : 'TELEMETRY',
    type: event ? 'event.door' : 'telemetry.position',
    createdAtMs: Date.now(),
    payload: randomPayload(payloadBytes),
    attributes: { 'content-type': 'application/octet-stream' }
  }
}

export interface PacerSettings {
  /** Uplinks a second; 0: none. */
  uplinkRatePerVehicle: number
  /** As fast as acknowledged instead of a rate. */
  closedLoop: boolean
}

/**
 * When a vehicle's uplinks happen: Poisson arrivals (exponential gaps with mean 1/rate,
 * scaled by the scenario), or in a closed loop, where the vehicle makes a new uplink
 * whenever it has a free in-flight slot (no timers at all).
 */
export class UplinkPacer {
  readonly #settings: PacerSettings
  readonly #multiplier: () => number
  readonly #arrival: () => void
  readonly #slotsMayBeFree: () => void
  #running = false
  #timer: NodeJS.Timeout | null = null

  /**
   * `arrival` is called for each Poisson arrival; `slotsMayBeFree` when a closed loop
   * starts (the vehicle then fills its window, asking `fillsWindow`).
   */
  constructor (settings: PacerSettings, multiplier: () => number, arrival: () => void, slotsMayBeFree: () => void) {
    this.#settings = settings
    this.#multiplier = multiplier
    this.#arrival = arrival
    this.#slotsMayBeFree = slotsMayBeFree
  }

  /** A closed loop is running: free slots are to be filled with new uplinks. */
  get fillsWindow (): boolean {
    return this.#running && this.#settings.closedLoop
  }

  start (): void {
    this.#running = true
    if (this.#settings.closedLoop) this.#slotsMayBeFree()
    else this.#schedule()
  }

  stop (): void {
    this.#running = false
    if (this.#timer !== null) clearTimeout(this.#timer)
    this.#timer = null
  }

  #schedule (): void {
    if (!this.#running || this.#settings.uplinkRatePerVehicle <= 0) return
    const rate = this.#settings.uplinkRatePerVehicle * this.#multiplier()
    const gapMs = rate > 0 ? -Math.log(1 - Math.random()) / rate * 1000 : 1000
    this.#timer = setTimeout(() => {
      if (rate > 0) this.#arrival()
      this.#schedule()
    }, gapMs)
    this.#timer.unref()
  }
}
