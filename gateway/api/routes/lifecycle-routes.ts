import type { FastifyInstance } from 'fastify'
import { GatewayError } from '../../../protocol/index.ts'
import type { Store } from '../../../store/index.ts'
import { formatPeriod, parseMarket, parsePeriod } from '../../lifecycle/retention-period.ts'
import { actorOf } from '../auth.ts'
import { requireVin } from '../request-values.ts'
import { exportRoute, type ExportLimits } from './export-route.ts'

export interface LifecycleRoutesDeps {
  store: Store
  now: () => number
  /** Concurrent legal exports; defaults to the export pool's default size. */
  exports?: ExportLimits
}

const actor = actorOf

const vinParams = { type: 'object', required: ['vin'], properties: { vin: { type: 'string' } } } as const

export async function lifecycleRoutes (app: FastifyInstance, deps: LifecycleRoutesDeps): Promise<void> {
  const now = (): Date => new Date(deps.now())

  app.get('/v1/retention', { config: { scope: 'admin' }, schema: { summary: 'Retention policies per market (`*`: every other market)' } }, async () => {
    const items = await deps.store.lifecycle.policies()
    return { items: items.map((p) => ({ market: p.market, period: formatPeriod(p.retentionDays), retentionDays: p.retentionDays, updatedAt: p.updatedAt.toISOString() })), nextCursor: null }
  })

  app.put<{ Params: { market: string }, Body: { period: string } }>('/v1/retention/:market', {
    config: { scope: 'admin' },
    schema: {
      summary: 'Set a market\'s retention period (`default` or `*` for every other market)',
      params: { type: 'object', required: ['market'], properties: { market: { type: 'string' } } },
      body: { type: 'object', required: ['period'], additionalProperties: false, properties: { period: { type: 'string', description: 'e.g. 10y, 18m, 90d' } } }
    }
  }, async (request) => {
    const market = parseMarket(request.params.market)
    const days = parsePeriod(request.body.period)
    await deps.store.lifecycle.setPolicy(market, days, actor(request))
    return { market, period: formatPeriod(days), retentionDays: days }
  })

  app.post('/v1/retention/run', { config: { scope: 'admin' }, schema: { summary: 'Run retention now' } }, async (request) => {
    return await deps.store.lifecycle.runRetention(now(), actor(request))
  })

  app.get('/v1/holds', { config: { scope: 'legal' }, schema: { summary: 'Active legal holds' } }, async () => {
    return { items: await deps.store.lifecycle.holds(true), nextCursor: null }
  })

  app.post<{ Params: { vin: string }, Body: { reason: string } }>('/v1/vehicles/:vin/holds', {
    config: { scope: 'legal' },
    schema: {
      summary: 'Put a vehicle under legal hold: retention removes nothing of it while the hold lasts',
      params: vinParams,
      body: { type: 'object', required: ['reason'], additionalProperties: false, properties: { reason: { type: 'string', minLength: 1, maxLength: 1000 } } }
    }
  }, async (request, reply) => {
    requireVin(request.params.vin)
    return reply.code(201).send(await deps.store.lifecycle.addHold(request.params.vin, request.body.reason, actor(request)))
  })

  app.delete<{ Params: { vin: string }, Querystring: { reason?: string } }>('/v1/vehicles/:vin/holds', {
    config: { scope: 'legal' },
    schema: {
      summary: 'Release every active legal hold of a vehicle',
      params: vinParams,
      querystring: { type: 'object', properties: { reason: { type: 'string', maxLength: 1000 }, token: { type: 'string' } } }
    }
  }, async (request) => {
    requireVin(request.params.vin)
    const released = await deps.store.lifecycle.releaseHolds(request.params.vin, request.query.reason ?? 'released', actor(request))
    if (released === 0) throw new GatewayError('GW_ERR_HOLD_NOT_FOUND', `${request.params.vin} has no active legal hold`)
    return { vin: request.params.vin, released }
  })

  app.get<{ Querystring: { action?: string, limit?: number } }>('/v1/audit', {
    config: { scope: 'legal' },
    schema: {
      summary: 'The audit trail: retention runs, policy changes, holds, exports',
      querystring: { type: 'object', properties: { action: { type: 'string' }, limit: { type: 'integer', minimum: 1, maximum: 1000, default: 100 }, token: { type: 'string' } } }
    }
  }, async (request) => {
    return { items: await deps.store.lifecycle.auditTrail(request.query.limit ?? 100, request.query.action), nextCursor: null }
  })

  exportRoute(app, deps)
}
