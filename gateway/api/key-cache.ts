import { LRUCache } from 'lru-cache'
import type { ApiKeyIdentity } from '../../store/index.ts'
import { isApiKeyShaped } from '../../store/api-key-repository.ts'

// The cache holds misses too, and lru-cache cannot hold null: each answer is boxed, with the
// time its lookup began (an answer is never older than that).
interface Answer { identity: ApiKeyIdentity | null, askedAt: number }

/**
 * API-key lookups, found or not, kept for at most `ttlMs` in a bounded LRU, so that a flood of
 * made-up tokens costs no database query; concurrent lookups of one token share one query.
 *
 * The bound is hard: an answer is never used once `ttlMs` have passed since its lookup began,
 * so a key revoked (or expired) anywhere is refused by every gateway within `ttlMs` plus one
 * lookup. A busy key is looked up again in the background once half its time has passed, so it
 * does not fall back to the per-address limit when its entry ages; a key past its `expiresAt`
 * is refused at once, without waiting for its entry to age.
 */
export class ApiKeyCache {
  readonly #verify: (key: string) => Promise<ApiKeyIdentity | null>
  readonly #ttlMs: number
  readonly #now: () => number
  readonly #cache: LRUCache<string, Answer> | null
  readonly #refreshing = new Set<string>()

  constructor (verify: (key: string) => Promise<ApiKeyIdentity | null>, ttlMs: number, opts: { maxEntries?: number, now?: () => number } = {}) {
    this.#verify = verify
    this.#ttlMs = ttlMs
    this.#now = opts.now ?? Date.now
    // ttl 0 would mean "for ever" to lru-cache; 0 here means "do not cache".
    this.#cache = ttlMs <= 0
      ? null
      : new LRUCache<string, Answer>({ max: opts.maxEntries ?? 10_000, ttl: ttlMs, fetchMethod: async (key) => await this.#ask(key) })
  }

  async #ask (key: string): Promise<Answer> {
    const askedAt = this.#now()
    return { identity: await this.#verify(key), askedAt }
  }

  #live (identity: ApiKeyIdentity | null | undefined): ApiKeyIdentity | null {
    if (identity === null || identity === undefined) return null
    return identity.expiresAt !== null && identity.expiresAt.getTime() <= this.#now() ? null : identity
  }

  /** A cached answer younger than the bound; undefined when there is none. */
  #fresh (key: string): Answer | undefined {
    const answer = this.#cache?.get(key)
    return answer !== undefined && this.#now() - answer.askedAt < this.#ttlMs ? answer : undefined
  }

  /** Looks the key up again in the background; the new answer replaces the old only when it is newer. */
  #refresh (key: string): void {
    const cache = this.#cache
    if (cache === null || this.#refreshing.has(key)) return
    this.#refreshing.add(key)
    this.#ask(key).then((answer) => {
      const left = this.#ttlMs - (this.#now() - answer.askedAt)
      const current = cache.get(key)
      if (left > 0 && (current === undefined || current.askedAt < answer.askedAt)) cache.set(key, answer, { ttl: left })
    }, () => cache.delete(key)).finally(() => this.#refreshing.delete(key))
  }

  /**
   * The identity of a key already known to be valid, without waiting for a lookup; undefined
   * otherwise. Never answers from a lookup older than the bound.
   */
  known (key: string): ApiKeyIdentity | undefined {
    const answer = this.#fresh(key)
    const identity = this.#live(answer?.identity)
    if (answer === undefined || identity === null) return undefined
    if (this.#now() - answer.askedAt >= this.#ttlMs / 2) this.#refresh(key)
    return identity
  }

  /** The key's identity or null; a token that cannot be a key is refused without a lookup. */
  async lookup (key: string): Promise<ApiKeyIdentity | null> {
    if (!isApiKeyShaped(key)) return null
    const cache = this.#cache
    if (cache === null) return this.#live(await this.#verify(key))
    const fresh = this.#fresh(key)
    if (fresh !== undefined) return this.#live(fresh.identity)
    // An entry past the bound is never served: fetch anew (or join the lookup already running).
    const answer = await cache.fetch(key, { forceRefresh: true })
    return this.#live(answer?.identity)
  }

  /** Forgets every cached answer for these key ids (a revocation made through this gateway applies at once here). */
  forget (ids: ReadonlySet<string>): void {
    const cache = this.#cache
    if (cache === null) return
    for (const [key, answer] of cache.entries()) if (answer.identity !== null && ids.has(answer.identity.id)) cache.delete(key)
  }
}
