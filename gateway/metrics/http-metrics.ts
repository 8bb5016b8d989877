import type { FastifyInstance } from 'fastify'
import type { GatewayMetrics } from './gateway-metrics.ts'

/**
 * REST requests by route pattern (never the URL: it holds VINs and ids), method and status, and
 * the request id every response carries (`x-request-id`, the `requestId` of the request's log lines).
 */
export function installHttpMetrics (app: FastifyInstance, m: GatewayMetrics): void {
  app.addHook('onRequest', async (request, reply) => {
    reply.header('x-request-id', request.id)
  })
  app.addHook('onResponse', async (request, reply) => {
    const route = request.routeOptions.url ?? 'unmatched'
    const method = request.method
    m.httpRequests.inc({ route, method, status: String(reply.statusCode) })
    m.httpSeconds.observe({ route, method }, reply.elapsedTime / 1000)
    if (reply.statusCode === 429) m.rateLimited.inc()
  })
}
