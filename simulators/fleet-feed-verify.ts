/**
 * The fleet's check through the durable feed (GET /v1/events), read from a cursor taken before
 * the run: every acknowledged uplink appears exactly once, under its vehicle, and every
 * downlink's statuses appear in the order the gateway documents, ending where the message is.
 */

/** What the feed check needs of the run, as plain data (a saved report carries it). */
export interface FeedCheckInput {
  apiUrl: string
  /** The feed's head before the run (a nextCursor): the run's events all come after it. */
  after: string
  uplinks: Record<string, string[]>
  downlinks: Array<{ id: string, vin: string, answer: string | null }>
  /** Each downlink's status as GET /v1/messages/{id} reported it: the feed must end there. */
  finalStatus: ReadonlyMap<string, { status: string, ackStatus: string | null }>
}

export interface FeedMismatch {
  kind: 'feed-uplink-missing' | 'feed-uplink-duplicate' | 'feed-uplink-vin' | 'feed-status-order' | 'feed-status-final'
  vin: string
  messageId: string
  detail: string
}

export interface FeedCheckResult {
  eventsRead: number
  uplinksChecked: number
  downlinksChecked: number
  mismatches: FeedMismatch[]
}

interface FeedEvent { event: string, vin: string | null, messageId?: string | null, status?: string | null, ackStatus?: string | null }
interface FeedPage { items: FeedEvent[], nextCursor: string, more: boolean }

const PAGE = 1000
// Rows committed at the very end of a run can be held back for a moment by a transaction still open
// (the feed serves only below the oldest one running): read on this long before calling them missing.
const SETTLE_MS = 10_000

async function readPage (apiUrl: string, apiKey: string, after: string | null): Promise<FeedPage> {
  const path = `/v1/events?limit=${PAGE}${after === null ? '' : `&after=${encodeURIComponent(after)}`}`
  for (let attempt = 0; ; attempt++) {
    try {
      const res = await fetch(apiUrl + path, { headers: { authorization: `Bearer ${apiKey}` } })
      if (res.status !== 200) throw new Error(`GET ${path}: ${res.status} ${await res.text()} (the API key needs stream:read)`)
      return await res.json() as FeedPage
    } catch (err) {
      if (attempt >= 3) throw err
      await new Promise((resolve) => setTimeout(resolve, 200 * (attempt + 1)))
    }
  }
}

/**
 * The feed's head now: read to its end and keep the last nextCursor. Costs one pass over the log
 * kept (the feed has no "latest" position), so on a long-lived database it takes a while.
 */
export async function feedHead (apiUrl: string, apiKey: string): Promise<string> {
  let after: string | null = null
  for (;;) {
    const page = await readPage(apiUrl, apiKey, after)
    after = page.nextCursor
    if (!page.more) return after
  }
}

// Statuses move forward (queued, sent, delivered, acknowledged; expired and failed are final);
// only `sent` repeats (a send again after a reconnect). fallback_due is a log row, not a status.
const RANK: Record<string, number> = { queued: 0, sent: 1, delivered: 2, acknowledged: 3, expired: 4, failed: 4 }

/** What the feed said about one downlink, folded event by event. */
interface StatusTrail { statuses: string[], ackStatus: string | null, fallbackDue: number, broken: string | null }

function follow (trail: StatusTrail, e: FeedEvent): void {
  if (e.event === 'message.fallback_due') {
    trail.fallbackDue++
    const last = trail.statuses.at(-1)
    if (trail.broken === null && (last === undefined || (RANK[last] ?? 9) >= RANK.delivered)) trail.broken = `fallback_due after ${last ?? 'nothing'}`
    if (trail.broken === null && trail.fallbackDue > 1) trail.broken = 'fallback_due twice'
    return
  }
  const status = e.status ?? ''
  const last = trail.statuses.at(-1)
  trail.statuses.push(status)
  if (status === 'acknowledged') trail.ackStatus = e.ackStatus ?? null
  if (trail.broken !== null) return
  if (last === undefined && status !== 'queued') trail.broken = `first status ${status}, not queued`
  else if (last !== undefined && !((RANK[status] ?? -1) > (RANK[last] ?? 9) || (status === 'sent' && last === 'sent'))) trail.broken = `${status} after ${last}`
  // A PUBACK answers a PUBLISH: every delivery has its attempt before it (issue #19).
  else if (status === 'delivered' && !trail.statuses.includes('sent')) trail.broken = 'delivered without a sent before it'
}

