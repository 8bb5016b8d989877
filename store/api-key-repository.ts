import { createHash, randomBytes } from 'node:crypto'
import type pg from 'pg'
import { inTransaction } from './in-transaction.ts'
import { translateError } from './store-errors.ts'

export const SCOPES = ['messages:send', 'messages:read', 'transactions:read', 'vehicles:read', 'stream:read', 'legal', 'metrics:read', 'admin'] as const
export type Scope = typeof SCOPES[number]

export function isScope (value: string): value is Scope {
  return (SCOPES as readonly string[]).includes(value)
}

/**
 * Whether a key with these scopes may make a call that needs `scope`. `admin` holds every
 * scope except `legal`: holds and exports are a separate duty (README, "Security").
 */
export function grants (scopes: readonly Scope[], scope: Scope): boolean {
  return scopes.includes(scope) || (scope !== 'legal' && scopes.includes('admin'))
}

export interface ApiKeyIdentity {
  id: string
  name: string
  scopes: Scope[]
  /** null: never expires. */
  expiresAt: Date | null
}

export interface CreatedApiKey extends ApiKeyIdentity {
  /** The secret: shown once, only its SHA-256 is stored. */
  key: string
}

/** What `vgw keys list` and `GET /v1/keys` show: never the secret nor its hash. */
export interface ApiKeyInfo extends ApiKeyIdentity {
  createdAt: Date
  lastUsedAt: Date | null
  revokedAt: Date | null
}

export interface RotatedApiKey {
  created: CreatedApiKey
  /** The keys replaced, each valid until its new expiry (the end of the grace period). */
  previous: Array<{ id: string, expiresAt: Date }>
}

// `vgw_` and 32 random bytes in base64url (see create): anything else cannot be a key.
const KEY_SHAPE = /^vgw_[A-Za-z0-9_-]{43}$/

/** Whether a presented token could be a vgw key at all; one that cannot is refused without a lookup. */
export function isApiKeyShaped (key: string): boolean {
  return KEY_SHAPE.test(key)
}

/** What the database keeps of a key: its SHA-256, hex. */
export function hashKey (key: string): string {
  return createHash('sha256').update(key).digest('hex')
}

/** A live key as an in-memory snapshot holds it (gateway/api/key-cache.ts): its hash and identity, never the secret. */
export interface LiveApiKey {
  keyHash: string
  identity: ApiKeyIdentity
}

interface KeyRow { id: string, name: string, scopes: string[], expires_at: Date | null, created_at: Date, last_used_at: Date | null, revoked_at: Date | null }

function info (r: KeyRow): ApiKeyInfo {
  return { id: r.id, name: r.name, scopes: r.scopes.filter(isScope), expiresAt: r.expires_at, createdAt: r.created_at, lastUsedAt: r.last_used_at, revokedAt: r.revoked_at }
}

const COLUMNS = 'id, name, scopes, expires_at, created_at, last_used_at, revoked_at'
// A key is live while neither revoked nor past its expiry, by the database's clock (one clock for every gateway).
const LIVE = 'revoked_at IS NULL AND (expires_at IS NULL OR expires_at > now())'

export class ApiKeyRepository {
  readonly #pool: pg.Pool
  readonly #newId: () => string

  constructor (pool: pg.Pool, newId: () => string) {
    this.#pool = pool
    this.#newId = newId
  }

