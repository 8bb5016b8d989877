import { randomBytes } from 'node:crypto'
import type { FastifyInstance } from 'fastify'
import { GatewayError, isUuid } from '../../../protocol/index.ts'
import { decodeFeedCursor, encodeFeedCursor, type Store, type Webhook, type WebhookFailure } from '../../../store/index.ts'
import { EVENT_NAMES } from '../../events/event-hub.ts'
import { DestinationPolicy } from '../../webhooks/destination-policy.ts'

export interface WebhookRoutesDeps {
  store: Store
  now: () => number
  newId: () => string
  /** VGW_WEBHOOK_ALLOW: internal destinations allowed all the same. */
  allow: readonly string[]
}

interface WebhookBody {
  url: string
  events?: string[]
  secret?: string
  after?: string
  payload?: boolean
}

// campaign.created is a stream notice, not a log row: the feed, and so a webhook, never carries it.
const WEBHOOK_EVENTS = EVENT_NAMES.filter((e) => e !== 'campaign.created')
const idParams = { type: 'object', required: ['id'], properties: { id: { type: 'string' } } }

function webhookView (w: Webhook): Record<string, unknown> {
  return {
    id: w.id,
    url: w.url,
    events: w.events,
    payload: w.includePayload,
    createdAt: w.createdAt.toISOString(),
    cursor: encodeFeedCursor(w.cursor),
    delivery: w.batch === null
      ? null
      : { deliveryId: w.batch.deliveryId, attempts: w.batch.attempts, lastError: w.batch.lastError, firstAttemptAt: w.batch.firstAttemptAt?.toISOString() ?? null, nextAttemptAt: w.nextAttemptAt.toISOString() },
    ...(w.failureCount !== undefined ? { failureCount: w.failureCount } : {})
  }
}

function failureView (f: WebhookFailure): Record<string, unknown> {
  return {
    id: f.id,
    deliveryId: f.deliveryId,
    fromCursor: encodeFeedCursor(f.from),
    toCursor: encodeFeedCursor(f.to),
    eventCount: f.eventCount,
    attempts: f.attempts,
    lastError: f.lastError,
    failedAt: f.failedAt.toISOString(),
    replayRequestedAt: f.replayRequestedAt?.toISOString() ?? null,
    replayedAt: f.replayedAt?.toISOString() ?? null
  }
}

function notFound (id: string): GatewayError {
  return new GatewayError('GW_ERR_WEBHOOK_NOT_FOUND', `no webhook ${id.slice(0, 40)}`)
}

async function existing (store: Store, id: string): Promise<Webhook> {
  const w = isUuid(id) ? await store.webhooks.get(id) : null
  if (w === null) throw notFound(id)
  return w
}

/** Webhooks (README, "Webhooks"): each delivers the feed's events to one URL, signed, retried, dead-lettered. */
export async function webhookRoutes (app: FastifyInstance, deps: WebhookRoutesDeps): Promise<void> {
  const destinations = new DestinationPolicy(deps.allow)
  app.post<{ Body: WebhookBody }>('/v1/webhooks', {
    config: { scope: 'admin' },
    schema: {
      summary: 'Register a webhook: batches of feed events POSTed to `url`, signed with `secret`',
      description: '`events` lists event names (empty or missing: all). Without `secret` one is generated; it is answered here only. ' +
        'Without `after` (a feed cursor) delivery starts with the events committed from now on.',
      body: {
        type: 'object',
        required: ['url'],
        additionalProperties: false,
        properties: {
          url: { type: 'string', maxLength: 2048, pattern: '^https?://' },
          events: { type: 'array', maxItems: WEBHOOK_EVENTS.length, uniqueItems: true, items: { type: 'string', enum: WEBHOOK_EVENTS } },
          secret: { type: 'string', minLength: 16, maxLength: 256 },
          after: { type: 'string', maxLength: 200 },
          payload: { type: 'boolean', default: false, description: 'events carry payloadBase64 when their envelope is at most VGW_EVENT_PAYLOAD_MAX_BYTES (else payloadOmitted: true)' }
        }
      }
    }
  }, async (request, reply) => {
    const body = request.body
    if (!URL.canParse(body.url)) throw new GatewayError('GW_ERR_VALIDATION', 'body.url is not a URL')
    // A literal address is refused here; a host name is checked on every address it resolves to, when connecting.
    const refused = destinations.refusedLiteral(new URL(body.url))
    if (refused !== null) throw new GatewayError('GW_ERR_WEBHOOK_DESTINATION_FORBIDDEN', `body.url: ${refused}`)
    const secret = body.secret ?? randomBytes(32).toString('base64url')
    const created = await deps.store.webhooks.create({
      id: deps.newId(),
      url: body.url,
      events: body.events ?? [],
      includePayload: body.payload === true,
      secret,
      createdAt: new Date(deps.now()),
      after: body.after === undefined ? null : decodeFeedCursor(body.after)
    })
    return reply.code(201).send({ ...webhookView(created), secret })
  })

  app.get('/v1/webhooks', {
    config: { scope: 'admin' },
    schema: { summary: 'Every webhook with its cursor, the batch it is retrying (if any) and its dead-letter count; never the secret' }
  }, async () => ({ items: (await deps.store.webhooks.list()).map(webhookView) }))

  app.get<{ Params: { id: string } }>('/v1/webhooks/:id', {
    config: { scope: 'admin' },
    schema: { summary: 'One webhook', params: idParams }
  }, async (request) => webhookView(await existing(deps.store, request.params.id)))

  app.delete<{ Params: { id: string } }>('/v1/webhooks/:id', {
    config: { scope: 'admin' },
    schema: { summary: 'Remove a webhook and its dead letters', params: idParams }
  }, async (request, reply) => {
    const { id } = request.params
    if (!isUuid(id) || !await deps.store.webhooks.remove(id)) throw notFound(id)
    return reply.code(204).send()
  })

  app.get<{ Params: { id: string }, Querystring: { limit?: number } }>('/v1/webhooks/:id/failures', {
    config: { scope: 'admin' },
    schema: {
      summary: 'The webhook\'s dead letters, newest first: batches not delivered within the retry period',
      params: idParams,
      querystring: { type: 'object', additionalProperties: false, properties: { limit: { type: 'integer', minimum: 1, maximum: 1000, default: 100 } } }
    }
  }, async (request) => {
    const w = await existing(deps.store, request.params.id)
    return { items: (await deps.store.webhooks.failures(w.id, request.query.limit ?? 100)).map(failureView) }
  })

  app.post<{ Params: { id: string, failureId: string } }>('/v1/webhooks/:id/failures/:failureId/replay', {
    config: { scope: 'admin' },
    schema: {
      summary: 'Deliver a dead letter once more (one attempt, with its delivery id); its `replayedAt` or `lastError` tells how it went',
      params: { type: 'object', required: ['id', 'failureId'], properties: { id: { type: 'string' }, failureId: { type: 'string' } } }
    }
  }, async (request, reply) => {
    const { id, failureId } = request.params
    const f = isUuid(id) && isUuid(failureId) ? await deps.store.webhooks.requestReplay(id, failureId, new Date(deps.now())) : null
    if (f === null) throw new GatewayError('GW_ERR_WEBHOOK_NOT_FOUND', `no dead letter ${failureId.slice(0, 40)} of webhook ${id.slice(0, 40)}`)
    return reply.code(202).send(failureView(f))
  })
}
