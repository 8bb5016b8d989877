/**
 * End-to-end check of a fleet run through the REST API: every uplink that got a
 * PUBACK is recorded exactly once, and every downlink reached a final or documented
 * status; with `feedAfter`, the same through the durable feed (fleet-feed-verify.ts). The
 * input is plain data, so a run can be saved and verified again later.
 */
import { checkFeed, type FeedCheckResult, type FeedMismatch } from './fleet-feed-verify.ts'

export interface VerificationInput {
  apiUrl: string
  /** The run's start: uplinks are looked up from a little before it. */
  fromMs: number
  /** vin → message_ids whose PUBACK the vehicle received. */
  uplinks: Record<string, string[]>
  downlinks: Array<{
    id: string
    vin: string
    /** The vehicle was connected when the run ended, so the message must be acknowledged. */
    vehicleOnline: boolean
    /** What the vehicle answered, if it did. */
    answer: string | null
  }>
  /** The durable feed's head before the run (`--verify-feed`): the feed is checked too, from there. */
  feedAfter?: string | null
}

export interface Mismatch {
  kind: 'uplink-missing' | 'uplink-duplicate' | 'downlink-status' | 'downlink-ack-status' | 'downlink-unknown' | 'downlink-sent-missing' | FeedMismatch['kind']
  vin: string
  messageId: string
  detail: string
}

export interface VerificationResult {
  ok: boolean
  uplinksChecked: number
  downlinksChecked: number
  mismatches: Mismatch[]
  /** What the feed check read and checked; null without `feedAfter`. */
  feed: Omit<FeedCheckResult, 'mismatches'> | null
}

const PENDING_OK = new Set(['queued', 'sent', 'delivered', 'acknowledged', 'expired'])

async function getJson (apiUrl: string, apiKey: string, path: string): Promise<{ status: number, body: unknown }> {
  for (let attempt = 0; ; attempt++) {
    try {
      const res = await fetch(apiUrl + path, { headers: { authorization: `Bearer ${apiKey}` } })
      return { status: res.status, body: await res.json() as unknown }
    } catch (err) {
      if (attempt >= 3) throw err
      await new Promise((resolve) => setTimeout(resolve, 200 * (attempt + 1)))
    }
  }
}

async function inParallel<T> (items: readonly T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) await fn(items[next++] as T)
  }))
}

/** Every row of these vehicles' logs in the direction since `from`, page by page. */
async function logRows<T> (input: VerificationInput, apiKey: string, vin: string, query: string, each: (item: T) => void): Promise<void> {
  let cursor: string | null = null
  do {
    const q: string = `/v1/vehicles/${vin}/transactions?${query}&limit=1000${cursor === null ? '' : `&cursor=${cursor}`}`
    const res = await getJson(input.apiUrl, apiKey, q)
    if (res.status !== 200) throw new Error(`GET ${q}: ${res.status} ${JSON.stringify(res.body)}`)
    const page = res.body as { items: T[], nextCursor: string | null }
    for (const item of page.items) each(item)
    cursor = page.nextCursor
  } while (cursor !== null)
}

const DELIVERED = new Set(['delivered', 'acknowledged'])

/**
 * Every delivered downlink has a `sent` row holding the envelope bytes that went out (issue #19):
 * a PUBACK answers a PUBLISH, so a delivery without its attempt is a hole in the legal record.
 */
async function checkSentRows (input: VerificationInput, apiKey: string, from: string, finalStatus: ReadonlyMap<string, { status: string }>): Promise<Mismatch[]> {
  const delivered = input.downlinks.filter((d) => DELIVERED.has(finalStatus.get(d.id)?.status ?? ''))
  const byVin = new Map<string, Set<string>>()
  for (const d of delivered) (byVin.get(d.vin) ?? byVin.set(d.vin, new Set()).get(d.vin))?.add(d.id)
  const withBytes = new Set<string>()
  await inParallel([...byVin.keys()], 16, async (vin) => {
    await logRows<{ messageId: string | null, status: string, rawBase64?: string | null }>(input, apiKey, vin,
      `direction=down&include=raw&from=${encodeURIComponent(from)}`, (item) => {
        if (item.status === 'sent' && item.messageId !== null && typeof item.rawBase64 === 'string' && item.rawBase64 !== '') withBytes.add(item.messageId)
      })
  })
  return delivered.filter((d) => !withBytes.has(d.id)).map((d) => ({
    kind: 'downlink-sent-missing' as const, vin: d.vin, messageId: d.id, detail: `${finalStatus.get(d.id)?.status ?? ''} without a sent row holding the bytes sent`
  }))
}

export async function verifyFleet (input: VerificationInput, apiKey: string): Promise<VerificationResult> {
  const mismatches: Mismatch[] = []
  let uplinksChecked = 0
  const from = new Date(input.fromMs - 10 * 60_000).toISOString()
  await inParallel(Object.entries(input.uplinks), 16, async ([vin, ids]) => {
    const counts = new Map<string, number>()
    await logRows<{ messageId: string | null }>(input, apiKey, vin, `direction=up&from=${encodeURIComponent(from)}`, (item) => {
      if (item.messageId !== null) counts.set(item.messageId, (counts.get(item.messageId) ?? 0) + 1)
    })
    for (const id of ids) {
      uplinksChecked++
      const n = counts.get(id) ?? 0
      if (n === 0) mismatches.push({ kind: 'uplink-missing', vin, messageId: id, detail: 'acknowledged by the gateway but not recorded' })
      else if (n > 1) mismatches.push({ kind: 'uplink-duplicate', vin, messageId: id, detail: `recorded ${n} times` })
    }
  })
  const finalStatus = new Map<string, { status: string, ackStatus: string | null }>()
  await inParallel(input.downlinks, 16, async (d) => {
    const res = await getJson(input.apiUrl, apiKey, `/v1/messages/${d.id}`)
    if (res.status !== 200) {
      mismatches.push({ kind: 'downlink-unknown', vin: d.vin, messageId: d.id, detail: `GET /v1/messages answered ${res.status}` })
      return
    }
    const m = res.body as { status: string, ackStatus: string | null }
    finalStatus.set(d.id, m)
    if (d.vehicleOnline && m.status !== 'acknowledged') {
      mismatches.push({ kind: 'downlink-status', vin: d.vin, messageId: d.id, detail: `${m.status}, but the vehicle stayed online: expected acknowledged` })
    } else if (!PENDING_OK.has(m.status)) {
      mismatches.push({ kind: 'downlink-status', vin: d.vin, messageId: d.id, detail: `status ${m.status}` })
    } else if (m.status === 'acknowledged' && d.answer !== null && m.ackStatus !== d.answer) {
      mismatches.push({ kind: 'downlink-ack-status', vin: d.vin, messageId: d.id, detail: `ackStatus ${String(m.ackStatus)}, the vehicle answered ${d.answer}` })
    }
  })
  mismatches.push(...await checkSentRows(input, apiKey, from, finalStatus))
  let feed: VerificationResult['feed'] = null
  if (typeof input.feedAfter === 'string') {
    const { mismatches: inFeed, ...read } = await checkFeed({ ...input, after: input.feedAfter, finalStatus }, apiKey)
    mismatches.push(...inFeed)
    feed = read
  }
  return { ok: mismatches.length === 0, uplinksChecked, downlinksChecked: input.downlinks.length, mismatches, feed }
}
