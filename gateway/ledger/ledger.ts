import fs from 'node:fs'
import path from 'node:path'
import type { Logger } from 'pino'
import { batchHash, blockLink, GENESIS_LINK, merkleRoot } from '../../protocol/index.ts'
import type { CommittedLeaf, LedgerBatchRow, Store } from '../../store/index.ts'
import type { CheckpointSigner } from './checkpoint-signer.ts'

export interface LedgerSettings {
  /** Where signed checkpoints are written (one file each); outside the database. */
  checkpointDir: string
  /** How often a checkpoint is signed when the chain grew (the window in which a change of a stored row is not yet anchored). */
  checkpointIntervalMs: number
  /** How often stored links are flushed to the database (one statement for all waiting). */
  flushIntervalMs: number
}

export interface LedgerDeps {
  store: Store
  signer: CheckpointSigner
  settings: LedgerSettings
  /** This process's epoch id (a UUIDv7). */
  epoch: string
  gateway: string
  logger: Logger
}

/**
 * Adds the verifier key to DIR/key.pub (one per line), for verifiers that read the checkpoints from
 * there; a third party should still compare it with the key published out of band (README, "Security").
 */
function publishVerifier (dir: string, verifier: string): void {
  const file = path.join(dir, 'key.pub')
  const known = fs.existsSync(file) ? fs.readFileSync(file, 'utf8').split('\n') : []
  if (!known.includes(verifier)) fs.appendFileSync(file, verifier + '\n')
}

/** A new file, synced, never over an existing one (a checkpoint once written is never rewritten). */
function writeNote (file: string, note: string): void {
  let fd: number
  try {
    fd = fs.openSync(file, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL, 0o644)
  } catch (err) {
    // Written before the database refused the block (a retry): the same content, keep it.
    if ((err as NodeJS.ErrnoException).code === 'EEXIST' && fs.readFileSync(file, 'utf8') === note) return
    throw err
  }
  try {
    fs.writeSync(fd, note)
    fs.fsyncSync(fd)
  } finally {
    fs.closeSync(fd)
  }
}

/**
 * Batches waiting for the database, at most (about 100 MB at 500 rows a batch). Past it the oldest
 * are given up with an error line: their rows stay in the log, and `vgw log verify` names them as
 * in no batch. Only a database that refuses the ledger's inserts for a long time gets there.
 */
const MAX_PENDING = 100_000

/** Batches stored by one statement, at most; a longer queue is stored by the flushes that follow. */
const MAX_FLUSH = 5000

/**
 * The write-time ledger (docs/architecture.md, "The ledger"): every committed log row's leaf comes
 * here with its transaction's other rows; each transaction becomes a batch (Merkle root of its
 * leaves in id order), numbered in this process's epoch. Batches are stored a flush at a time;
 * at each checkpoint the batches stored since the last form a block (Merkle root of their batch
 * hashes) chained to the block before, and its link is signed: all off the commit path, no round
 * trip per batch.
 */
export class Ledger {
  readonly #deps: LedgerDeps
  #seq = 0
  #pending: LedgerBatchRow[] = []
  /** Batches stored and not yet in a block, in seq order (with gaps only where batches were given up). */
  #unblocked: Array<{ seq: number, hash: Buffer }> = []
  #block = 0
  #link: Buffer = GENESIS_LINK
  #checkpointing: Promise<void> = Promise.resolve()
  #flushing: Promise<void> | null = null
  #timers: NodeJS.Timeout[] = []
  #unsubscribe: (() => void) | null = null

  constructor (deps: LedgerDeps) {
    this.#deps = deps
  }

  get epoch (): string {
    return this.#deps.epoch
  }

