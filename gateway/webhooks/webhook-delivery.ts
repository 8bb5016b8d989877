import type { Logger } from 'pino'
import type { FeedItem, FeedPosition, LeasedWebhook, Store, WebhookFailure } from '../../store/index.ts'
import type { GatewayConfig } from '../config.ts'
import { eventNameOf, eventOf } from '../events/event-hub.ts'
import { DestinationPolicy } from './destination-policy.ts'
import { postAgents, postBatch, type PostResult } from './post-batch.ts'
import { webhookHeaders } from './signature.ts'

export interface WebhookDeliveryDeps {
  store: Store
  settings: GatewayConfig['webhooks']
  /** VGW_EVENT_PAYLOAD_MAX_BYTES, for webhooks that asked for payloads. */
  payloadMaxBytes: number
  now: () => number
  newId: () => string
  logger: Logger
}

interface Batch {
  end: LeasedWebhook['cursor']
  deliveryId: string
  /** Each event's JSON, serialised once: the body is built from these. */
  events: string[]
}

const MAX_BACKOFF_MS = 300_000
// Events committed here wake caught-up webhooks, but at most this often.
const WAKE_SPACING_MS = 25
// A range is at most one batch; the largest batch setting bounds every re-read.
const RANGE_CAP = 1000
// The body's bytes besides its events: the webhook and delivery ids and the JSON around them.
const BODY_OVERHEAD = 128

/**
 * Delivers every webhook's batches (README, "Webhooks"). A gateway leases a due webhook, delivers
 * batch after batch from its cursor while it holds the lease, and gives it back when caught up or
 * when an attempt fails. Each webhook has at most one POST in flight, in the whole cluster; one
 * gateway has at most `maxConcurrent`.
 */
export class WebhookDelivery {
  readonly #deps: WebhookDeliveryDeps
  readonly #inFlight = new Map<string, Promise<void>>()
  readonly #stop = new AbortController()
  readonly #policy: DestinationPolicy
  readonly #agents = postAgents()
  #timer: NodeJS.Timeout | null = null
  #wakeTimer: NodeJS.Timeout | null = null
  #lastWake = 0
  #ticking = false

  constructor (deps: WebhookDeliveryDeps) {
    this.#deps = deps
    this.#policy = new DestinationPolicy(deps.settings.allow)
  }

