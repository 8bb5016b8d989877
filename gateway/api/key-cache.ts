import { LRUCache } from 'lru-cache'
import type { Logger } from 'pino'
import { hashKey, isApiKeyShaped, type ApiKeyIdentity, type LiveApiKey } from '../../store/index.ts'

/** What the cache needs of the store (store/api-key-repository.ts). */
export interface KeySource {
  liveKeys(): Promise<LiveApiKey[]>
  /** One key's identity (only with a bound of 0: no snapshot). */
  verify(key: string): Promise<ApiKeyIdentity | null>
}

/** A key change another gateway announced, or this one made (cluster-bus.ts). */
export interface KeyChange {
  /** Key ids revoked: refused here at once. */
  revoked: string[]
}

interface Snapshot { byHash: ReadonlyMap<string, ApiKeyIdentity>, askedAt: number }

/** Made-up tokens remembered as unknown, at most (a flood of distinct ones is held off by the per-address budget). */
const MAX_MISSES = 10_000
/** A revoked id stays refused this long even if a snapshot read that began before the revocation still holds it. */
const TOMBSTONE_MS = 60_000

/**
 * Every live API key's hash and identity in memory, read in one statement every `boundMs / 2`
 * (issue #20): checking a key is a SHA-256 and a map lookup, so a valid key never waits for the
 * database nor counts against the per-address budget of unauthenticated traffic (which made-up
 * tokens from its address use up); a token the snapshot lacks is looked up after that budget.
 *
 * The bound is hard: a snapshot is never used once `boundMs` have passed since its read began
 * (requests then wait for a new one), so a key revoked anywhere is refused by every gateway
 * within `boundMs` plus one read; a revocation through this gateway's REST API, or announced by
 * another gateway on the cluster bus, is applied at once (`revoked`). A key past its
 * `expiresAt` is refused at once. `boundMs` 0: no snapshot, each key is looked up (after the
 * per-address budget).
 */
export class ApiKeyCache {
  readonly #source: KeySource
  readonly #boundMs: number
  readonly #now: () => number
  readonly #logger: Logger | undefined
  #snapshot: Snapshot | null = null
  #reading: Promise<void> | null = null
  #again: Promise<void> | null = null
  readonly #tombstones = new Map<string, number>()
  #timer: NodeJS.Timeout | null = null
  /** Well-formed tokens found in no live key, with when their lookup began (bounded, each kept for the bound). */
  readonly #misses: LRUCache<string, number>
  readonly #asking = new Map<string, Promise<ApiKeyIdentity | null>>()
  /** Snapshot reads started (tests count them). */
  reads = 0

  constructor (source: KeySource, boundMs: number, opts: { now?: () => number, logger?: Logger } = {}) {
    this.#source = source
    this.#boundMs = boundMs
    this.#now = opts.now ?? Date.now
    this.#logger = opts.logger
    this.#misses = new LRUCache<string, number>({ max: MAX_MISSES, ttl: Math.max(1, boundMs) })
  }

