import type { FastifyReply, FastifyRequest } from 'fastify'
import type { ApiKeyIdentity, Scope } from '../../store/index.ts'
import { sendError } from './api-errors.ts'
import type { ApiKeyCache } from './key-cache.ts'
import type { RateLimits } from './rate-limits.ts'

declare module 'fastify' {
  interface FastifyRequest {
    apiKey: ApiKeyIdentity | null
  }
  interface FastifyContextConfig {
    /** The scope a route needs; `admin` holds every scope. Routes without one are public. */
    scope?: Scope
  }
}

/** Reads the bearer key from the Authorization header, or from `?token=` where a browser WebSocket cannot set headers. */
function presentedKey (request: FastifyRequest): string | null {
  const header = request.headers.authorization
  if (typeof header === 'string') {
    const match = /^Bearer\s+(\S+)\s*$/i.exec(header)
    return match?.[1] ?? null
  }
  const token = (request.query as Record<string, unknown> | undefined)?.token
  return typeof token === 'string' && token !== '' ? token : null
}

// Load balancers probe these; they are never limited.
const UNLIMITED = new Set(['/health', '/ready'])

export interface BearerAuthDeps {
  keys: ApiKeyCache
  limits: RateLimits
}

/**
 * onRequest hook: rate limits, then 401 without a valid key, 403 without the route's scope.
 * A key already known valid (cached) is counted against its own limit; every other request
 * is counted per source address first, so a flood of made-up tokens meets 429 before it
 * could reach the key lookup (which the cache and the key-shape check keep off the database).
 */
export function bearerAuth (deps: BearerAuthDeps) {
  return async function authenticate (request: FastifyRequest, reply: FastifyReply): Promise<void> {
    if (request.routeOptions.url !== undefined && UNLIMITED.has(request.routeOptions.url)) return
    const key = presentedKey(request)
    const known = key !== null ? deps.keys.known(key) : undefined
    if (known !== undefined) {
      request.apiKey = known
      await deps.limits.perKey(request, reply)
    } else {
      await deps.limits.perAddress(request, reply)
    }
    const scope = request.routeOptions.config.scope
    if (scope === undefined) return
    if (key === null) {
      await sendError(reply, 'GW_ERR_UNAUTHENTICATED', 'send "Authorization: Bearer <api key>"')
      return reply
    }
    const identity = known ?? await deps.keys.lookup(key)
    if (identity === null) {
      await sendError(reply, 'GW_ERR_UNAUTHENTICATED', 'the API key is unknown or revoked')
      return reply
    }
    if (known === undefined) {
      request.apiKey = identity
      await deps.limits.perKey(request, reply)
    }
    if (!identity.scopes.includes(scope) && !identity.scopes.includes('admin')) {
      await sendError(reply, 'GW_ERR_FORBIDDEN', `this call needs the scope "${scope}"`)
      return reply
    }
  }
}
