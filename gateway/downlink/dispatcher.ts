import type { Client } from 'aedes'
import type { Logger } from 'pino'
import { encodeEnvelope } from '../../protocol/index.ts'
import type { MessageRow, Store, Transition } from '../../store/index.ts'
import type { CommitBatcher } from '../commit-batcher.ts'

export interface DispatcherDeps {
  store: Store
  transitions: CommitBatcher<Transition>
  /**
   * Sends on the vehicle's connection; false when it is not connected and subscribed here.
   * `onPublish` runs before the PUBLISH is written, once it is certain to be.
   */
  publishToVehicle: (vin: string, payload: Buffer, messageId: string, onPublish: () => void) => Promise<boolean>
  now: () => number
  newId: () => string
  logger: Logger
  /** Messages sent to one vehicle and not yet acknowledged by its PUBACK, at most. */
  window: number
}

/** What a downlink's envelope is made of: a row read back, or a send handed over as it committed. */
export type DownlinkMessage = Pick<MessageRow, 'id' | 'type' | 'createdAt' | 'ttlSeconds' | 'payload' | 'attributes'>

/** How long "everything waiting is on its way" is trusted without a query. */
const KNOWN_FOR_MS = 10_000

interface Connection {
  client: Client
  subscribed: boolean
  /**
   * Every undelivered message of this vehicle is known to be in inFlight or settling: the last
   * pending query found no more than it sent, and nothing arrived since without being sent.
   * Only then may a new message go out without a query (offer). Until when that is trusted
   * (KNOWN_FOR_MS after the query; 0: not known).
   */
  knownUntil: number
  /** Sent on this connection, PUBACK not yet seen. */
  inFlight: Set<string>
  /** PUBACK seen, `delivered` not yet committed. */
  settling: Set<string>
  draining: boolean
  again: boolean
}

/**
 * The attributes in the order jsonb keeps an object's keys (shortest first, then bytewise, as
 * PostgreSQL's lengthCompareJsonbStringValue sorts them), which is the order a read from the
 * database gives: a message handed over as it committed encodes to the same bytes as its redelivery.
 */
function inJsonbOrder (attributes: Record<string, string>): Record<string, string> {
  const keys = Object.keys(attributes)
  if (keys.length < 2) return attributes
  const bytes = new Map(keys.map((k) => [k, Buffer.from(k, 'utf8')]))
  keys.sort((a, b) => {
    const x = bytes.get(a) as Buffer
    const y = bytes.get(b) as Buffer
    return x.length - y.length || Buffer.compare(x, y)
  })
  return Object.fromEntries(keys.map((k) => [k, attributes[k] as string]))
}

