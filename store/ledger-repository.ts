import type pg from 'pg'
import { ArrayColumnWriter } from './binary-columns.ts'
import { translateError } from './store-errors.ts'
import { fromRow, type Row } from './transaction-rows.ts'
import type { TransactionRecord } from './transaction-log.ts'

/** One transaction's rows in the ledger (migration 0015): its leaves in id order and their root. */
export interface LedgerBatchRow {
  epoch: string
  seq: number
  xid: string
  leafIds: string[]
  /** 32 bytes per leaf, in leafIds' order. */
  leaves: Buffer
  root: Buffer
}

/** A signed checkpoint: batches firstSeq..lastSeq of an epoch, the root over them, the chain link. */
export interface LedgerBlock {
  epoch: string
  block: number
  firstSeq: number
  lastSeq: number
  root: Buffer
  prev: Buffer
  link: Buffer
  note: string
  /** The database's time when stored: not signed, so only a hint (which blocks' rows a period checks). */
  createdAt?: Date
}

interface BlockDbRow { epoch: string, block: string, first_seq: string, last_seq: string, root: Buffer, prev: Buffer, link: Buffer, note: string, created_at: Date }

const toBlock = (r: BlockDbRow): LedgerBlock & { createdAt: Date } => ({
  epoch: r.epoch, block: Number(r.block), firstSeq: Number(r.first_seq), lastSeq: Number(r.last_seq), root: r.root, prev: r.prev, link: r.link, note: r.note, createdAt: r.created_at
})

export interface LedgerBatch extends LedgerBatchRow {
  createdAt: Date
}

interface BatchDbRow {
  epoch: string
  seq: string
  xid: string
  leaf_ids: string[]
  leaves: Buffer
  root: Buffer
  prev: Buffer
  link: Buffer
  created_at: Date
}

const toBatch = (r: BatchDbRow): LedgerBatch => ({
  epoch: r.epoch, seq: Number(r.seq), xid: r.xid, leafIds: r.leaf_ids, leaves: r.leaves, root: r.root, createdAt: r.created_at
})

const APPEND_BATCHES = `INSERT INTO ledger_batches (epoch, seq, xid, row_count, leaf_ids, leaves, root)
  SELECT b.epoch, b.seq, b.xid::xid8, b.n, ($6::uuid[])[b.start:b.start + b.n - 1], b.leaves, b.root
  FROM unnest($1::uuid[], $2::int8[], $3::text[], $4::int4[], $5::int4[], $7::bytea[], $8::bytea[]) AS b(epoch, seq, xid, start, n, leaves, root)
  ON CONFLICT DO NOTHING`

const BATCH_COLUMNS = 'epoch, seq, xid::text AS xid, leaf_ids, leaves, root, created_at'

/** The ledger's tables: written on the commit pool (beside the log), read on the API pool. */
export class LedgerRepository {
  readonly #commitPool: pg.Pool
  readonly #pool: pg.Pool

  constructor (commitPool: pg.Pool, pool: pg.Pool) {
    this.#commitPool = commitPool
    this.#pool = pool
  }

