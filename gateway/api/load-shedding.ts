import type { FastifyInstance } from 'fastify'
import type { Overload } from '../overload.ts'
import { sendError } from './api-errors.ts'

// Probes and scrapes answer even while the gateway sheds: a balancer and Prometheus must see it.
const NEVER_SHED = new Set(['/health', '/ready', '/metrics'])

/**
 * While the gateway is overloaded, every request but the probes is answered at once with
 * 503 GW_ERR_OVERLOADED and Retry-After, before its key is looked up or its body read, so
 * that a refusal costs next to nothing and the requests already accepted keep their latency
 * (a queue that only grows answers everyone late instead). Installed before the bearer hook.
 */
export function installLoadShedding (app: FastifyInstance, overload: Overload): void {
  app.addHook('onRequest', async (request, reply) => {
    if (request.routeOptions.url !== undefined && NEVER_SHED.has(request.routeOptions.url)) return
    const why = overload.reason()
    if (why === null) return
    void reply.header('retry-after', overload.bounds.retryAfterSeconds)
    await sendError(reply, 'GW_ERR_OVERLOADED', `the gateway is overloaded (${why}); retry after ${overload.bounds.retryAfterSeconds} s`)
    return reply
  })
}
