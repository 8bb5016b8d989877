import { parseEnvelope, summariseAttributes } from '../../protocol/index.ts'
import { encodeFeedCursor, type FeedItem, type TransactionRecord } from '../../store/index.ts'
import { transactionView } from '../api/views.ts'

/** One event of the live stream (GET /v1/stream). */
export interface StreamEvent {
  seq: number
  event: EventName
  vin: string | null
  kind: string | null
  type: string | null
  [field: string]: unknown
}

export const EVENT_NAMES = ['uplink', 'downlink', 'message.status', 'message.fallback_due', 'connection', 'security', 'campaign.created'] as const
export type EventName = typeof EVENT_NAMES[number]

export interface StreamFilter {
  vin?: string
  kind?: string
  type?: string
}

/** A live event, its JSON (serialised once for every listener) and its payload fields for withPayload(). */
export type Listener = (event: StreamEvent, data: string, payload: string) => void

function matches (e: { vin: string | null, kind: string | null, type: string | null }, f: StreamFilter): boolean {
  return (f.vin === undefined || e.vin === f.vin) && (f.kind === undefined || e.kind === f.kind) && (f.type === undefined || e.type === f.type)
}

/** The event name of a log row: the same in the stream, the feed and webhooks. */
export function eventNameOf (r: Pick<TransactionRecord, 'direction' | 'kind' | 'status'>): EventName {
  if (r.direction === 'up') return 'uplink'
  if (r.kind === 'CONNECTION') return 'connection'
  if (r.kind === 'SECURITY') return 'security'
  if (r.kind !== 'MESSAGE') return 'downlink'
  return r.status === 'fallback_due' ? 'message.fallback_due' : 'message.status'
}

/**
 * Turns a committed log row into its event (README, "The stream"). A row whose statement returned
 * its feed position carries it as `cursor`, which the feed and `since=` resume from.
 */
export function eventOf (r: FeedItem, payloadMaxBytes?: number): Omit<StreamEvent, 'seq'> {
  // An event carries the row without its bytes (the REST API has them), unless its reader asked for the payload.
  const { payloadBase64: _payload, rawBase64: _raw, ...fields } = transactionView({ ...r, raw: null })
  const cursor = r.xid === undefined ? {} : { cursor: encodeFeedCursor({ xid: r.xid, id: r.id }) }
  const payload = payloadMaxBytes === undefined ? {} : payloadFields(r, payloadMaxBytes)
  // Large attribute values are summarised ({bytes, sha256}); the log row and the REST API keep them whole.
  return { event: eventNameOf(r), ...fields, attributes: summariseAttributes(r.attributes), ...payload, ...cursor, vin: r.vin, kind: r.kind, type: r.type }
}

/** An opt-in event's payload (README, "The stream"): base64 when the envelope is at most `maxBytes`, else only `payloadOmitted`. */
export function payloadFields (r: FeedItem, maxBytes: number): { payloadBase64: string | null, payloadOmitted?: true } {
  const size = r.rawBytes ?? r.raw?.length ?? null
  if (size === null || r.status === 'rejected') return { payloadBase64: null }
  if (size > maxBytes || r.raw === null) return { payloadBase64: null, payloadOmitted: true }
  try {
    return { payloadBase64: Buffer.from(parseEnvelope(r.raw).payload).toString('base64') }
  } catch {
    return { payloadBase64: null }
  }
}

/** An event already serialised: what the ring keeps and what a replay sends. */
export class Serialized {
  readonly data: string
  constructor (data: string) {
    this.data = data
  }
}

/** What the ring keeps of an event: what filters read, its JSON, and the payload fields for readers that asked for them. */
interface Retained {
  seq: number
  vin: string | null
  kind: string | null
  type: string | null
  data: string
  /** `,"payloadBase64":…` (and `,"payloadOmitted":true`), spliced in before the JSON's last brace; '' when the event has none. */
  payload: string
}

/** The ring's bounds (events kept, and their JSON's size), and the payload bound of opt-in readers. */
export interface RetainBounds {
  events: number
  bytes: number
  /** VGW_EVENT_PAYLOAD_MAX_BYTES; undefined: events never carry their payload. */
  payloadMaxBytes?: number
}

/** An event's JSON with its payload fields, for a reader that asked for them. */
export function withPayload (data: string, payload: string): string {
  return payload === '' ? data : data.slice(0, -1) + payload + '}'
}

