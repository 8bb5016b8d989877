import { createHash, randomBytes } from 'node:crypto'
import type pg from 'pg'
import { actorArgs, type Actor } from './actor.ts'
import { translateError } from './store-errors.ts'

// The database checks scopes against the same list (vgw_valid_scopes, migration 0013): a new scope needs a migration too.
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

// `vgw_` and 32 random bytes in base64url (see newKey): anything else cannot be a key.
const KEY_SHAPE = /^vgw_[A-Za-z0-9_-]{43}$/

/** Whether a presented token could be a vgw key at all; one that cannot is refused without a lookup. */
export function isApiKeyShaped (key: string): boolean {
  return KEY_SHAPE.test(key)
}

function newKey (): string {
  return `vgw_${randomBytes(32).toString('base64url')}`
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

  /**
   * A new key, through the owner-run vgw_create_api_key (migration 0013): the database checks the
   * scopes against what the acting key may hand out and writes the key.create audit row.
   */
  async create (name: string, scopes: readonly Scope[], by: Actor, expiresAt: Date | null = null): Promise<CreatedApiKey> {
    const key = newKey()
    const rows = await this.#q<KeyRow>(this.#pool, `SELECT ${COLUMNS} FROM vgw_create_api_key($1, $2, $3, $4, $5, $6, $7)`,
      [this.#newId(), name, hashKey(key), [...scopes], expiresAt, ...actorArgs(by)])
    const row = rows[0] as KeyRow
    return { id: row.id, name: row.name, scopes: row.scopes.filter(isScope), expiresAt: row.expires_at, key }
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

  /**
   * Revokes one key; null when there is no such live key. GW_ERR_FORBIDDEN when the acting key
   * could not hand out every scope of it (`admin` cannot revoke a `legal` key).
   */
  async revokeById (id: string, by: Actor): Promise<ApiKeyInfo | null> {
    const rows = await this.#q<KeyRow>(this.#pool, `SELECT ${COLUMNS} FROM vgw_revoke_api_keys($1, NULL, $2, $3)`, [id, ...actorArgs(by)])
    return rows[0] === undefined ? null : info(rows[0])
  }

  /** Revokes every live key of that name (names are not unique), all or none (as revokeById). */
  async revokeByName (name: string, by: Actor): Promise<ApiKeyInfo[]> {
    return (await this.#q<KeyRow>(this.#pool, `SELECT ${COLUMNS} FROM vgw_revoke_api_keys(NULL, $1, $2, $3)`, [name, ...actorArgs(by)])).map(info)
  }

  /**
   * A new secret for the keys of that name: one new key with the scopes of the newest, and the
   * old ones expire `graceMs` from now (sooner if they expired sooner anyway). The new key lives
   * as long as the newest old one was meant to, unless `expiresAt` says otherwise. Null when no
   * live key has that name. The owner-run vgw_rotate_api_keys does it and writes key.rotate.
   */
  async rotate (name: string, graceMs: number, by: Actor, expiresAt?: Date | null): Promise<RotatedApiKey | null> {
    const key = newKey()
    const id = this.#newId()
    const rows = await this.#q<KeyRow>(this.#pool, `SELECT ${COLUMNS} FROM vgw_rotate_api_keys($1, $2, $3, $4, $5, $6, $7, $8)`,
      [name, id, hashKey(key), graceMs, expiresAt !== undefined, expiresAt ?? null, ...actorArgs(by)])
    const created = rows.find((r) => r.id === id)
    if (created === undefined) return null
    return {
      created: { id, name, scopes: created.scopes.filter(isScope), expiresAt: created.expires_at, key },
      previous: rows.filter((r) => r.id !== id).map((p) => ({ id: p.id, expiresAt: p.expires_at as Date }))
    }
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
