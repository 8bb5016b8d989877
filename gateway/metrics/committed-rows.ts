import type { TransactionRecord } from '../../store/index.ts'
import { GatewayError } from '../../protocol/index.ts'
import { EventHub, type RetainBounds } from '../events/event-hub.ts'
import type { GatewayMetrics } from './gateway-metrics.ts'

/*
 * Most counters come from the rows this process committed: they are the truth (a row counted is
 * a row stored) and every part already hands them to the event hub. Counting there costs one
 * pass over rows the hub walks anyway and needs no hook inside the parts that wrote them.
 */

const STATUSES = new Set(['queued', 'sent', 'delivered', 'acknowledged', 'expired', 'failed', 'fallback_due'])
const MAX_DELIVERY_AGE_MS = 366 * 24 * 3600_000

/** Milliseconds encoded in a UUIDv7 (RFC 9562 §5.7: the first 48 bits), or null for another id. */
export function uuidV7Time (id: string): number | null {
  if (id.length !== 36 || id[14] !== '7') return null
  const ms = Number.parseInt(id.slice(0, 8) + id.slice(9, 13), 16)
  return Number.isFinite(ms) ? ms : null
}

/** Bounded label: a catalogue code, or "other" for anything else (never free text). */
function codeLabel (code: string | null): string {
  return code !== null && /^GW_ERR_[A-Z_]{1,40}$/.test(code) ? code : 'other'
}

function countSecurity (m: GatewayMetrics, r: TransactionRecord): void {
  // A summary row stands for the events it left out; its details count them by code.
  const byCode = r.type === 'security.suppressed' ? (r.details?.byCode as Record<string, number> | undefined) : undefined
  if (byCode === undefined) {
    m.security.inc({ code: codeLabel(r.errorCode) })
    return
  }
  for (const [code, n] of Object.entries(byCode)) m.security.inc({ code: codeLabel(code) }, n)
}

function countMessage (m: GatewayMetrics, r: TransactionRecord): void {
  m.transitions.inc({ status: STATUSES.has(r.status) ? r.status : 'other' })
  if (r.status !== 'delivered' || r.messageId === null) return
  // The message id is a UUIDv7 made when the API accepted the send: its time is the POST's.
  const sentAt = uuidV7Time(r.messageId)
  const seconds = sentAt === null ? -1 : (r.occurredAt.getTime() - sentAt) / 1000
  if (seconds >= 0 && seconds * 1000 < MAX_DELIVERY_AGE_MS) m.delivery.observe(seconds)
}

/** Counts committed rows: uplinks by outcome, downlink transitions, security events. */
export function countCommittedRows (m: GatewayMetrics, rows: readonly TransactionRecord[]): void {
  for (const r of rows) {
    if (r.direction === 'up') {
      if (r.status === 'accepted') m.uplinks.inc({ outcome: 'accepted', code: '' })
      else m.uplinks.inc({ outcome: 'rejected', code: codeLabel(r.errorCode) })
    } else if (r.kind === 'SECURITY') {
      countSecurity(m, r)
    } else if (r.kind === 'MESSAGE') {
      countMessage(m, r)
    }
  }
}

/** The event hub of a metered gateway: every row this process commits passes publishRecords once. */
export class MeteredEventHub extends EventHub {
  readonly #metrics: GatewayMetrics

  constructor (retain: number | RetainBounds, now: () => number, metrics: GatewayMetrics) {
    super(retain, now)
    this.#metrics = metrics
  }

  override publishRecords (records: readonly TransactionRecord[]): void {
    countCommittedRows(this.#metrics, records)
    super.publishRecords(records)
  }
}

/**
 * Wraps a batcher's commit function: batch size and duration when it succeeds, a retry when the
 * store was unavailable (the batcher tries again), the time of the last success.
 */
export function meteredCommit<T> (m: GatewayMetrics, batcher: string, commit: (items: T[]) => Promise<void>, lastSuccess: Map<string, number>): (items: T[]) => Promise<void> {
  lastSuccess.set(batcher, performance.now())
  return async (items) => {
    const end = m.commitSeconds.startTimer({ batcher })
    try {
      await commit(items)
    } catch (err) {
      if (err instanceof GatewayError && err.code === 'GW_ERR_STORE_UNAVAILABLE') m.commitRetries.inc({ batcher })
      throw err
    }
    end()
    m.batchSize.observe({ batcher }, items.length)
    lastSuccess.set(batcher, performance.now())
  }
}

/** Uplinks the log did not insert again: a retry of a stored message (same VIN, message id, created_at). */
export function countDuplicates (m: GatewayMetrics, offered: readonly TransactionRecord[], stored: readonly TransactionRecord[]): void {
  let up = 0
  for (const r of offered) if (r.direction === 'up') up++
  for (const r of stored) if (r.direction === 'up') up--
  if (up > 0) m.uplinks.inc({ outcome: 'duplicate', code: '' }, up)
}