  async #run<T extends pg.QueryResultRow> (pool: pg.Pool, text: string, values: unknown[]): Promise<T[]> {
    try {
      return (await pool.query<T>(text, values)).rows
    } catch (err) {
      throw translateError(err)
    }
  }

  async startEpoch (epoch: string, gateway: string, keyId: string): Promise<void> {
    await this.#run(this.#commitPool, 'INSERT INTO ledger_epochs (epoch, gateway, key_id) VALUES ($1, $2, $3)', [epoch, gateway, keyId])
  }

  /**
   * Stores batches in one named statement, its arrays in PostgreSQL's binary format (binary-columns.ts):
   * the ids of every batch in one flat uuid array, each batch its slice. A batch stored before (a
   * retry after a lost answer) is skipped.
   */
  async appendBatches (batches: readonly LedgerBatchRow[]): Promise<void> {
    if (batches.length === 0) return
    const rows = batches.reduce((n, b) => n + b.leafIds.length, 0)
    const epoch = new ArrayColumnWriter('uuid', 20 * batches.length)
    const seq = new ArrayColumnWriter('int8', 12 * batches.length)
    const xid = new ArrayColumnWriter('text', 16 * batches.length)
    const start = new ArrayColumnWriter('int4', 8 * batches.length)
    const count = new ArrayColumnWriter('int4', 8 * batches.length)
    const ids = new ArrayColumnWriter('uuid', 20 * rows)
    const leaves = new ArrayColumnWriter('bytea', 36 * rows + 4 * batches.length)
    const root = new ArrayColumnWriter('bytea', 36 * batches.length)
    let at = 1
    for (const b of batches) {
      epoch.uuid(b.epoch); seq.int8(b.seq); xid.text(b.xid); start.int4(at); count.int4(b.leafIds.length)
      for (const id of b.leafIds) ids.uuid(id)
      leaves.bytes(b.leaves); root.bytes(b.root)
      at += b.leafIds.length
    }
    const values = [epoch, seq, xid, start, count, ids, leaves, root].map((w) => w.finish())
    try {
      await this.#commitPool.query({ name: 'vgw_ledger_batches_v1', text: APPEND_BATCHES, values })
    } catch (err) {
      throw translateError(err)
    }
  }

  async addBlock (b: LedgerBlock): Promise<void> {
    await this.#run(this.#commitPool,
      'INSERT INTO ledger_blocks (epoch, block, first_seq, last_seq, root, prev, link, note) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING',
      [b.epoch, b.block, b.firstSeq, b.lastSeq, b.root, b.prev, b.link, b.note])
  }

  /** The block that holds batch `seq` of the epoch, or null when no checkpoint covers it yet. */
  async blockOf (epoch: string, seq: number): Promise<LedgerBlock | null> {
    const rows = await this.#run<BlockDbRow>(this.#pool,
      'SELECT * FROM ledger_blocks WHERE epoch = $1 AND first_seq <= $2 AND last_seq >= $2', [epoch, seq])
    return rows[0] === undefined ? null : toBlock(rows[0])
  }

  /** An epoch's blocks in order, from block `after` on (exclusive), at most `limit`. */
  async blocks (epoch: string, after: number, limit: number): Promise<Array<LedgerBlock & { createdAt: Date }>> {
    const rows = await this.#run<BlockDbRow>(this.#pool, 'SELECT * FROM ledger_blocks WHERE epoch = $1 AND block > $2 ORDER BY block LIMIT $3', [epoch, after, limit])
    return rows.map(toBlock)
  }

  /** Every epoch that has a block in the database. */
  async epochsWithBlocks (): Promise<string[]> {
    return (await this.#run<{ epoch: string }>(this.#pool, 'SELECT DISTINCT epoch FROM ledger_blocks ORDER BY epoch', [])).map((r) => r.epoch)
  }

  /** How many of the epoch's batches come after seq (not yet in a block). */
  async batchCountAfter (epoch: string, seq: number): Promise<number> {
    return (await this.#run<{ n: number }>(this.#pool, 'SELECT count(*)::int AS n FROM ledger_batches WHERE epoch = $1 AND seq > $2', [epoch, seq]))[0]?.n ?? 0
  }

  /** The batches that hold these transactions' rows. */
  async batchesOfXids (xids: readonly string[]): Promise<LedgerBatch[]> {
    if (xids.length === 0) return []
    const rows = await this.#run<BatchDbRow>(this.#pool, `SELECT ${BATCH_COLUMNS} FROM ledger_batches WHERE xid = ANY($1::text[]::xid8[])`, [xids])
    return rows.map(toBatch)
  }

  /** What a block's tree needs of its batches (no leaves), seq `from` to `to` inclusive, in order. */
  async batchHeads (epoch: string, from: number, to: number): Promise<Array<{ seq: number, xid: string, count: number, root: Buffer }>> {
    const rows = await this.#run<{ seq: string, xid: string, count: number, root: Buffer }>(this.#pool,
      'SELECT seq, xid::text AS xid, row_count AS count, root FROM ledger_batches WHERE epoch = $1 AND seq BETWEEN $2 AND $3 ORDER BY seq', [epoch, from, to])
    return rows.map((r) => ({ seq: Number(r.seq), xid: r.xid, count: r.count, root: r.root }))
  }

  /** An epoch's batches from seq `from` to `to`, inclusive, in order. */
  async batches (epoch: string, from: number, to: number): Promise<LedgerBatch[]> {
    const rows = await this.#run<BatchDbRow>(this.#pool, `SELECT ${BATCH_COLUMNS} FROM ledger_batches WHERE epoch = $1 AND seq BETWEEN $2 AND $3 ORDER BY seq`, [epoch, from, to])
    return rows.map(toBatch)
  }

  /** Every log row inserted by these transactions. */
  async rowsOfXids (xids: readonly string[]): Promise<TransactionRecord[]> {
    if (xids.length === 0) return []
    const rows = await this.#run<Row>(this.#pool, 'SELECT *, xid::text AS xid FROM transactions WHERE xid = ANY($1::text[]::xid8[])', [xids])
    return rows.map(fromRow)
  }

  /** Log rows that occurred in [from, to) whose transaction has no batch in the ledger. */
  async rowsOutsideLedger (from: Date, to: Date, limit: number): Promise<TransactionRecord[]> {
    const rows = await this.#run<Row>(this.#pool,
      `SELECT t.*, t.xid::text AS xid FROM transactions t
       WHERE t.occurred_at >= $1 AND t.occurred_at < $2 AND NOT EXISTS (SELECT 1 FROM ledger_batches b WHERE b.xid = t.xid)
       ORDER BY t.occurred_at, t.id LIMIT $3`, [from, to, limit])
    return rows.map(fromRow)
  }
}
