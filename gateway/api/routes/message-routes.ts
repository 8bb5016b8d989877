import type { FastifyInstance } from 'fastify'
import { GatewayError, type EnvelopeLimits } from '../../../protocol/index.ts'
import type { EnqueueResult, NewMessage, Store } from '../../../store/index.ts'
import type { DownlinkMessage } from '../../downlink/dispatcher.ts'
import type { EventHub } from '../../events/event-hub.ts'
import { messageProperties, parseMessage, type MessageInput } from '../message-input.ts'
import { requireMessageId, requireVin } from '../request-values.ts'

export interface MessageRoutesDeps {
  store: Store
  /** Commits one send (group-committed with concurrent ones, send-batcher.ts); resolves once durable. */
  enqueue: (m: NewMessage) => Promise<EnqueueResult | 'vehicle-not-found'>
  hub: EventHub
  /** Hands the dispatcher a message just committed for a vehicle (sent at once when nothing else waits for it). */
  /** A message waits for this vehicle: handed over whole when just committed, or only named (its row is read back). */
  notify: (vin: string, message?: DownlinkMessage) => void
  limits: EnvelopeLimits
  defaultTtlSeconds: number
  maxTtlSeconds: number
  now: () => number
  newId: () => string
}

export async function messageRoutes (app: FastifyInstance, deps: MessageRoutesDeps): Promise<void> {
  app.post<{ Params: { vin: string }, Body: MessageInput, Headers: { 'idempotency-key'?: string } }>('/v1/vehicles/:vin/messages', {
    config: { scope: 'messages:send' },
    schema: {
      summary: 'Send one message to a vehicle',
      description: 'Committed as `queued` before the 202 answer. The same Idempotency-Key from the same API key answers the same id and creates nothing.',
      params: { type: 'object', required: ['vin'], properties: { vin: { type: 'string' } } },
      headers: { type: 'object', properties: { 'idempotency-key': { type: 'string', minLength: 1, maxLength: 200 } } },
      body: { type: 'object', required: ['type', 'payload'], additionalProperties: false, properties: messageProperties(deps.limits, deps.maxTtlSeconds) },
      response: {
        202: { type: 'object', properties: { id: { type: 'string', format: 'uuid' }, status: { type: 'string' } } }
      }
    }
  }, async (request, reply) => {
    const { vin } = request.params
    requireVin(vin)
    const m = parseMessage(request.body, deps.limits, deps.defaultTtlSeconds)
    const id = deps.newId()
    const createdAt = new Date(deps.now())
    const result = await deps.enqueue({
      id,
      vin,
      apiKeyId: request.apiKey?.id ?? null,
      idempotencyKey: request.headers['idempotency-key'] ?? null,
      ...m,
      createdAt,
      logId: deps.newId()
    })
    if (result === 'vehicle-not-found') throw new GatewayError('GW_ERR_VEHICLE_NOT_FOUND', `no vehicle ${vin}: it has never connected; register it with PUT /v1/vehicles/${vin}`)
    request.log.debug({ vin, messageId: result.id, created: result.created, apiKeyId: request.apiKey?.id ?? null }, 'message queued')
    if (result.created) {
      deps.hub.publishRecords(result.logged)
      deps.notify(vin, { id, type: m.type, createdAt, ttlSeconds: m.ttlSeconds, payload: m.payload, attributes: m.attributes })
    } else {
      // A retried send: its first attempt may have committed without reaching the dispatcher.
      deps.notify(vin)
    }
    return reply.code(202).send({ id: result.id, status: result.status })
  })

  app.get<{ Params: { id: string } }>('/v1/messages/:id', {
    config: { scope: 'messages:read' },
    schema: { summary: 'A message: status, ackStatus and the history of its transitions', params: { type: 'object', required: ['id'], properties: { id: { type: 'string' } } } }
  }, async (request) => {
    const { id } = request.params
    requireMessageId(id)
    const m = await deps.store.messages.get(id)
    if (m === null) throw new GatewayError('GW_ERR_MESSAGE_NOT_FOUND', `no message ${id}`)
    const history = await deps.store.messages.history(m.vin, m.id)
    return {
      id: m.id,
      vin: m.vin,
      type: m.type,
      status: m.status,
      ackStatus: m.ackStatus,
      priority: m.priority,
      ttlSeconds: m.ttlSeconds,
      attributes: m.attributes,
      payloadBase64: m.payload.toString('base64'),
      campaignId: m.campaignId,
      createdAt: m.createdAt.toISOString(),
      expiresAt: m.expiresAt.toISOString(),
      sentAt: m.sentAt?.toISOString() ?? null,
      deliveredAt: m.deliveredAt?.toISOString() ?? null,
      acknowledgedAt: m.acknowledgedAt?.toISOString() ?? null,
      finishedAt: m.finishedAt?.toISOString() ?? null,
      fallbackAt: m.fallbackAt?.toISOString() ?? null,
      fallbackDueAt: m.fallbackDueAt?.toISOString() ?? null,
      history: history.map((h) => ({
        status: h.status,
        at: h.occurredAt.toISOString(),
        ...(h.ackStatus !== null ? { ackStatus: h.ackStatus } : {}),
        ...(typeof h.details?.attempt === 'number' ? { attempt: h.details.attempt } : {})
      }))
    }
  })
}
