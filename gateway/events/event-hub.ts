import { encodeFeedCursor, type TransactionRecord } from '../../store/index.ts'
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

export type Listener = (event: StreamEvent) => void

function matches (e: StreamEvent, f: StreamFilter): boolean {
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
export function eventOf (r: TransactionRecord): Omit<StreamEvent, 'seq'> {
  // The stream carries the row without its bytes (the REST API has them), so none are decoded here.
  const { payloadBase64: _payload, rawBase64: _raw, ...fields } = transactionView({ ...r, raw: null })
  const cursor = r.xid === undefined ? {} : { cursor: encodeFeedCursor({ xid: r.xid, id: r.id }) }
  return { event: eventNameOf(r), ...fields, ...cursor, vin: r.vin, kind: r.kind, type: r.type }
}

/**
 * Numbers committed events and fans them out. seq grows monotonically, also across
 * restarts while the clock does (it starts at the start time in microseconds), and
 * the last `retain` events are kept for clients that resume with `since`.
 */
export class EventHub {
  readonly #retain: number
  // A circular buffer of the last `retain` events: O(1) per event, however many are kept.
  readonly #ring: Array<StreamEvent | undefined>
  #head = 0
  #size = 0
  readonly #listeners = new Set<{ filter: StreamFilter, listener: Listener }>()
  #seq: number

  constructor (retain: number, now: () => number) {
    this.#retain = retain
    this.#ring = new Array<StreamEvent | undefined>(retain)
    this.#seq = now() * 1000
  }

  #broadcast: ((bodies: Array<Omit<StreamEvent, 'seq'>>) => void) | null = null

  /** Cluster mode: events go to every gateway's hub through this, and come back through deliver(). */
  useBroadcast (broadcast: (bodies: Array<Omit<StreamEvent, 'seq'>>) => void): void {
    this.#broadcast = broadcast
  }

  publishRecords (records: readonly TransactionRecord[]): void {
    if (records.length > 0) this.#emit(records.map(eventOf))
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
    for (const body of bodies) {
      const event = { seq: ++this.#seq, ...body } as StreamEvent
      if (this.#retain > 0) {
        this.#ring[(this.#head + this.#size) % this.#retain] = event
        if (this.#size < this.#retain) this.#size++
        else this.#head = (this.#head + 1) % this.#retain
      }
      for (const { filter, listener } of this.#listeners) if (matches(event, filter)) listener(event)
    }
  }

  #retained (): StreamEvent[] {
    const out: StreamEvent[] = []
    for (let i = 0; i < this.#size; i++) out.push(this.#ring[(this.#head + i) % this.#retain] as StreamEvent)
    return out
  }

  /** Events after `since` that are still retained, and whether some after `since` are gone. */
  replay (since: number, filter: StreamFilter): { events: StreamEvent[], gap: boolean, oldestSeq: number | null } {
    const kept = this.#retained()
    const oldest = kept[0]?.seq ?? null
    const gap = oldest !== null ? since < oldest - 1 : since < this.#seq
    return { events: kept.filter((e) => e.seq > since && matches(e, filter)), gap, oldestSeq: oldest }
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
