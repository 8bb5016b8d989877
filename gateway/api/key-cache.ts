import { LRUCache } from 'lru-cache'
import type { ApiKeyIdentity } from '../../store/index.ts'
import { isApiKeyShaped } from '../../store/api-key-repository.ts'

// The cache holds misses too, and lru-cache cannot hold null: each answer is boxed.
interface Answer { identity: ApiKeyIdentity | null }

/**
 * API-key lookups, found or not, kept for `ttlMs` in a bounded LRU, so that a flood of
 * made-up tokens costs no database query; concurrent lookups of one token share one query.
 * A revoked key keeps working for at most `ttlMs`.
 */
export class ApiKeyCache {
  readonly #verify: (key: string) => Promise<ApiKeyIdentity | null>
  readonly #cache: LRUCache<string, Answer> | null

  constructor (verify: (key: string) => Promise<ApiKeyIdentity | null>, ttlMs: number, maxEntries = 10_000) {
    this.#verify = verify
    // ttl 0 would mean "for ever" to lru-cache; 0 here means "do not cache".
    this.#cache = ttlMs <= 0
      ? null
      : new LRUCache<string, Answer>({ max: maxEntries, ttl: ttlMs, fetchMethod: async (key) => ({ identity: await verify(key) }) })
  }

  /**
   * The identity of a key already known to be valid, without waiting for a lookup; undefined otherwise.
   * A valid key past its time is still answered while one lookup refreshes it in the background,
   * so that a busy client never falls back to the per-address limit when its entry ages.
   */
  known (key: string): ApiKeyIdentity | undefined {
    const cache = this.#cache
    const identity = cache?.get(key, { allowStale: true, noDeleteOnStaleGet: true })?.identity ?? undefined
    if (cache !== null && identity !== undefined && !cache.has(key)) {
      cache.fetch(key).catch(() => cache.delete(key))
    }
    return identity
  }

  /** The key's identity or null; a token that cannot be a key is refused without a lookup. */
  async lookup (key: string): Promise<ApiKeyIdentity | null> {
    if (!isApiKeyShaped(key)) return null
    if (this.#cache === null) return await this.#verify(key)
    const answer = await this.#cache.fetch(key)
    return answer?.identity ?? null
  }
}
