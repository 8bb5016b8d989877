import type { FastifyInstance } from 'fastify'
import { GatewayError } from '../../../protocol/index.ts'
import type { Direction, Store } from '../../../store/index.ts'
import type { ConnectionRegistry } from '../../edge/connections.ts'
import { transactionView } from '../views.ts'
import { parseTime, requireVin } from '../request-values.ts'

export interface VehicleRoutesDeps {
  store: Store
  connections: ConnectionRegistry
  now: () => number
  /** Cluster mode: a vehicle may be connected to another gateway, as the database records. */
  clustered: boolean
}

const vinParams = {
  type: 'object',
  required: ['vin'],
  properties: { vin: { type: 'string' } }
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
    const created = await deps.store.vehicles.register(vin, request.body.market, new Date(deps.now()))
    return reply.code(created ? 201 : 200).send({ vin, market: request.body.market, registered: true, created })
  })

  app.get<{
    Params: { vin: string }
    Querystring: { from?: string, to?: string, kind?: string, direction?: Direction, limit?: number, cursor?: string }
  }>('/v1/vehicles/:vin/transactions', {
    config: { scope: 'transactions:read' },
    schema: {
      summary: 'The vehicle\'s transaction log, newest first, with cursor paging',
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
          token: { type: 'string' }
        }
      }
    }
  }, async (request) => {
    const { vin } = request.params
    requireVin(vin)
    const q = request.query
    const page = await deps.store.transactions.listForVehicle({
      vin,
      limit: q.limit ?? 100,
      ...(q.from !== undefined ? { from: parseTime('from', q.from) } : {}),
      ...(q.to !== undefined ? { to: parseTime('to', q.to) } : {}),
      ...(q.kind !== undefined ? { kind: q.kind } : {}),
      ...(q.direction !== undefined ? { direction: q.direction } : {}),
      ...(q.cursor !== undefined ? { cursor: q.cursor } : {})
    })
    return { items: page.items.map(transactionView), nextCursor: page.nextCursor }
  })
}
