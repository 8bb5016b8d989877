import type { FastifyInstance } from 'fastify'
import { GatewayError } from '../../../protocol/index.ts'
import type { Direction, Store, TransactionRecord } from '../../../store/index.ts'
import type { ConnectionRegistry } from '../../edge/connections.ts'
import { transactionView } from '../views.ts'
import { actorOf } from '../auth.ts'
import { parseTime, requireVin } from '../request-values.ts'

export interface VehicleRoutesDeps {
  store: Store
  connections: ConnectionRegistry
  now: () => number
  /** Cluster mode: a vehicle may be connected to another gateway, as the database records. */
  clustered: boolean
  /** Bytes of one page of items at most; the page ends early past it and its nextCursor goes on. */
  pageMaxBytes: number
}

const vinParams = {
  type: 'object',
  required: ['vin'],
  properties: { vin: { type: 'string' } }
} as const

// `{"items":[` … `],"nextCursor":"…"}` around the items.
const PAGE_FRAME_BYTES = 256

const nullable = (type: string): { type: string[] } => ({ type: [type, 'null'] })

/** For the OpenAPI document: the route sends the page already serialised. */
const transactionPageSchema = {
  type: 'object',
  properties: {
    items: {
      type: 'array',
      items: {
        type: 'object',
        properties: {
          id: { type: 'string', format: 'uuid' },
          vin: nullable('string'),
          market: nullable('string'),
          direction: { type: 'string', enum: ['up', 'down', 'system'] },
          kind: { type: 'string' },
          type: nullable('string'),
          messageId: nullable('string'),
          correlationId: nullable('string'),
          createdAtMs: nullable('integer'),
          ttlSeconds: nullable('integer'),
          attributes: { type: ['object', 'null'], additionalProperties: { type: 'string' } },
          ackStatus: nullable('string'),
          ackReason: nullable('string'),
          status: { type: 'string' },
          errorCode: nullable('string'),
          occurredAt: { type: 'string', format: 'date-time' },
          receivedAt: { type: 'string', format: 'date-time' },
          payloadBase64: { ...nullable('string'), description: 'the envelope\'s payload' },
          rawBase64: { ...nullable('string'), description: 'the envelope bytes as received; only with include=raw' },
          details: { type: ['object', 'null'], additionalProperties: true }
        }
      }
    },
    nextCursor: { ...nullable('string'), description: 'pass as cursor for the next page; null at the end' }
  }
} as const

export async function vehicleRoutes (app: FastifyInstance, deps: VehicleRoutesDeps): Promise<void> {
  app.get<{ Params: { vin: string } }>('/v1/vehicles/:vin', {
    config: { scope: 'vehicles:read' },
    schema: { summary: 'A vehicle: known, connected now, market, pending messages', params: vinParams }
  }, async (request) => {
    const { vin } = request.params
    requireVin(vin)
    const row = await deps.store.vehicles.get(vin)
    if (row === null) throw new GatewayError('GW_ERR_VEHICLE_NOT_FOUND', `no vehicle ${vin} has connected or been registered`)
    const live = deps.connections.get(vin)
    const messages = await deps.store.messages.vehicleSummary(vin, new Date(deps.now()))
    const elsewhere = deps.clustered && row.lastConnectedAt !== null && (row.lastDisconnectedAt === null || row.lastConnectedAt > row.lastDisconnectedAt)
    return {
      vin: row.vin,
      known: true,
      connected: live !== undefined || elsewhere,
      connectedSince: live?.since.toISOString() ?? null,
      market: row.market,
      certFingerprint: row.certFingerprint,
      firstSeenAt: row.firstSeenAt.toISOString(),
      lastSeenAt: live !== undefined ? new Date(deps.now()).toISOString() : row.lastSeenAt?.toISOString() ?? null,
      lastConnectedAt: row.lastConnectedAt?.toISOString() ?? null,
      lastDisconnectedAt: row.lastDisconnectedAt?.toISOString() ?? null,
      registeredAt: row.registeredAt?.toISOString() ?? null,
      pendingMessages: messages.pending,
      lastDeliveryAt: messages.lastDeliveryAt?.toISOString() ?? null
    }
  })

  app.put<{ Params: { vin: string }, Body: { market: string } }>('/v1/vehicles/:vin', {
    config: { scope: 'admin' },
    schema: {
      summary: 'Register a vehicle before it connects, so that messages can be queued for it',
      params: vinParams,
      body: { type: 'object', required: ['market'], additionalProperties: false, properties: { market: { type: 'string', pattern: '^[A-Z]{2}$' } } }
    }
  }, async (request, reply) => {
    const { vin } = request.params
    requireVin(vin)
    const at = new Date(deps.now())
    const created = await deps.store.vehicles.register(vin, request.body.market, at)
    await deps.store.lifecycle.audit(actorOf(request), 'vehicle.register', { vin, market: request.body.market, created })
    return reply.code(created ? 201 : 200).send({ vin, market: request.body.market, registered: true, created })
  })

  app.get<{
    Params: { vin: string }
    Querystring: { from?: string, to?: string, kind?: string, direction?: Direction, limit?: number, cursor?: string, include?: 'raw' }
  }>('/v1/vehicles/:vin/transactions', {
    config: { scope: 'transactions:read' },
    schema: {
      summary: 'The vehicle\'s transaction log, newest first, with cursor paging',
      description: 'A page holds at most `limit` items and at most VGW_PAGE_MAX_BYTES bytes (it ends early past it; `nextCursor` goes on, and a page always holds one item). ' +
        'Items carry `rawBase64`, the envelope bytes as received, only with `include=raw`.',
      params: vinParams,
      querystring: {
        type: 'object',
        additionalProperties: false,
        properties: {
          from: { type: 'string' },
          to: { type: 'string' },
          kind: { type: 'string', maxLength: 32 },
          direction: { type: 'string', enum: ['up', 'down', 'system'] },
          limit: { type: 'integer', minimum: 1, maximum: 1000, default: 100 },
          cursor: { type: 'string', maxLength: 200 },
          include: { type: 'string', enum: ['raw'], description: '`raw`: items carry rawBase64 too' },
          token: { type: 'string' }
        }
      },
      response: { 200: transactionPageSchema }
    }
  }, async (request, reply) => {
    const { vin } = request.params
    requireVin(vin)
    const q = request.query
    const withRaw = q.include === 'raw'
    const items: string[] = []
    let bytes = PAGE_FRAME_BYTES
    const fits = (r: TransactionRecord): boolean => {
      const json = JSON.stringify(transactionView(r, { raw: withRaw }))
      const size = Buffer.byteLength(json) + 1
      if (items.length > 0 && bytes + size > deps.pageMaxBytes) return false
      items.push(json)
      bytes += size
      return true
    }
    const page = await deps.store.transactions.listForVehicle({
      vin,
      limit: q.limit ?? 100,
      ...(q.from !== undefined ? { from: parseTime('from', q.from) } : {}),
      ...(q.to !== undefined ? { to: parseTime('to', q.to) } : {}),
      ...(q.kind !== undefined ? { kind: q.kind } : {}),
      ...(q.direction !== undefined ? { direction: q.direction } : {}),
      ...(q.cursor !== undefined ? { cursor: q.cursor } : {}),
      budget: { maxBytes: deps.pageMaxBytes, withRaw, fits }
    })
    // Each item is serialised once, while it is measured; the page is written from those pieces.
    const body = `{"items":[${items.slice(0, page.items.length).join(',')}],"nextCursor":${JSON.stringify(page.nextCursor)}}`
    return reply.type('application/json; charset=utf-8').send(body)
  })
}
