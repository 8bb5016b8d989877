import type { FastifyInstance } from 'fastify'
import type { Telemetry } from '../../metrics/telemetry.ts'

export interface MetricsRouteDeps {
  telemetry: Telemetry
}

/** GET /metrics in the Prometheus text format; Prometheus sends an API key with `metrics:read` as its bearer token. */
export async function metricsRoutes (app: FastifyInstance, deps: MetricsRouteDeps): Promise<void> {
  app.get('/metrics', { config: { scope: 'metrics:read' }, schema: { hide: true } }, async (_request, reply) => {
    const body = await deps.telemetry.scrape()
    return reply.type(deps.telemetry.contentType).send(body)
  })
}
