import { batchHash, MerkleTree, type JsonValue } from '../../protocol/index.ts'
import type { LedgerBatch, LedgerBlock, Store, TransactionRecord } from '../../store/index.ts'

/** How a row proves against a signed checkpoint (docs/legal-export.md, "Proving the log"); hex hashes. */
export interface RowProof {
  epoch: string
  /** The batch: its number in the epoch, transaction, size and the row's leaf index and audit path. */
  seq: number
  xid: string
  count: number
  index: number
  path: string[]
  /**
   * The block (checkpoint) holding the batch: its number, its first and last batch, the link of the
   * block before, and the batch's index in it and audit path; block null: no checkpoint covers it yet.
   * The block's signed note is the verifier's own copy (VGW_LEDGER_DIR/epoch/lastSeq.note).
   */
  block: number | null
  firstSeq: number
  lastSeq: number
  prev: string
  blockIndex: number
  blockSize: number
  blockPath: string[]
}

/** What the manifest says of the proofs: their format (each line carries its own). */
export const LEDGER_PROOF_FORMAT = 'vgw-ledger-proof/1'

const hex = (b: Buffer): string => b.toString('hex')
/** Blocks and batches kept while an export runs (an export reads in time order, so recent ones are the ones asked again). */
const CACHE = 64

function remember<K, V> (map: Map<K, V>, key: K, value: V): V {
  if (map.size >= CACHE) map.delete(map.keys().next().value as K)
  map.set(key, value)
  return value
}

/** Builds each exported row's proof from the ledger's tables, a chunk of rows at a time. */
export class ExportProver {
  readonly #store: Store
  readonly #batches = new Map<string, { batch: LedgerBatch, tree: MerkleTree }>()
  readonly #blocks = new Map<string, { block: LedgerBlock, tree: MerkleTree } | null>()

  constructor (store: Store) {
    this.#store = store
  }

  async prove (rows: readonly TransactionRecord[]): Promise<Array<RowProof | null>> {
    const wanted = new Set(rows.map((r) => r.xid).filter((x): x is string => x !== undefined))
    // The chunk's batches are all kept while its proofs are made (a chunk of a vehicle with sparse
    // rows can touch one batch per row); those of the chunk before stay only if it needs them again.
    for (const xid of [...this.#batches.keys()]) if (!wanted.has(xid)) this.#batches.delete(xid)
    const missing = [...wanted].filter((x) => !this.#batches.has(x))
    for (const batch of await this.#store.ledger.batchesOfXids(missing)) {
      const leaves = Array.from({ length: batch.leafIds.length }, (_, i) => batch.leaves.subarray(i * 32, i * 32 + 32))
      this.#batches.set(batch.xid, { batch, tree: new MerkleTree(leaves) })
    }
    const out: Array<RowProof | null> = []
    for (const r of rows) out.push(r.xid === undefined ? null : await this.#proof(r.id, r.xid))
    return out
  }

  async #proof (id: string, xid: string): Promise<RowProof | null> {
    const found = this.#batches.get(xid)
    if (found === undefined) return null
    const { batch, tree } = found
    const index = batch.leafIds.indexOf(id)
    if (index < 0) return null
    const inBlock = await this.#blockOf(batch.epoch, batch.seq)
    const blockIndex = inBlock === null ? 0 : batch.seq - inBlock.block.firstSeq
    const b = inBlock?.block
    return {
      epoch: batch.epoch, seq: batch.seq, xid: batch.xid, count: batch.leafIds.length, index, path: tree.path(index).map(hex),
      block: b?.block ?? null, firstSeq: b?.firstSeq ?? 0, lastSeq: b?.lastSeq ?? 0, prev: b === undefined ? '' : hex(b.prev),
      blockIndex, blockSize: inBlock?.tree.size ?? 0, blockPath: inBlock === null ? [] : inBlock.tree.path(blockIndex).map(hex)
    }
  }

  async #blockOf (epoch: string, seq: number): Promise<{ block: LedgerBlock, tree: MerkleTree } | null> {
    for (const [, b] of this.#blocks) if (b !== null && b.block.epoch === epoch && b.block.firstSeq <= seq && seq <= b.block.lastSeq) return b
    const block = await this.#store.ledger.blockOf(epoch, seq)
    if (block === null) return null
    // The block's batches without their leaves: the tree over batch hashes needs only these.
    const heads = await this.#store.ledger.batchHeads(epoch, block.firstSeq, block.lastSeq)
    const tree = new MerkleTree(heads.map((b) => batchHash(b)))
    return remember(this.#blocks, `${epoch}/${block.block}`, { block, tree })
  }
}

export const proofJson = (p: RowProof | null): JsonValue => p as unknown as JsonValue
