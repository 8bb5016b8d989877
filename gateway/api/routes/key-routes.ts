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
const byName = (name: string) => (k: ApiKeyInfo): boolean => k.name === name
const byId = (id: string) => (k: ApiKeyInfo): boolean => k.id === id

function view (k: ApiKeyInfo): Record<string, unknown> {
  return { id: k.id, name: k.name, scopes: k.scopes, createdAt: iso(k.createdAt), lastUsedAt: iso(k.lastUsedAt), expiresAt: iso(k.expiresAt), revokedAt: iso(k.revokedAt) }
}

/**
 * Over REST a key hands out, rotates and revokes only keys whose every scope it holds itself:
 * `admin` cannot mint a `legal` key, rotate one into its hands, or revoke one (the legal team's
 * access is not the admins' to take away). The database's functions refuse the same (migration 0013).
 */
function requireGrantable (request: FastifyRequest, scopes: readonly Scope[], what: string): void {
  const held = request.apiKey?.scopes ?? []
  const beyond = [...new Set(scopes.filter((s) => !grants(held, s)))]
  if (beyond.length > 0) throw new GatewayError('GW_ERR_FORBIDDEN', `this key cannot ${what} of the scope(s) ${beyond.join(', ')}: admin does not include legal; use vgw keys on the server, or a key that holds them`)
}

const nameSchema = { type: 'string', minLength: 1, maxLength: 200 } as const

/** API keys over REST (scope `admin`): list, create, revoke, rotate; every change audited with the acting key's id, by the database. */
export async function keyRoutes (app: FastifyInstance, deps: KeyRoutesDeps): Promise<void> {
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
    requireGrantable(request, scopes, 'hand out keys')
    const expiresAt = expires === undefined ? null : new Date(deps.now() + parseLifetime('body.expires', expires))
    const created = await deps.store.apiKeys.create(name, scopes, actorOf(request), expiresAt)
    await deps.changed({ revoked: [] })
    return reply.code(201).send({ ...created, expiresAt: iso(created.expiresAt) })
  })

  app.delete<{ Params: { id: string } }>('/v1/keys/:id', {
    config: { scope: 'admin' },
    schema: { summary: 'Revoke one API key', params: { type: 'object', required: ['id'], properties: { id: { type: 'string' } } } }
  }, async (request) => {
    const { id } = request.params
    if (isUuid(id)) requireGrantable(request, (await deps.store.apiKeys.list()).filter(byId(id)).flatMap((k) => k.scopes), 'revoke keys')
    const revoked = isUuid(id) ? await deps.store.apiKeys.revokeById(id, actorOf(request)) : null
    if (revoked === null) throw new GatewayError('GW_ERR_API_KEY_NOT_FOUND', `no live API key ${id.slice(0, 40)}`)
    await deps.changed({ revoked: [revoked.id] })
    return { revoked: [view(revoked)] }
  })

  app.delete<{ Querystring: { name: string } }>('/v1/keys', {
    config: { scope: 'admin' },
    schema: { summary: 'Revoke every API key of a name', querystring: { type: 'object', required: ['name'], additionalProperties: false, properties: { name: nameSchema } } }
  }, async (request) => {
    const { name } = request.query
    requireGrantable(request, (await deps.store.apiKeys.list()).filter(byName(name)).flatMap((k) => k.scopes), 'revoke keys')
    const revoked = await deps.store.apiKeys.revokeByName(name, actorOf(request))
    if (revoked.length === 0) throw new GatewayError('GW_ERR_API_KEY_NOT_FOUND', `no live API key named ${JSON.stringify(name.slice(0, 40))}`)
    await deps.changed({ revoked: revoked.map((k) => k.id) })
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
    requireGrantable(request, (await deps.store.apiKeys.list()).filter(byName(name)).flatMap((k) => k.scopes), 'rotate keys')
    const rotated = await deps.store.apiKeys.rotate(name, graceMs, actorOf(request), expiresAt)
    if (rotated === null) throw new GatewayError('GW_ERR_API_KEY_NOT_FOUND', `no live API key named ${JSON.stringify(name.slice(0, 40))}`)
    await deps.changed({ revoked: [] })
    return reply.code(201).send({ ...rotated.created, expiresAt: iso(rotated.created.expiresAt), previous: rotated.previous.map((p) => ({ id: p.id, expiresAt: iso(p.expiresAt) })) })
  })
}
