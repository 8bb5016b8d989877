import type { FastifyInstance } from 'fastify'
import { decodeFeedCursor, encodeFeedCursor, type FeedPage, type Store } from '../../../store/index.ts'
import { eventOf } from '../../events/event-hub.ts'

export interface FeedRoutesDeps {
  store: Store
  /** VGW_PAGE_MAX_BYTES: a page ends before its items pass this many bytes (it holds one item at least). */
  pageMaxBytes: number
  /** VGW_EVENT_PAYLOAD_MAX_BYTES: with include=payload, envelopes up to this size carry their payload. */
  payloadMaxBytes: number
}

interface FeedQuerystring {
  after?: string
  vin?: string
  kind?: string
  type?: string
  limit?: number
  include?: 'payload'
  token?: string
}

/** GET /v1/events: the durable feed, read from the log (README, "Integrating a backend"). */
export async function feedRoutes (app: FastifyInstance, deps: FeedRoutesDeps): Promise<void> {
  app.get<{ Querystring: FeedQuerystring }>('/v1/events', {
    config: { scope: 'stream:read' },
    schema: {
      summary: 'The durable feed: committed log events in commit-safe order, resumable with a cursor',
      description: 'Answers `{items, nextCursor, more}`. Store `nextCursor` and pass it as `after` to go on; ' +
        '`more` is true when the read stopped at its bound rather than at the head of the feed. At least once, ordered per vehicle.',
      querystring: {
        type: 'object',
        additionalProperties: false,
        properties: {
          after: { type: 'string', maxLength: 200, description: 'a nextCursor or an event\'s cursor; unset: from the oldest event kept' },
          vin: { type: 'string', maxLength: 17 },
          kind: { type: 'string', maxLength: 32 },
          type: { type: 'string', maxLength: 128 },
          limit: { type: 'integer', minimum: 1, maximum: 1000, default: 100 },
          include: { type: 'string', enum: ['payload'], description: 'payload: each event carries payloadBase64 when its envelope is at most VGW_EVENT_PAYLOAD_MAX_BYTES (else payloadOmitted: true)' },
          token: { type: 'string' }
        }
      }
    }
  }, async (request, reply) => {
    const q = request.query
    const page = await deps.store.feed.read({
      after: q.after === undefined ? null : decodeFeedCursor(q.after),
      limit: q.limit ?? 100,
      ...(q.vin !== undefined ? { vin: q.vin } : {}),
      ...(q.kind !== undefined ? { kind: q.kind } : {}),
      ...(q.type !== undefined ? { type: q.type } : {}),
      ...(q.include === 'payload' ? { payloadMaxBytes: deps.payloadMaxBytes } : {})
    })
    return await reply.type('application/json; charset=utf-8').send(pageBody(page, deps.pageMaxBytes, q.include === 'payload' ? deps.payloadMaxBytes : undefined))
  })
}

/**
 * The page's JSON, each event serialised once: items are added while the body stays within
 * `maxBytes` (one at least); a page cut short names the last item it holds as its cursor and says `more`.
 */
function pageBody (page: FeedPage, maxBytes: number, payloadMaxBytes: number | undefined): string {
  const parts: string[] = []
  let bytes = 64
  let last: FeedPage['items'][number] | null = null
  for (const item of page.items) {
    const json = JSON.stringify(eventOf(item, payloadMaxBytes))
    const size = Buffer.byteLength(json) + 1
    if (parts.length > 0 && bytes + size > maxBytes) break
    parts.push(json)
    bytes += size
    last = item
  }
  const cut = last !== null && parts.length < page.items.length
  const next = last !== null && cut ? encodeFeedCursor({ xid: last.xid ?? page.next.xid, id: last.id }) : encodeFeedCursor(page.next)
  return `{"items":[${parts.join(',')}],"nextCursor":${JSON.stringify(next)},"more":${String(cut || page.more)}}`
}