  get #leaseMs (): number {
    return this.#deps.settings.timeoutMs * 2 + 1000
  }

  start (): void {
    this.#timer ??= setInterval(() => this.#tick(false), this.#deps.settings.pollMs)
    this.#timer.unref()
  }

  /** New events were committed: caught-up webhooks look at the feed now rather than at their next poll. */
  wake (): void {
    if (this.#wakeTimer !== null || this.#stop.signal.aborted) return
    const wait = Math.max(0, this.#lastWake + WAKE_SPACING_MS - Date.now())
    this.#wakeTimer = setTimeout(() => {
      this.#wakeTimer = null
      this.#lastWake = Date.now()
      this.#tick(true)
    }, wait)
    this.#wakeTimer.unref()
  }

  /** Stops leasing, aborts the POSTs in flight and gives their leases back (their batches stay as they were). */
  async stop (): Promise<void> {
    if (this.#timer !== null) clearInterval(this.#timer)
    if (this.#wakeTimer !== null) clearTimeout(this.#wakeTimer)
    this.#timer = null
    this.#wakeTimer = null
    this.#stop.abort()
    await Promise.allSettled([...this.#inFlight.values()])
    this.#agents.http.destroy()
    this.#agents.https.destroy()
  }

  #tick (wake: boolean): void {
    if (this.#ticking || this.#stop.signal.aborted) return
    const free = this.#deps.settings.maxConcurrent - this.#inFlight.size
    if (free <= 0) return
    this.#ticking = true
    const now = this.#deps.now()
    this.#deps.store.webhooks.lease({ now: new Date(now), until: new Date(now + this.#leaseMs), limit: free, token: this.#deps.newId(), wake })
      .then((leased) => { for (const w of leased) this.#run(w) })
      .catch((err: unknown) => this.#deps.logger.warn({ err }, 'webhook lease failed; retrying at the next poll'))
      .finally(() => { this.#ticking = false })
  }

  #run (w: LeasedWebhook): void {
    const done = this.#deliver(w)
      .catch((err: unknown) => this.#deps.logger.warn({ err, webhookId: w.id }, 'webhook delivery stopped; its lease runs out and it is retried'))
      .finally(() => this.#inFlight.delete(w.id))
    this.#inFlight.set(w.id, done)
  }

  /** Batch after batch while the lease holds; returns once caught up, failed, stopped or the lease was lost. */
  async #deliver (w: LeasedWebhook): Promise<void> {
    if (w.replayPending) await this.#replay(w)
    for (;;) {
      if (this.#stop.signal.aborted) return await this.#deps.store.webhooks.release(w)
      const next = await this.#nextBatch(w)
      if (next === 'caught-up') return
      if (next === 'lost') return
      const { end, deliveryId, events } = next
      const result = await this.#post(w, deliveryId, events)
      if (this.#stop.signal.aborted && !result.ok) return await this.#deps.store.webhooks.release(w)
      if (!result.ok) return await this.#failed(w, events.length, result.error)
      const until = new Date(this.#deps.now() + this.#leaseMs)
      if (!await this.#deps.store.webhooks.advance(w, end, new Date(this.#deps.now()), until)) return
      w.cursor = end
      w.batch = null
    }
  }

  /**
   * The batch to send: the one in progress (re-read), or a new one cut from the feed after the
   * cursor and recorded before its first attempt. Rows that match no event name of the webhook
   * move the cursor on without a POST.
   */
  async #nextBatch (w: LeasedWebhook): Promise<Batch | 'caught-up' | 'lost'> {
    const { store, settings, now, newId } = this.#deps
    for (;;) {
      if (w.batch !== null) {
        const events = this.#events(w, await store.webhooks.readRange(w.cursor, w.batch.end, RANGE_CAP, this.#payloadMax(w)))
        if (events.length > 0) return { end: w.batch.end, deliveryId: w.batch.deliveryId, events }
        if (!await store.webhooks.advance(w, w.batch.end, new Date(now()), new Date(now() + this.#leaseMs))) return 'lost'
        w.cursor = w.batch.end
        w.batch = null
      }
      const payloadMaxBytes = this.#payloadMax(w)
      const page = await store.feed.read({ after: w.cursor, limit: settings.batchSize, ...(payloadMaxBytes !== undefined ? { payloadMaxBytes } : {}) })
      if (page.items.length === 0) {
        const caughtUp = await store.webhooks.advance(w, page.next, new Date(now() + settings.pollMs), null)
        return caughtUp ? 'caught-up' : 'lost'
      }
      const { events, end } = this.#cut(w, page.items, page.next)
      if (events.length === 0) {
        if (!await store.webhooks.advance(w, page.next, new Date(now()), new Date(now() + this.#leaseMs))) return 'lost'
        w.cursor = page.next
        continue
      }
      const batch = { end, deliveryId: newId(), attempts: 0, firstAttemptAt: new Date(now()), lastError: null }
      if (!await store.webhooks.startBatch(w, { end: batch.end, deliveryId: batch.deliveryId, at: batch.firstAttemptAt })) return 'lost'
      w.batch = batch
      return { end: batch.end, deliveryId: batch.deliveryId, events }
    }
  }

  #payloadMax (w: LeasedWebhook): number | undefined {
    return w.includePayload ? this.#deps.payloadMaxBytes : undefined
  }

  #events (w: LeasedWebhook, records: FeedItem[]): string[] {
    const wanted = w.events.length === 0 ? null : new Set(w.events)
    return records.filter((r) => wanted === null || wanted.has(eventNameOf(r))).map((r) => JSON.stringify(eventOf(r, this.#payloadMax(w))))
  }

  /**
   * A new batch cut from a feed page: its events while the body stays within VGW_WEBHOOK_BATCH_MAX_BYTES
   * (one event at least), and where it ends: after the last record it took, or the page's end.
   * A retry re-reads exactly this range, so it sends the same events.
   */
  #cut (w: LeasedWebhook, records: FeedItem[], pageEnd: FeedPosition): { events: string[], end: FeedPosition } {
    const wanted = w.events.length === 0 ? null : new Set(w.events)
    const events: string[] = []
    let bytes = BODY_OVERHEAD
    for (let i = 0; i < records.length; i++) {
      const r = records[i] as FeedItem
      if (wanted !== null && !wanted.has(eventNameOf(r))) continue
      const json = JSON.stringify(eventOf(r, this.#payloadMax(w)))
      const size = Buffer.byteLength(json) + 1
      if (events.length > 0 && bytes + size > this.#deps.settings.batchMaxBytes) {
        const before = records[i - 1] as FeedItem
        return { events, end: { xid: before.xid ?? pageEnd.xid, id: before.id } }
      }
      events.push(json)
      bytes += size
    }
    return { events, end: pageEnd }
  }

  async #post (w: LeasedWebhook, deliveryId: string, events: string[]): Promise<PostResult> {
    // The same bytes as JSON.stringify({webhookId, deliveryId, events}), without serialising the events again.
    const body = `{"webhookId":${JSON.stringify(w.id)},"deliveryId":${JSON.stringify(deliveryId)},"events":[${events.join(',')}]}`
    const headers = webhookHeaders(w, deliveryId, body, this.#deps.now())
    return await postBatch(w.url, body, headers, { timeoutMs: this.#deps.settings.timeoutMs, stop: this.#stop.signal, policy: this.#policy, agents: this.#agents })
  }

  /** Exponential backoff until the retry period is over; then the batch is a dead letter and the webhook goes on. */
  async #failed (w: LeasedWebhook, eventCount: number, error: string): Promise<void> {
    const { store, settings, now, newId, logger } = this.#deps
    const batch = w.batch as NonNullable<LeasedWebhook['batch']>
    const attempts = batch.attempts + 1
    const t = now()
    const started = batch.firstAttemptAt?.getTime() ?? t
    if (t - started >= settings.retryPeriodMs) {
      logger.warn({ webhookId: w.id, deliveryId: batch.deliveryId, attempts, error }, 'webhook batch not delivered within the retry period: dead letter')
      await store.webhooks.deadLetter(w, { id: newId(), eventCount, attempts, lastError: error, at: new Date(t) }, new Date(t))
      return
    }
    const delay = Math.min(settings.backoffMs * 2 ** (attempts - 1), MAX_BACKOFF_MS) * (0.9 + Math.random() * 0.2)
    logger.info({ webhookId: w.id, deliveryId: batch.deliveryId, attempts, error, retryInMs: Math.round(delay) }, 'webhook batch failed; retrying')
    await store.webhooks.retryLater(w, attempts, error, new Date(t + delay))
  }

  /** One attempt at the oldest dead letter an operator asked to replay, with its own delivery id. */
  async #replay (w: LeasedWebhook): Promise<void> {
    const { store } = this.#deps
    const failure: WebhookFailure | null = await store.webhooks.nextReplay(w.id)
    if (failure === null) return
    const events = this.#events(w, await store.webhooks.readRange(failure.from, failure.to, RANGE_CAP, this.#payloadMax(w)))
    const result: PostResult = events.length === 0 ? { ok: true } : await this.#post(w, failure.deliveryId, events)
    await store.webhooks.replayed(failure.id, result.ok ? { ok: true, at: new Date(this.#deps.now()) } : result)
  }
}
