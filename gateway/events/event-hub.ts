import type { TransactionRecord } from '../../store/index.ts'
import { transactionView } from '../api/views.ts'

/** One event of the live stream (GET /v1/stream). */
export interface StreamEvent {
  seq: number
  event: 'uplink' | 'downlink' | 'message.status' | 'connection' | 'security' | 'campaign.created'
  vin: string | null
  kind: string | null
  type: string | null
  [field: string]: unknown
}

export interface StreamFilter {
  vin?: string
  kind?: string
  type?: string
}

export type Listener = (event: StreamEvent) => void

function matches (e: StreamEvent, f: StreamFilter): boolean {
  return (f.vin === undefined || e.vin === f.vin) && (f.kind === undefined || e.kind === f.kind) && (f.type === undefined || e.type === f.type)
}

/** Turns a committed log row into its stream event (DESIGN §5 names). */
export function eventOf (r: TransactionRecord): Omit<StreamEvent, 'seq'> {
  const event = r.direction === 'up'
    ? 'uplink'
    : r.kind === 'CONNECTION' ? 'connection' : r.kind === 'SECURITY' ? 'security' : r.kind === 'MESSAGE' ? 'message.status' : 'downlink'
  // The stream carries the row without its bytes; the REST API has them.
  const { payloadBase64: _payload, rawBase64: _raw, ...fields } = transactionView(r)
  return { event, ...fields, vin: r.vin, kind: r.kind, type: r.type }
}

/**
 * Numbers committed events and fans them out. seq grows monotonically, also across
 * restarts while the clock does (it starts at the start time in microseconds), and
 * the last `retain` events are kept for clients that resume with `since`.
 */
export class EventHub {
  readonly #retain: number
  readonly #ring: StreamEvent[] = []
  readonly #listeners = new Set<{ filter: StreamFilter, listener: Listener }>()
  #seq: number

  constructor (retain: number, now: () => number) {
    this.#retain = retain
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
      this.#ring.push(event)
      if (this.#ring.length > this.#retain) this.#ring.splice(0, this.#ring.length - this.#retain)
      for (const { filter, listener } of this.#listeners) if (matches(event, filter)) listener(event)
    }
  }

  /** Events after `since` that are still retained, and whether some after `since` are gone. */
  replay (since: number, filter: StreamFilter): { events: StreamEvent[], gap: boolean, oldestSeq: number | null } {
    const oldest = this.#ring[0]?.seq ?? null
    const gap = oldest !== null ? since < oldest - 1 : since < this.#seq
    return { events: this.#ring.filter((e) => e.seq > since && matches(e, filter)), gap, oldestSeq: oldest }
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
