import { batchHash, blockLink, leafHash, merkleRoot } from '../../protocol/index.ts'
import type { LedgerBatch, LedgerBlock, Store, TransactionRecord } from '../../store/index.ts'
import { leafFieldsOfRecord } from './leaf-fields.ts'
import { noteInDir, verifierKeys } from './verify-proofs.ts'

export interface LogFinding {
  problem: 'altered' | 'deleted' | 'inserted' | 'batch' | 'block' | 'checkpoint'
  /** The row's id, or the batch or block named. */
  subject: string
  detail: string
}

export interface LogVerification {
  ok: boolean
  blocks: number
  batches: number
  rows: number
  findings: LogFinding[]
}

export interface LogVerifyRequest {
  from: Date
  to: Date
  checkpointDir: string
  keys: readonly string[]
}

const BLOCKS_PER_PAGE = 20
const FINDINGS_MAX = 10_000

/**
 * `vgw log verify`: every block checkpointed in [from, to) against its signed note in the checkpoint
 * directory, every batch against its block, and every row the batches list against its leaf;
 * then rows of the period that no batch holds. Names each row altered, deleted or inserted.
 */
export async function verifyLog (store: Store, req: LogVerifyRequest): Promise<LogVerification> {
  const keys = verifierKeys(req.checkpointDir, req.keys)
  const result: LogVerification = { ok: true, blocks: 0, batches: 0, rows: 0, findings: [] }
  const report = (f: LogFinding): void => { if (result.findings.length < FINDINGS_MAX) result.findings.push(f) }
  if (keys.length === 0) report({ problem: 'checkpoint', subject: req.checkpointDir, detail: 'no verifier key: give --key, or put key.pub in the checkpoint directory' })
  for (const epoch of await store.ledger.epochs(req.from, req.to)) {
    let after = 0
    let prevLink: Buffer | null = null
    for (;;) {
      const blocks = await store.ledger.blocks(epoch, after, BLOCKS_PER_PAGE)
      for (const block of blocks) {
        if (prevLink !== null && !block.prev.equals(prevLink)) report({ problem: 'block', subject: `${epoch}/${block.block}`, detail: 'does not follow the block before it' })
        await verifyBlock(store, block, req, keys, result, report)
        prevLink = block.link
      }
      if (blocks.length < BLOCKS_PER_PAGE) break
      after = (blocks[blocks.length - 1] as LedgerBlock).block
    }
  }
  for (const r of await store.ledger.rowsOutsideLedger(req.from, req.to, 1000)) {
    report({ problem: 'inserted', subject: r.id, detail: `${r.vin ?? '-'} ${r.occurredAt.toISOString()} ${r.kind} ${r.status}: in no ledger batch (written outside the gateway's commit path, or after the last checkpoint)` })
  }
  result.ok = result.findings.length === 0
  return result
}

async function verifyBlock (store: Store, block: LedgerBlock, req: LogVerifyRequest, keys: readonly string[], result: LogVerification, report: (f: LogFinding) => void): Promise<void> {
  result.blocks++
  const name = `${block.epoch}/${block.block}`
  const note = noteInDir(req.checkpointDir, keys, block.epoch, block.lastSeq)
  const batches = await store.ledger.batches(block.epoch, block.firstSeq, block.lastSeq)
  const root = merkleRoot(batches.map((b) => batchHash({ seq: b.seq, xid: b.xid, count: b.leafIds.length, root: b.root })))
  const link = blockLink(block.prev, { firstSeq: block.firstSeq, lastSeq: block.lastSeq, root })
  if (!note.ok) report({ problem: 'checkpoint', subject: name, detail: note.why })
  else if (!link.equals(note.checkpoint.link)) report({ problem: 'block', subject: name, detail: `its batches (${batches.length} of ${block.lastSeq - block.firstSeq + 1}) do not make the link its signed checkpoint holds: a batch was changed or removed` })
  const rows = await store.ledger.rowsOfXids(batches.map((b) => b.xid))
  const byXid = new Map<string, TransactionRecord[]>()
  for (const r of rows) (byXid.get(r.xid ?? '') ?? byXid.set(r.xid ?? '', []).get(r.xid ?? ''))?.push(r)
  for (const batch of batches) verifyBatch(batch, byXid.get(batch.xid) ?? [], result, report)
}

function verifyBatch (batch: LedgerBatch, rows: readonly TransactionRecord[], result: LogVerification, report: (f: LogFinding) => void): void {
  result.batches++
  const leaves = Array.from({ length: batch.leafIds.length }, (_, i) => batch.leaves.subarray(i * 32, i * 32 + 32))
  if (!merkleRoot(leaves).equals(batch.root)) report({ problem: 'batch', subject: `${batch.epoch}/${batch.seq}`, detail: 'its stored leaves do not make its root' })
  const byId = new Map(rows.map((r) => [r.id, r]))
  batch.leafIds.forEach((id, i) => {
    const row = byId.get(id)
    if (row === undefined) {
      report({ problem: 'deleted', subject: id, detail: `listed in batch ${batch.epoch}/${batch.seq} (transaction ${batch.xid}) but no longer in the log` })
      return
    }
    result.rows++
    byId.delete(id)
    if (!leafHash(leafFieldsOfRecord(row)).equals(leaves[i] as Buffer)) {
      report({ problem: 'altered', subject: id, detail: `${row.vin ?? '-'} ${row.occurredAt.toISOString()} ${row.kind} ${row.status}: differs from what batch ${batch.epoch}/${batch.seq} recorded` })
    }
  })
  for (const row of byId.values()) {
    report({ problem: 'inserted', subject: row.id, detail: `${row.vin ?? '-'} ${row.occurredAt.toISOString()} ${row.kind} ${row.status}: carries transaction ${batch.xid} but batch ${batch.epoch}/${batch.seq} does not list it` })
  }
}
