import type { FastifyReply, FastifyRequest } from 'fastify'
import { grants, type Actor, type ApiKeyIdentity, type Scope } from '../../store/index.ts'
import { sendError } from './api-errors.ts'
import type { ApiKeyCache } from './key-cache.ts'
import type { KeyUsage } from './key-usage.ts'
import type { RateLimits } from './rate-limits.ts'

declare module 'fastify' {
  interface FastifyRequest {
    apiKey: ApiKeyIdentity | null
  }
  interface FastifyContextConfig {
    /** The scope a route needs; `admin` holds every scope but `legal`. Routes without one are public. */
    scope?: Scope
  }
}

// The only route where a key may travel in the URL: a browser cannot set headers on a WebSocket.
// Anywhere else a URL (and so the key) ends up in proxies' and browsers' logs and histories.
const TOKEN_ROUTES = new Set(['/v1/stream'])

/** The key in the request, or null; `?token=` outside the stream is refused (`tokenInUrl`). */
function presentedKey (request: FastifyRequest): { key: string | null, tokenInUrl: boolean } {
  const header = request.headers.authorization
  if (typeof header === 'string') {
    const match = /^Bearer\s+(\S+)\s*$/i.exec(header)
    return { key: match?.[1] ?? null, tokenInUrl: false }
  }
  const token = (request.query as Record<string, unknown> | undefined)?.token
  if (typeof token !== 'string' || token === '') return { key: null, tokenInUrl: false }
  if (request.routeOptions.url !== undefined && TOKEN_ROUTES.has(request.routeOptions.url)) return { key: token, tokenInUrl: false }
  return { key: null, tokenInUrl: true }
}

/**
 * Who acts in a request, for the audit trail: the key, by id (names are not unique); the database
 * writes its name from its own row. Only scoped routes audit, and they always have a key.
 */
export function actorOf (request: FastifyRequest): Actor {
  const key = request.apiKey
  if (key === null) throw new Error('actorOf: an audited route without an API key')
  return { keyId: key.id, name: key.name }
}

// Load balancers probe these; they are never limited.
const UNLIMITED = new Set(['/health', '/ready'])

export interface BearerAuthDeps {
  keys: ApiKeyCache
  limits: RateLimits
  /** Notes each authenticated request's key for "last used" (written in batches). */
  usage?: KeyUsage
  now?: () => number
}

/**
 * onRequest hook: rate limits, then 401 without a valid key, 403 without the route's scope.
 * A valid key (in the in-memory snapshot, key-cache.ts) is counted against its own limit only,
 * never against the address budget that unauthenticated traffic from its address uses up;
 * every other request is counted per source address first, so a flood of made-up tokens meets
 * 429 before it could make the snapshot be read again.
 */
export function bearerAuth (deps: BearerAuthDeps) {
  return async function authenticate (request: FastifyRequest, reply: FastifyReply): Promise<void> {
    if (request.routeOptions.url !== undefined && UNLIMITED.has(request.routeOptions.url)) return
    const { key, tokenInUrl } = presentedKey(request)
    const known = key !== null ? await deps.keys.known(key) : undefined
    if (known !== undefined) {
      request.apiKey = known
      await deps.limits.perKey(request, reply)
    } else {
      await deps.limits.perAddress(request, reply)
    }
    const scope = request.routeOptions.config.scope
    if (scope === undefined) return
    if (key === null) {
      await sendError(reply, 'GW_ERR_UNAUTHENTICATED', tokenInUrl
        ? '?token= is accepted on /v1/stream only; send "Authorization: Bearer <api key>"'
        : 'send "Authorization: Bearer <api key>"')
      return reply
    }
    const identity = known ?? await deps.keys.lookup(key)
    if (identity === null) {
      await sendError(reply, 'GW_ERR_UNAUTHENTICATED', 'the API key is unknown, revoked or expired')
      return reply
    }
    deps.usage?.note(identity.id, new Date((deps.now ?? Date.now)()))
    if (known === undefined) {
      request.apiKey = identity
      await deps.limits.perKey(request, reply)
    }
    if (!grants(identity.scopes, scope)) {
      await sendError(reply, 'GW_ERR_FORBIDDEN', `this call needs the scope "${scope}"${scope === 'legal' ? ' (admin does not include it)' : ''}`)
      return reply
    }
  }
}