  async #q<R extends pg.QueryResultRow> (client: pg.Pool | pg.PoolClient, text: string, params: unknown[] = []): Promise<R[]> {
    try {
      return (await client.query<R>(text, params)).rows
    } catch (err) {
      throw translateError(err)
    }
  }

  async #insert (client: pg.Pool | pg.PoolClient, name: string, scopes: readonly Scope[], expiresAt: Date | null): Promise<CreatedApiKey> {
    const key = `vgw_${randomBytes(32).toString('base64url')}`
    const id = this.#newId()
    await this.#q(client, 'INSERT INTO api_keys (id, name, key_hash, scopes, expires_at) VALUES ($1, $2, $3, $4, $5)', [id, name, hashKey(key), [...scopes], expiresAt])
    return { id, name, scopes: [...scopes], expiresAt, key }
  }

  async create (name: string, scopes: readonly Scope[], expiresAt: Date | null = null): Promise<CreatedApiKey> {
    return await this.#insert(this.#pool, name, scopes, expiresAt)
  }

  /** The key's identity, or null when the key is unknown, revoked or expired. */
  async verify (key: string): Promise<ApiKeyIdentity | null> {
    if (!isApiKeyShaped(key)) return null
    const rows = await this.#q<KeyRow>(this.#pool, `SELECT ${COLUMNS} FROM api_keys WHERE key_hash = $1 AND ${LIVE} LIMIT 1`, [hashKey(key)])
    const row = rows[0]
    return row === undefined ? null : { id: row.id, name: row.name, scopes: row.scopes.filter(isScope), expiresAt: row.expires_at }
  }

  /** Every live key's hash and identity, in one statement (a snapshot of the table's live rows). */
  async liveKeys (): Promise<LiveApiKey[]> {
    const rows = await this.#q<KeyRow & { key_hash: string }>(this.#pool, `SELECT key_hash, ${COLUMNS} FROM api_keys WHERE ${LIVE}`)
    return rows.map((r) => ({ keyHash: r.key_hash, identity: { id: r.id, name: r.name, scopes: r.scopes.filter(isScope), expiresAt: r.expires_at } }))
  }

  /** Every key, newest first; revoked and expired ones only with `all`. */
  async list (all = false): Promise<ApiKeyInfo[]> {
    return (await this.#q<KeyRow>(this.#pool, `SELECT ${COLUMNS} FROM api_keys ${all ? '' : `WHERE ${LIVE}`} ORDER BY created_at DESC, id DESC`)).map(info)
  }

  /** Revokes one key; null when there is no such live key. */
  async revokeById (id: string): Promise<ApiKeyInfo | null> {
    const rows = await this.#q<KeyRow>(this.#pool, `UPDATE api_keys SET revoked_at = now() WHERE id = $1 AND ${LIVE} RETURNING ${COLUMNS}`, [id])
    return rows[0] === undefined ? null : info(rows[0])
  }

  /** Revokes every live key of that name (names are not unique). */
  async revokeByName (name: string): Promise<ApiKeyInfo[]> {
    return (await this.#q<KeyRow>(this.#pool, `UPDATE api_keys SET revoked_at = now() WHERE name = $1 AND ${LIVE} RETURNING ${COLUMNS}`, [name])).map(info)
  }

  /**
   * A new secret for the keys of that name: one new key with the scopes of the newest, and the
   * old ones expire `graceMs` from now (sooner if they expired sooner anyway). The new key lives
   * as long as the newest old one was meant to, unless `expiresAt` says otherwise. Null when no
   * live key has that name.
   */
  async rotate (name: string, graceMs: number, expiresAt?: Date | null): Promise<RotatedApiKey | null> {
    return await inTransaction(this.#pool, async (client) => {
      const live = await this.#q<KeyRow>(client, `SELECT ${COLUMNS} FROM api_keys WHERE name = $1 AND ${LIVE} ORDER BY created_at DESC, id DESC FOR UPDATE`, [name])
      const newest = live[0]
      if (newest === undefined) return null
      const lifetime = newest.expires_at === null ? null : newest.expires_at.getTime() - newest.created_at.getTime()
      const now = (await this.#q<{ now: Date }>(client, 'SELECT now() AS now'))[0]?.now ?? new Date()
      const until = expiresAt !== undefined ? expiresAt : lifetime === null ? null : new Date(now.getTime() + lifetime)
      const created = await this.#insert(client, name, newest.scopes.filter(isScope), until)
      const previous = await this.#q<{ id: string, expires_at: Date }>(client,
        `UPDATE api_keys SET expires_at = LEAST(coalesce(expires_at, 'infinity'), now() + $2 * interval '1 millisecond')
          WHERE id = ANY($1::uuid[]) RETURNING id, expires_at`, [live.map((k) => k.id), graceMs])
      return { created, previous: previous.map((p) => ({ id: p.id, expiresAt: p.expires_at })) }
    })
  }

  /** Records when keys were last used: one statement for a batch of keys, never one per request. */
  async touch (lastUsed: ReadonlyMap<string, Date>): Promise<void> {
    if (lastUsed.size === 0) return
    await this.#q(this.#pool, `UPDATE api_keys k SET last_used_at = GREATEST(coalesce(k.last_used_at, u.at), u.at)
      FROM unnest($1::uuid[], $2::timestamptz[]) AS u(id, at) WHERE k.id = u.id`, [[...lastUsed.keys()], [...lastUsed.values()]])
  }

  async count (): Promise<number> {
    return (await this.#q<{ n: number }>(this.#pool, 'SELECT count(*)::int AS n FROM api_keys'))[0]?.n ?? 0
  }
}
