import rateLimit from '@fastify/rate-limit'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { GatewayError } from '../../protocol/index.ts'

/** A limiter: resolves when the request may go on, rejects with GW_ERR_RATE_LIMITED (and sets Retry-After) past the limit. */
export type Limiter = (request: FastifyRequest, reply: FastifyReply) => Promise<void>

export interface RateLimits {
  /** Requests that carry a valid API key, counted per key. */
  perKey: Limiter
  /** Requests without a (known) valid key, counted per source address, before any key lookup. */
  perAddress: Limiter
}

/**
 * Per-second windows from @fastify/rate-limit (its in-memory store, so per gateway process).
 * The plugin's own hooks are off (global: false): the bearer hook decides which limiter a
 * request meets, so that a made-up token is counted before it could cost a database query.
 */
export async function installRateLimits (app: FastifyInstance, limits: { perKey: number, perAddress: number }): Promise<RateLimits> {
  await app.register(rateLimit, { global: false, cache: 10_000 })
  const byKey = app.createRateLimit({ max: limits.perKey, timeWindow: 1000, keyGenerator: (request) => `key:${request.apiKey?.id ?? ''}` })
  const byAddress = app.createRateLimit({ max: limits.perAddress, timeWindow: 1000 })
  const limiter = (check: typeof byKey, what: string): Limiter => async (request, reply) => {
    const state = await check(request)
    if (state.isAllowed || !state.isExceeded) return
    const after = Math.max(1, state.ttlInSeconds)
    void reply.header('retry-after', after)
    throw new GatewayError('GW_ERR_RATE_LIMITED', `more than ${state.max} requests per second ${what}; retry after ${after} s`)
  }
  return { perKey: limiter(byKey, 'for this API key'), perAddress: limiter(byAddress, 'from this address without a valid API key') }
}
