import { GatewayError } from '../../protocol/index.ts'

export interface SendBatcherOptions<I, R> {
  /**
   * Commits a batch and answers one result per item, in order; resolves only once it is durable.
   * An Error in place of a result fails that item alone (the others committed).
   */
  commit: (items: I[]) => Promise<Array<R | Error>>
  /** Items in one statement at most. */
  maxSize: number
  /** Batches committing at once (each holds one connection of the API pool). */
  maxConcurrent: number
}

interface Waiting<I, R> {
  item: I
  resolve: (result: R) => void
  reject: (err: unknown) => void
}

/**
 * Group commit for REST sends. A send goes to the database at once when a commit slot is
 * free, so a lone send waits for nothing; sends that arrive while every slot is busy gather
 * and go together in the next free slot, one statement and one commit for all of them.
 * Under load the batch size follows the load, and the commits per second stay what the
 * slots allow.
 *
 * Each item's promise settles after its batch committed (the 202 comes only then). Unlike
 * the uplink CommitBatcher, nothing is retried here: a send the database could not take is
 * answered with the error at once (the client holds the request and can retry with its
 * idempotency key), so a batch that failed because the store is away fails every send in
 * it. A batch refused for what it holds is split until the offending send is alone, so one
 * bad send cannot fail the others.
 */
export class SendBatcher<I, R> {
  readonly #opts: SendBatcherOptions<I, R>
  #queue: Array<Waiting<I, R>> = []
  #inFlight = 0
  #scheduled = false

  constructor (opts: SendBatcherOptions<I, R>) {
    this.#opts = opts
  }

  /** Sends waiting for a commit slot (not yet in a statement): the send path's queue. */
  get waiting (): number {
    return this.#queue.length
  }

  add (item: I): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      this.#queue.push({ item, resolve, reject })
      // Sends parsed in the same turn of the event loop go together: dispatch after the I/O phase.
      if (!this.#scheduled && this.#inFlight < this.#opts.maxConcurrent) {
        this.#scheduled = true
        setImmediate(() => {
          this.#scheduled = false
          this.#dispatch()
        })
      }
    })
  }

  #dispatch (): void {
    while (this.#queue.length > 0 && this.#inFlight < this.#opts.maxConcurrent) {
      const batch = this.#queue.splice(0, this.#opts.maxSize)
      this.#inFlight++
      void this.#commit(batch).finally(() => {
        this.#inFlight--
        this.#dispatch()
      })
    }
  }

  async #commit (batch: Array<Waiting<I, R>>): Promise<void> {
    let results: Array<R | Error>
    try {
      results = await this.#opts.commit(batch.map((w) => w.item))
    } catch (err) {
      const unavailable = err instanceof GatewayError && err.code === 'GW_ERR_STORE_UNAVAILABLE'
      if (unavailable || batch.length === 1) {
        for (const w of batch) w.reject(err)
        return
      }
      const half = Math.ceil(batch.length / 2)
      await this.#commit(batch.slice(0, half))
      await this.#commit(batch.slice(half))
      return
    }
    // An Error among the results failed that send alone, after the statement committed the others.
    batch.forEach((w, i) => {
      const result = results[i]
      if (i >= results.length) w.reject(new Error('the batch answered fewer results than it held'))
      else if (result instanceof Error) w.reject(result)
      else w.resolve(result as R)
    })
  }
}
