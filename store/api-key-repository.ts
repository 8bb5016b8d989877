import { createHash, randomBytes } from 'node:crypto'
import { and, eq, isNull, sql } from 'drizzle-orm'
import type { NodePgDatabase } from 'drizzle-orm/node-postgres'
import { apiKeys } from './schema/tables.ts'
import { translateError } from './store-errors.ts'

export const SCOPES = ['messages:send', 'messages:read', 'transactions:read', 'vehicles:read', 'stream:read', 'legal', 'metrics:read', 'admin'] as const
export type Scope = typeof SCOPES[number]

export function isScope (value: string): value is Scope {
  return (SCOPES as readonly string[]).includes(value)
}

export interface ApiKeyIdentity {
  id: string
  name: string
  scopes: Scope[]
}

export interface CreatedApiKey extends ApiKeyIdentity {
  /** The secret: shown once, only its SHA-256 is stored. */
  key: string
}

// `vgw_` and 32 random bytes in base64url (see create): anything else cannot be a key.
const KEY_SHAPE = /^vgw_[A-Za-z0-9_-]{43}$/

/** Whether a presented token could be a vgw key at all; one that cannot is refused without a lookup. */
export function isApiKeyShaped (key: string): boolean {
  return KEY_SHAPE.test(key)
}

function hashKey (key: string): string {
  return createHash('sha256').update(key).digest('hex')
}

export class ApiKeyRepository {
  readonly #orm: NodePgDatabase
  readonly #newId: () => string

  constructor (orm: NodePgDatabase, newId: () => string) {
    this.#orm = orm
    this.#newId = newId
  }

  async create (name: string, scopes: readonly Scope[]): Promise<CreatedApiKey> {
    const key = `vgw_${randomBytes(32).toString('base64url')}`
    const id = this.#newId()
    try {
      await this.#orm.insert(apiKeys).values({ id, name, keyHash: hashKey(key), scopes: [...scopes] })
    } catch (err) {
      throw translateError(err)
    }
    return { id, name, scopes: [...scopes], key }
  }

  /** The key's identity, or null when the key is unknown or revoked. */
  async verify (key: string): Promise<ApiKeyIdentity | null> {
    if (!isApiKeyShaped(key)) return null
    try {
      const rows = await this.#orm.select({ id: apiKeys.id, name: apiKeys.name, scopes: apiKeys.scopes }).from(apiKeys)
        .where(and(eq(apiKeys.keyHash, hashKey(key)), isNull(apiKeys.revokedAt))).limit(1)
      const row = rows[0]
      return row === undefined ? null : { id: row.id, name: row.name, scopes: row.scopes.filter(isScope) }
    } catch (err) {
      throw translateError(err)
    }
  }

  async count (): Promise<number> {
    try {
      const rows = await this.#orm.select({ n: sql<number>`count(*)::int` }).from(apiKeys)
      return rows[0]?.n ?? 0
    } catch (err) {
      throw translateError(err)
    }
  }
}
