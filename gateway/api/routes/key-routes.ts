import type { FastifyInstance, FastifyRequest } from 'fastify'
import { GatewayError, isUuid } from '../../../protocol/index.ts'
import { SCOPES, grants, type ApiKeyInfo, type Scope, type Store } from '../../../store/index.ts'
import { actorOf } from '../auth.ts'
import type { KeyChange } from '../key-cache.ts'
import { DEFAULT_ROTATION_GRACE, parseLifetime } from '../key-lifetime.ts'

export interface KeyRoutesDeps {
  store: Store
  now: () => number
  /** A change committed: revoked ids are refused at once here and, through the cluster bus, on every gateway; the key snapshot is read again. */
  changed: (change: KeyChange) => Promise<void>
}

const iso = (d: Date | null): string | null => d?.toISOString() ?? null

function view (k: ApiKeyInfo): Record<string, unknown> {
  return { id: k.id, name: k.name, scopes: k.scopes, createdAt: iso(k.createdAt), lastUsedAt: iso(k.lastUsedAt), expiresAt: iso(k.expiresAt), revokedAt: iso(k.revokedAt) }
}

/** Over REST a key hands out only scopes it holds itself: `admin` cannot mint (or rotate into its hands) a `legal` key. */
function requireGrantable (request: FastifyRequest, scopes: readonly Scope[]): void {
  const held = request.apiKey?.scopes ?? []
  const beyond = scopes.filter((s) => !grants(held, s))
  if (beyond.length > 0) throw new GatewayError('GW_ERR_FORBIDDEN', `this key cannot hand out the scope(s) ${beyond.join(', ')}; use vgw keys on the server, or a key that holds them`)
}

const nameSchema = { type: 'string', minLength: 1, maxLength: 200 } as const

/** API keys over REST (scope `admin`): list, create, revoke, rotate; every change audited with the acting key's id. */
export async function keyRoutes (app: FastifyInstance, deps: KeyRoutesDeps): Promise<void> {
  const audit = async (request: FastifyRequest, action: string, details: Record<string, unknown>): Promise<void> => {
    await deps.store.lifecycle.audit(actorOf(request), action, details, new Date(deps.now()))
  }

  app.get<{ Querystring: { all?: boolean } }>('/v1/keys', {
    config: { scope: 'admin' },
    schema: { summary: 'API keys (never their secrets); revoked and expired ones with all=true', querystring: { type: 'object', additionalProperties: false, properties: { all: { type: 'boolean' } } } }
  }, async (request) => ({ items: (await deps.store.apiKeys.list(request.query.all === true)).map(view), nextCursor: null }))

  app.post<{ Body: { name: string, scopes: Scope[], expires?: string } }>('/v1/keys', {
    config: { scope: 'admin' },
    schema: {
      summary: 'Create an API key; the secret is in this answer only',
      body: {
        type: 'object',
        required: ['name', 'scopes'],
        additionalProperties: false,
        properties: { name: nameSchema, scopes: { type: 'array', minItems: 1, uniqueItems: true, items: { type: 'string', enum: [...SCOPES] } }, expires: { type: 'string', description: 'lifetime, e.g. 90d' } }
      }
    }
  }, async (request, reply) => {
    const { name, scopes, expires } = request.body
    requireGrantable(request, scopes)
    const expiresAt = expires === undefined ? null : new Date(deps.now() + parseLifetime('body.expires', expires))
    const created = await deps.store.apiKeys.create(name, scopes, expiresAt)
    await deps.changed({ revoked: [] })
    await audit(request, 'key.create', { keyId: created.id, name, scopes, expiresAt: iso(expiresAt) })
    return reply.code(201).send({ ...created, expiresAt: iso(created.expiresAt) })
  })

  app.delete<{ Params: { id: string } }>('/v1/keys/:id', {
    config: { scope: 'admin' },
    schema: { summary: 'Revoke one API key', params: { type: 'object', required: ['id'], properties: { id: { type: 'string' } } } }
  }, async (request) => {
    const revoked = isUuid(request.params.id) ? await deps.store.apiKeys.revokeById(request.params.id) : null
    if (revoked === null) throw new GatewayError('GW_ERR_API_KEY_NOT_FOUND', `no live API key ${request.params.id.slice(0, 40)}`)
    await deps.changed({ revoked: [revoked.id] })
    await audit(request, 'key.revoke', { keyIds: [revoked.id], name: revoked.name })
    return { revoked: [view(revoked)] }
  })

  app.delete<{ Querystring: { name: string } }>('/v1/keys', {
    config: { scope: 'admin' },
    schema: { summary: 'Revoke every API key of a name', querystring: { type: 'object', required: ['name'], additionalProperties: false, properties: { name: nameSchema } } }
  }, async (request) => {
    const revoked = await deps.store.apiKeys.revokeByName(request.query.name)
    if (revoked.length === 0) throw new GatewayError('GW_ERR_API_KEY_NOT_FOUND', `no live API key named ${JSON.stringify(request.query.name.slice(0, 40))}`)
    await deps.changed({ revoked: revoked.map((k) => k.id) })
    await audit(request, 'key.revoke', { keyIds: revoked.map((k) => k.id), name: request.query.name })
    return { revoked: revoked.map(view) }
  })

  app.post<{ Body: { name: string, grace?: string, expires?: string } }>('/v1/keys/rotate', {
    config: { scope: 'admin' },
    schema: {
      summary: 'A new secret for the keys of a name; the old ones keep working for the grace period (default 24h)',
      body: { type: 'object', required: ['name'], additionalProperties: false, properties: { name: nameSchema, grace: { type: 'string' }, expires: { type: 'string' } } }
    }
  }, async (request, reply) => {
    const { name, grace, expires } = request.body
    const graceMs = parseLifetime('body.grace', grace ?? DEFAULT_ROTATION_GRACE)
    const expiresAt = expires === undefined ? undefined : new Date(deps.now() + parseLifetime('body.expires', expires))
    const current = (await deps.store.apiKeys.list()).filter((k) => k.name === name)
    requireGrantable(request, current.flatMap((k) => k.scopes))
    const rotated = await deps.store.apiKeys.rotate(name, graceMs, expiresAt)
    if (rotated === null) throw new GatewayError('GW_ERR_API_KEY_NOT_FOUND', `no live API key named ${JSON.stringify(name.slice(0, 40))}`)
    await deps.changed({ revoked: [] })
    await audit(request, 'key.rotate', { keyId: rotated.created.id, name, previous: rotated.previous.map((p) => ({ id: p.id, expiresAt: iso(p.expiresAt) })) })
    return reply.code(201).send({ ...rotated.created, expiresAt: iso(rotated.created.expiresAt), previous: rotated.previous.map((p) => ({ id: p.id, expiresAt: iso(p.expiresAt) })) })
  })
}