/**
 * Numbers committed events and fans them out. seq grows monotonically, also across
 * restarts while the clock does (it starts at the start time in microseconds), and
 * the last events are kept for clients that resume with `since`: at most `retain.events`
 * of them and `retain.bytes` of their JSON, whichever bound comes first. Each event is
 * serialised once, here, for the ring and for every stream.
 */
export class EventHub {
  readonly #bounds: RetainBounds
  // A circular buffer of the last events: O(1) per event, however many are kept.
  readonly #ring: Array<Retained | undefined>
  #head = 0
  #size = 0
  #bytes = 0
  readonly #listeners = new Set<{ filter: StreamFilter, listener: Listener }>()
  #seq: number

  constructor (retain: number | RetainBounds, now: () => number) {
    this.#bounds = typeof retain === 'number' ? { events: retain, bytes: Number.MAX_SAFE_INTEGER } : retain
    this.#ring = new Array<Retained | undefined>(this.#bounds.events)
    this.#seq = now() * 1000
  }

  #broadcast: ((bodies: Array<Omit<StreamEvent, 'seq'>>) => void) | null = null

  /** Cluster mode: events go to every gateway's hub through this, and come back through deliver(). */
  useBroadcast (broadcast: (bodies: Array<Omit<StreamEvent, 'seq'>>) => void): void {
    this.#broadcast = broadcast
  }

  publishRecords (records: readonly TransactionRecord[]): void {
    if (records.length > 0) this.#emit(records.map((r) => eventOf(r, this.#bounds.payloadMaxBytes)))
  }

  publish (body: Omit<StreamEvent, 'seq'>): void {
    this.#emit([body])
  }

  #emit (bodies: Array<Omit<StreamEvent, 'seq'>>): void {
    if (this.#broadcast !== null) this.#broadcast(bodies)
    else this.deliver(bodies)
  }

  /** Numbers events and hands them to this gateway's clients. */
  deliver (bodies: ReadonlyArray<Omit<StreamEvent, 'seq'>>): void {
    for (const { payloadBase64, payloadOmitted, ...body } of bodies) {
      const event = { seq: ++this.#seq, ...body } as StreamEvent
      const data = JSON.stringify(event)
      const payload = payloadBase64 === undefined ? '' : `,"payloadBase64":${JSON.stringify(payloadBase64)}${payloadOmitted === true ? ',"payloadOmitted":true' : ''}`
      this.#keep({ seq: event.seq, vin: event.vin, kind: event.kind, type: event.type, data, payload })
      for (const { filter, listener } of this.#listeners) if (matches(event, filter)) listener(event, data, payload)
    }
  }

  /** Adds an event to the ring; the oldest go while either bound is passed. */
  #keep (r: Retained): void {
    const max = this.#bounds.events
    if (max === 0) return
    if (this.#size === max) this.#dropOldest()
    this.#ring[(this.#head + this.#size) % max] = r
    this.#size++
    this.#bytes += r.data.length + r.payload.length
    while (this.#bytes > this.#bounds.bytes && this.#size > 1) this.#dropOldest()
  }

  #dropOldest (): void {
    const oldest = this.#ring[this.#head]
    this.#ring[this.#head] = undefined
    this.#bytes -= (oldest?.data.length ?? 0) + (oldest?.payload.length ?? 0)
    this.#head = (this.#head + 1) % this.#bounds.events
    this.#size--
  }

  /** Events after `since` that are still retained (serialised), and whether some after `since` are gone. */
  replay (since: number, filter: StreamFilter, payload = false): { events: Serialized[], gap: boolean, oldestSeq: number | null } {
    const events: Serialized[] = []
    const max = this.#bounds.events
    const oldest = this.#size > 0 ? (this.#ring[this.#head] as Retained).seq : null
    for (let i = 0; i < this.#size; i++) {
      const r = this.#ring[(this.#head + i) % max] as Retained
      if (r.seq > since && matches(r, filter)) events.push(new Serialized(payload ? withPayload(r.data, r.payload) : r.data))
    }
    const gap = oldest !== null ? since < oldest - 1 : since < this.#seq
    return { events, gap, oldestSeq: oldest }
  }

  /** What the ring holds now: events and bytes of JSON (a gauge for tests and metrics). */
  get retained (): { events: number, bytes: number } {
    return { events: this.#size, bytes: this.#bytes }
  }

  subscribe (filter: StreamFilter, listener: Listener): () => void {
    const entry = { filter, listener }
    this.#listeners.add(entry)
    return () => this.#listeners.delete(entry)
  }

  get lastSeq (): number {
    return this.#seq
  }
}
