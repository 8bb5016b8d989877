import type { FastifyInstance } from 'fastify'
import { decodeFeedCursor, encodeFeedCursor, type Store } from '../../../store/index.ts'
import { eventOf } from '../../events/event-hub.ts'

export interface FeedRoutesDeps {
  store: Store
}

interface FeedQuerystring {
  after?: string
  vin?: string
  kind?: string
  type?: string
  limit?: number
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
          token: { type: 'string' }
        }
      }
    }
  }, async (request) => {
    const q = request.query
    const page = await deps.store.feed.read({
      after: q.after === undefined ? null : decodeFeedCursor(q.after),
      limit: q.limit ?? 100,
      ...(q.vin !== undefined ? { vin: q.vin } : {}),
      ...(q.kind !== undefined ? { kind: q.kind } : {}),
      ...(q.type !== undefined ? { type: q.type } : {})
    })
    return { items: page.items.map(eventOf), nextCursor: encodeFeedCursor(page.next), more: page.more }
  })
}