/** The envelope of a downlink message, the same bytes on every (re)delivery (README, "Delivery semantics"). */
export function downlinkEnvelope (m: DownlinkMessage): Uint8Array {
  return encodeEnvelope({
    messageId: m.id,
    kind: 'MESSAGE',
    type: m.type,
    createdAtMs: m.createdAt.getTime(),
    ttlSeconds: m.ttlSeconds,
    payload: m.payload,
    attributes: inJsonbOrder(m.attributes)
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
    this.#byVin.set(vin, { client, subscribed: false, knownUntil: 0, inFlight: new Set(), settling: new Set(), draining: false, again: false })
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
    c.knownUntil = 0
    this.#wake(vin, c)
  }

  /**
   * A message just committed for this vehicle, handed over whole. When everything else the
   * vehicle has waiting is already on its way and its window has room, it is sent at once,
   * without a query; otherwise this is a notify (the query keeps priority order).
   */
  offer (vin: string, m: DownlinkMessage): void {
    const c = this.#byVin.get(vin)
    if (c === undefined || !c.subscribed) return
    if (c.inFlight.has(m.id) || c.settling.has(m.id)) return
    if (!this.#isKnown(c) || c.draining || c.inFlight.size >= this.#deps.window) {
      this.notify(vin)
      return
    }
    c.inFlight.add(m.id)
    this.#send(vin, c, m).catch((err: unknown) => {
      c.knownUntil = 0
      this.#deps.logger.warn({ err, vin }, 'dispatch failed; retried on the next event')
    })
  }

  /**
   * Being known rests on every new message reaching this dispatcher (an offer, a notify from the
   * bus or a campaign). A wake-up lost on the way (a Redis hiccup, a failed campaign lookup)
   * would otherwise leave a message waiting until the vehicle reconnects; trusting it
   * for a few seconds only makes the next offer or PUBACK after that query again.
   */
  #isKnown (c: Connection): boolean {
    return this.#deps.now() < c.knownUntil
  }

  #wake (vin: string, c: Connection): void {
    this.#drain(vin, c).catch((err: unknown) => this.#deps.logger.warn({ err, vin }, 'dispatch failed; retried on the next event'))
  }

  /**
   * Publishes a message already counted in c.inFlight; false (and forgotten, and the vehicle no
   * longer `known`) when it could not go out. Its `sent` transition, with the bytes, joins the
   * status batcher before the PUBLISH is written, so it is always ahead of the `delivered` that
   * the vehicle's PUBACK adds: the batcher commits in order (issue #19, a `sent` row per attempt).
   */
  async #send (vin: string, c: Connection, m: DownlinkMessage): Promise<boolean> {
    const bytes = downlinkEnvelope(m)
    const recordSent = (): void => {
      this.#deps.transitions.add({ messageId: m.id, vin, status: 'sent', at: new Date(this.#deps.now()), raw: bytes, logId: this.#deps.newId() })
        .catch((err: unknown) => this.#deps.logger.error({ err, vin, messageId: m.id }, 'sent status not recorded'))
    }
    if (!await this.#deps.publishToVehicle(vin, Buffer.from(bytes), m.id, recordSent)) {
      c.inFlight.delete(m.id)
      c.knownUntil = 0
      return false
    }
    if (this.#debug) this.#deps.logger.debug({ vin, messageId: m.id, clientId: c.client.id }, 'downlink published')
    return true
  }

  /** The vehicle's PUBACK for a message on its down topic [MQTT-4.3.2]. */
  acknowledged (vin: string, client: Client, messageId: string): void {
    const c = this.#byVin.get(vin)
    if (c === undefined || c.client !== client) return
    if (!c.inFlight.delete(messageId)) return
    c.settling.add(messageId)
    if (this.#debug) this.#deps.logger.debug({ vin, messageId }, 'downlink PUBACK')
    this.#deps.transitions.add({ messageId, vin, status: 'delivered', at: new Date(this.#deps.now()), logId: this.#deps.newId() })
      .catch((err: unknown) => {
        // Still pending in the database: the next query sends it again.
        c.knownUntil = 0
        this.#deps.logger.error({ err, vin, messageId }, 'delivered status not recorded')
      })
      .finally(() => {
        c.settling.delete(messageId)
        // A slot is free: messages left waiting for one go now (nothing waits while all are known to be on their way).
        if (!this.#isKnown(c) && this.#byVin.get(vin) === c) this.#wake(vin, c)
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
        c.knownUntil = 0
        const rows = await this.#deps.store.messages.pending(vin, new Date(this.#deps.now()), free, [...c.inFlight, ...c.settling])
        for (const m of rows) {
          if (this.#byVin.get(vin) !== c) return
          // Handed over (offer) while the query ran: already on its way.
          if (c.inFlight.has(m.id) || c.settling.has(m.id)) continue
          c.inFlight.add(m.id)
          if (!await this.#send(vin, c, m)) return
        }
        // Fewer than asked and nothing new meanwhile: all that waits is on its way.
        if (!c.again && rows.length < free) {
          c.knownUntil = this.#deps.now() + KNOWN_FOR_MS
          return
        }
      }
    } finally {
      c.draining = false
    }
  }
}
