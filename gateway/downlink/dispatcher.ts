import type { Client } from 'aedes'
import type { Logger } from 'pino'
import { encodeEnvelope } from '../../protocol/index.ts'
import type { MessageRow, Store, Transition } from '../../store/index.ts'
import type { CommitBatcher } from '../commit-batcher.ts'

export interface DispatcherDeps {
  store: Store
  transitions: CommitBatcher<Transition>
  /** Sends on the vehicle's connection; false when it is not connected and subscribed here. */
  publishToVehicle: (vin: string, payload: Buffer, messageId: string) => Promise<boolean>
  now: () => number
  newId: () => string
  logger: Logger
  /** Messages sent to one vehicle and not yet acknowledged by its PUBACK, at most. */
  window: number
}

interface Connection {
  client: Client
  subscribed: boolean
  /** Sent on this connection, PUBACK not yet seen. */
  inFlight: Set<string>
  /** PUBACK seen, `delivered` not yet committed. */
  settling: Set<string>
  draining: boolean
  again: boolean
}

/** The envelope of a downlink message, the same bytes on every (re)delivery (README, "Delivery semantics"). */
export function downlinkEnvelope (m: MessageRow): Uint8Array {
  return encodeEnvelope({
    messageId: m.id,
    kind: 'MESSAGE',
    type: m.type,
    createdAtMs: m.createdAt.getTime(),
    ttlSeconds: m.ttlSeconds,
    payload: m.payload,
    attributes: m.attributes
  })
}

/**
 * Sends each vehicle its undelivered, unexpired messages from PostgreSQL, oldest
 * first (higher priority first), whenever it is subscribed to its down topic here.
 * Aedes does not retransmit to a connected client, so this owns redelivery: a message
 * is sent once per connection, and again on the next connection until its PUBACK
 * has been committed as `delivered`.
 */
export class Dispatcher {
  readonly #deps: DispatcherDeps
  readonly #byVin = new Map<string, Connection>()

  constructor (deps: DispatcherDeps) {
    this.#deps = deps
  }

  // Per-message lines are built only when debug is on: these are the downlink's hot paths.
  get #debug (): boolean {
    return this.#deps.logger.isLevelEnabled('debug')
  }

  connected (vin: string, client: Client): void {
    this.#byVin.set(vin, { client, subscribed: false, inFlight: new Set(), settling: new Set(), draining: false, again: false })
  }

  disconnected (vin: string, client: Client): void {
    if (this.#byVin.get(vin)?.client === client) this.#byVin.delete(vin)
  }

  subscribed (vin: string, client: Client): void {
    const c = this.#byVin.get(vin)
    if (c === undefined || c.client !== client) return
    c.subscribed = true
    this.notify(vin)
  }

  /** New messages may wait for this vehicle: send them if it is here and listening. */
  notify (vin: string): void {
    const c = this.#byVin.get(vin)
    if (c === undefined || !c.subscribed) return
    this.#drain(vin, c).catch((err: unknown) => this.#deps.logger.warn({ err, vin }, 'dispatch failed; retried on the next event'))
  }

  /** The vehicle's PUBACK for a message on its down topic [MQTT-4.3.2]. */
  acknowledged (vin: string, client: Client, messageId: string): void {
    const c = this.#byVin.get(vin)
    if (c === undefined || c.client !== client) return
    if (!c.inFlight.delete(messageId)) return
    c.settling.add(messageId)
    if (this.#debug) this.#deps.logger.debug({ vin, messageId }, 'downlink PUBACK')
    this.#deps.transitions.add({ messageId, vin, status: 'delivered', at: new Date(this.#deps.now()), logId: this.#deps.newId() })
      .catch((err: unknown) => this.#deps.logger.error({ err, vin, messageId }, 'delivered status not recorded'))
      .finally(() => {
        c.settling.delete(messageId)
        this.notify(vin)
      })
  }

  async #drain (vin: string, c: Connection): Promise<void> {
    if (c.draining) {
      c.again = true
      return
    }
    c.draining = true
    try {
      for (;;) {
        c.again = false
        const free = this.#deps.window - c.inFlight.size
        if (free <= 0 || this.#byVin.get(vin) !== c) return
        const rows = await this.#deps.store.messages.pending(vin, new Date(this.#deps.now()), free, [...c.inFlight, ...c.settling])
        for (const m of rows) {
          if (this.#byVin.get(vin) !== c) return
          const bytes = downlinkEnvelope(m)
          c.inFlight.add(m.id)
          if (!await this.#deps.publishToVehicle(vin, Buffer.from(bytes), m.id)) {
            c.inFlight.delete(m.id)
            return
          }
          if (this.#debug) this.#deps.logger.debug({ vin, messageId: m.id, clientId: c.client.id }, 'downlink published')
          this.#deps.transitions.add({ messageId: m.id, vin, status: 'sent', at: new Date(this.#deps.now()), raw: bytes, logId: this.#deps.newId() })
            .catch((err: unknown) => this.#deps.logger.error({ err, vin, messageId: m.id }, 'sent status not recorded'))
        }
        if (!c.again && rows.length < free) return
      }
    } finally {
      c.draining = false
    }
  }
}