  /** Reads the first snapshot (a failure is logged: requests wait for the next read), then refreshes it. */
  async start (): Promise<void> {
    if (this.#boundMs <= 0) return
    await this.#read().catch((err: unknown) => this.#logger?.warn({ err }, 'API keys not read; retrying'))
    this.#timer = setInterval(() => {
      this.#read().catch((err: unknown) => this.#logger?.warn({ err }, 'API keys not read; the snapshot ages and is refused past VGW_API_KEY_CACHE_MS'))
    }, Math.max(100, Math.floor(this.#boundMs / 2)))
    this.#timer.unref()
  }

  stop (): void {
    if (this.#timer !== null) clearInterval(this.#timer)
    this.#timer = null
  }

  /** One read at a time; the snapshot it makes replaces the current one only when it began later. */
  #read (): Promise<void> {
    this.#reading ??= (async () => {
      this.reads++
      const askedAt = this.#now()
      const keys = await this.#source.liveKeys()
      if (this.#snapshot !== null && this.#snapshot.askedAt > askedAt) return
      for (const [id, until] of this.#tombstones) if (until <= this.#now()) this.#tombstones.delete(id)
      const byHash = new Map<string, ApiKeyIdentity>()
      for (const k of keys) if (!this.#buried(k.identity.id)) byHash.set(k.keyHash, k.identity)
      this.#snapshot = { byHash, askedAt }
    })().finally(() => { this.#reading = null })
    return this.#reading
  }

  /** A read that begins after now (a change committed just before must be in it). */
  refresh (): Promise<void> {
    if (this.#boundMs <= 0) return Promise.resolve()
    if (this.#reading === null) return this.#read()
    this.#again ??= this.#reading.catch(() => undefined).then(() => { this.#again = null; return this.#read() })
    return this.#again
  }

  #buried (id: string): boolean {
    const until = this.#tombstones.get(id)
    if (until === undefined) return false
    if (until > this.#now()) return true
    this.#tombstones.delete(id)
    return false
  }

  #live (identity: ApiKeyIdentity | undefined): ApiKeyIdentity | undefined {
    if (identity === undefined || this.#buried(identity.id)) return undefined
    return identity.expiresAt !== null && identity.expiresAt.getTime() <= this.#now() ? undefined : identity
  }

  /** The snapshot, read again first when it is past the bound (every waiting request shares that read). */
  async #current (): Promise<Snapshot> {
    const s = this.#snapshot
    if (s !== null && this.#now() - s.askedAt < this.#boundMs) return s
    await this.#read()
    return this.#snapshot as unknown as Snapshot
  }

  /**
   * The identity of a valid key, from the snapshot; undefined for anything else. Costs no query
   * unless the snapshot is past its bound (the database does not answer): then it waits for one read.
   */
  async known (key: string): Promise<ApiKeyIdentity | undefined> {
    if (this.#boundMs <= 0 || !isApiKeyShaped(key)) return undefined
    return this.#live((await this.#current()).byHash.get(hashKey(key)))
  }

  /**
   * The key's identity or null, for a token `known` did not know (after the per-address budget):
   * a well-formed token the snapshot lacks is looked up once (a key created a moment ago, by the
   * CLI or another gateway, works at once, and joins the snapshot); concurrent lookups of one
   * token share that query, and a miss is remembered for the bound, so a repeated made-up token
   * costs one query per bound and a new one costs one query, after the per-address budget.
   */
  async lookup (key: string): Promise<ApiKeyIdentity | null> {
    if (!isApiKeyShaped(key)) return null
    if (this.#boundMs <= 0) return this.#live(await this.#source.verify(key) ?? undefined) ?? null
    const hash = hashKey(key)
    const s = await this.#current()
    const found = s.byHash.get(hash)
    if (found !== undefined) return this.#live(found) ?? null
    const missedAt = this.#misses.get(hash)
    if (missedAt !== undefined && this.#now() - missedAt < this.#boundMs) return null
    let asking = this.#asking.get(hash)
    if (asking === undefined) {
      const askedAt = this.#now()
      asking = this.#source.verify(key).then((identity) => {
        if (identity === null) this.#misses.set(hash, askedAt)
        else if (!this.#buried(identity.id) && this.#snapshot !== null) (this.#snapshot.byHash as Map<string, ApiKeyIdentity>).set(hash, identity)
        return identity
      }).finally(() => this.#asking.delete(hash))
      this.#asking.set(hash, asking)
    }
    return this.#live(await asking ?? undefined) ?? null
  }

  /** Keys revoked (through this gateway or announced by another): refused at once, and never brought back by an older read. */
  revoked (ids: readonly string[]): void {
    const until = this.#now() + TOMBSTONE_MS
    for (const id of ids) this.#tombstones.set(id, until)
  }
}