  async start (): Promise<void> {
    const { store, signer, settings } = this.#deps
    await store.ledger.startEpoch(this.#deps.epoch, this.#deps.gateway, signer.verifier)
    fs.mkdirSync(path.join(settings.checkpointDir, this.#deps.epoch), { recursive: true })
    publishVerifier(settings.checkpointDir, signer.verifier)
    this.#unsubscribe = store.onLogCommitted((rows) => this.record(rows))
    const every = (ms: number, fn: () => Promise<void>, what: string): void => {
      const timer = setInterval(() => { fn().catch((err: unknown) => this.#deps.logger.warn({ err }, `ledger ${what} failed; tried again`)) }, ms)
      timer.unref()
      this.#timers.push(timer)
    }
    every(settings.flushIntervalMs, () => this.flush(), 'flush')
    every(settings.checkpointIntervalMs, () => this.checkpoint(), 'checkpoint')
  }

  /** One committed transaction's rows (several transactions' rows may come together). */
  record (rows: readonly CommittedLeaf[]): void {
    const byXid = new Map<string, CommittedLeaf[]>()
    for (const r of rows) {
      const group = byXid.get(r.xid)
      if (group === undefined) byXid.set(r.xid, [r])
      else group.push(r)
    }
    for (const [xid, group] of byXid) {
      group.sort((a, b) => a.id < b.id ? -1 : a.id > b.id ? 1 : 0)
      const leaves = group.map((r) => r.leaf)
      const root = merkleRoot(leaves)
      const seq = ++this.#seq
      this.#pending.push({ epoch: this.#deps.epoch, seq, xid, leafIds: group.map((r) => r.id), leaves: Buffer.concat(leaves), root })
    }
    if (this.#pending.length > MAX_PENDING) {
      const dropped = this.#pending.splice(0, this.#pending.length - MAX_PENDING)
      this.#deps.logger.error({ batches: dropped.length, firstSeq: dropped[0]?.seq, lastSeq: dropped[dropped.length - 1]?.seq }, 'ledger: batches given up after the database refused them too long; their rows are in no batch')
    }
    if (this.#pending.length >= MAX_FLUSH) void this.flush().catch(() => undefined)
  }

  /** Stores the batches waiting, in order; on failure they stay and the next flush tries again. */
  async flush (): Promise<void> {
    while (this.#flushing !== null) await this.#flushing
    if (this.#pending.length === 0) return
    const batch = this.#pending.slice(0, MAX_FLUSH)
    this.#flushing = (async () => {
      await this.#deps.store.ledger.appendBatches(batch)
      // By seq, not by count: batches given up meanwhile (MAX_PENDING) left the head of the queue.
      const last = (batch[batch.length - 1] as LedgerBatchRow).seq
      const rest = this.#pending.findIndex((b) => b.seq > last)
      this.#pending = rest < 0 ? [] : this.#pending.slice(rest)
      for (const b of batch) this.#unblocked.push({ seq: b.seq, hash: batchHash({ seq: b.seq, xid: b.xid, count: b.leafIds.length, root: b.root }) })
    })()
    try {
      await this.#flushing
    } finally {
      this.#flushing = null
    }
  }

  /** One checkpoint at a time (the timer and close may both ask). */
  async checkpoint (): Promise<void> {
    const run = this.#checkpointing.then(async () => await this.#checkpointOnce())
    this.#checkpointing = run.catch(() => undefined)
    await run
  }

  /**
   * Makes the batches stored since the last checkpoint blocks, signs each link, and writes each note
   * outside the database and then in it. A block holds consecutive batches only: where batches were
   * given up (MAX_PENDING) the next block starts after the gap.
   */
  async #checkpointOnce (): Promise<void> {
    await this.flush()
    while (this.#unblocked.length > 0) {
      const first = (this.#unblocked[0] as { seq: number }).seq
      let n = 1
      while (n < this.#unblocked.length && (this.#unblocked[n] as { seq: number }).seq === first + n) n++
      await this.#seal(first, this.#unblocked.slice(0, n).map((u) => u.hash))
      this.#unblocked = this.#unblocked.slice(n)
    }
  }

  async #seal (firstSeq: number, hashes: Buffer[]): Promise<void> {
    const lastSeq = firstSeq + hashes.length - 1
    const root = merkleRoot(hashes)
    const prev = this.#link
    const link = blockLink(prev, { firstSeq, lastSeq, root })
    const block = this.#block + 1
    const note = this.#deps.signer.sign({ epoch: this.#deps.epoch, seq: lastSeq, link })
    writeNote(path.join(this.#deps.settings.checkpointDir, this.#deps.epoch, `${String(lastSeq).padStart(12, '0')}.note`), note)
    await this.#deps.store.ledger.addBlock({ epoch: this.#deps.epoch, block, firstSeq, lastSeq, root, prev, link, note })
    this.#block = block
    this.#link = link
  }

  /** Stops listening, stores what waits and signs a last checkpoint. */
  async close (): Promise<void> {
    for (const t of this.#timers) clearInterval(t)
    this.#timers = []
    this.#unsubscribe?.()
    try {
      await this.checkpoint()
    } catch (err) {
      this.#deps.logger.warn({ err }, 'ledger: last checkpoint not written')
    }
  }
}
