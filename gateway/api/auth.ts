import type { FastifyReply, FastifyRequest } from 'fastify'
import type { ApiKeyIdentity, Scope, Store } from '../../store/index.ts'
import { sendError } from './api-errors.ts'

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

/** onRequest hook: 401 without a valid key, 403 without the route's scope. */
export function bearerAuth (store: Store) {
  return async function authenticate (request: FastifyRequest, reply: FastifyReply): Promise<void> {
    const scope = request.routeOptions.config.scope
    if (scope === undefined) return
    const key = presentedKey(request)
    if (key === null) {
      await sendError(reply, 'GW_ERR_UNAUTHENTICATED', 'send "Authorization: Bearer <api key>"')
      return reply
    }
    const identity = await store.apiKeys.verify(key)
    if (identity === null) {
      await sendError(reply, 'GW_ERR_UNAUTHENTICATED', 'the API key is unknown or revoked')
      return reply
    }
    if (!identity.scopes.includes(scope) && !identity.scopes.includes('admin')) {
      await sendError(reply, 'GW_ERR_FORBIDDEN', `this call needs the scope "${scope}"`)
      return reply
    }
    request.apiKey = identity
  }
}