/** Folds the feed's events into per-message trails and per-uplink counts. */
class FeedTally {
  eventsRead = 0
  readonly uplinkSeen = new Map<string, { vin: string, count: number, vins: Set<string> }>()
  readonly trails = new Map<string, StatusTrail>()

  constructor (input: FeedCheckInput) {
    for (const [vin, ids] of Object.entries(input.uplinks)) for (const id of ids) this.uplinkSeen.set(id, { vin, count: 0, vins: new Set() })
    for (const d of input.downlinks) this.trails.set(d.id, { statuses: [], ackStatus: null, fallbackDue: 0, broken: null })
  }

  add (e: FeedEvent): void {
    this.eventsRead++
    if (e.messageId === null || e.messageId === undefined) return
    if (e.event === 'uplink') {
      const seen = this.uplinkSeen.get(e.messageId)
      if (seen === undefined) return
      seen.count++
      if (e.vin !== null) seen.vins.add(e.vin)
    } else if (e.event === 'message.status' || e.event === 'message.fallback_due') {
      const trail = this.trails.get(e.messageId)
      if (trail !== undefined) follow(trail, e)
    }
  }

  /** Everything expected is there: each uplink at least once, each message at its final status (or already out of order: reading on cannot mend it). */
  complete (input: FeedCheckInput): boolean {
    for (const seen of this.uplinkSeen.values()) if (seen.count === 0) return false
    for (const [id, trail] of this.trails) {
      if (trail.broken === null && trail.statuses.at(-1) !== (input.finalStatus.get(id)?.status ?? trail.statuses.at(-1))) return false
    }
    return true
  }
}

function mismatchesOf (tally: FeedTally, input: FeedCheckInput): FeedMismatch[] {
  const out: FeedMismatch[] = []
  for (const [id, seen] of tally.uplinkSeen) {
    if (seen.count === 0) out.push({ kind: 'feed-uplink-missing', vin: seen.vin, messageId: id, detail: 'acknowledged by the gateway but not in the feed' })
    else if (seen.count > 1) out.push({ kind: 'feed-uplink-duplicate', vin: seen.vin, messageId: id, detail: `in the feed ${seen.count} times` })
    else if (!seen.vins.has(seen.vin)) out.push({ kind: 'feed-uplink-vin', vin: seen.vin, messageId: id, detail: `in the feed under ${[...seen.vins].join(', ')}` })
  }
  for (const d of input.downlinks) {
    const trail = tally.trails.get(d.id)
    if (trail === undefined) continue
    const final = input.finalStatus.get(d.id)
    const seen = trail.statuses.join(' → ')
    if (trail.broken !== null) {
      out.push({ kind: 'feed-status-order', vin: d.vin, messageId: d.id, detail: `${trail.broken} (feed: ${seen})` })
    } else if (final !== undefined && trail.statuses.at(-1) !== final.status) {
      out.push({ kind: 'feed-status-final', vin: d.vin, messageId: d.id, detail: `the feed ends at ${trail.statuses.at(-1) ?? 'nothing'}, the message is ${final.status} (feed: ${seen || 'none'})` })
    } else if (final?.status === 'acknowledged' && d.answer !== null && trail.ackStatus !== d.answer) {
      out.push({ kind: 'feed-status-final', vin: d.vin, messageId: d.id, detail: `acknowledged in the feed with ${String(trail.ackStatus)}, the vehicle answered ${d.answer}` })
    }
  }
  return out
}

/** Reads the feed from `input.after` to its head (and on, briefly, until the run's last rows are served) and checks it. */
export async function checkFeed (input: FeedCheckInput, apiKey: string): Promise<FeedCheckResult> {
  const tally = new FeedTally(input)
  let after = input.after
  let settleUntil: number | null = null
  for (;;) {
    const page = await readPage(input.apiUrl, apiKey, after)
    for (const e of page.items) tally.add(e)
    after = page.nextCursor
    if (page.more) continue
    if (tally.complete(input)) break
    settleUntil ??= Date.now() + SETTLE_MS
    if (Date.now() > settleUntil) break
    await new Promise((resolve) => setTimeout(resolve, 250))
  }
  return { eventsRead: tally.eventsRead, uplinksChecked: tally.uplinkSeen.size, downlinksChecked: tally.trails.size, mismatches: mismatchesOf(tally, input) }
}
