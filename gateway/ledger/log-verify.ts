import fs from 'node:fs'
import path from 'node:path'
import { batchHash, blockLink, GENESIS_LINK, leafHash, merkleRoot } from '../../protocol/index.ts'
import type { LedgerBatch, LedgerBlock, Store, TransactionRecord } from '../../store/index.ts'
import { leafFieldsOfRecord } from './leaf-fields.ts'
import { noteInDir, verifierKeys } from './verify-proofs.ts'

export interface LogFinding {
  /**
   * `expired` (a row gone from a batch older than the shortest retention period: retention may have
   * removed it) and `unanchored` (batches after an epoch's last checkpoint) are reported without
   * failing the verification; every other problem fails it.
   */
  problem: 'altered' | 'deleted' | 'inserted' | 'batch' | 'block' | 'checkpoint' | 'expired' | 'unanchored'
  /** The row's id, or the batch, block or epoch named. */
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
  /** Rows are checked for blocks made in this period, and rows in no batch looked for by their occurred_at in it; every block's chain and note is checked whatever the period. */
  from: Date
  to: Date
  checkpointDir: string
  keys: readonly string[]
}

const BLOCKS_PER_PAGE = 20
const FINDINGS_MAX = 10_000
const NOT_FAILING = new Set<LogFinding['problem']>(['expired', 'unanchored'])
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/

interface Context {
  store: Store
  req: LogVerifyRequest
  keys: readonly string[]
  /** Batches made before this may have lost rows to retention. */
  retentionHorizon: Date
  result: LogVerification
  report: (f: LogFinding) => void
}

/**
 * `vgw log verify`: what the checkpoint directory holds decides what is checked, not the database:
 * every epoch and signed note there must have its block, every block its note, the blocks must
 * chain, each block's batches make its link, and each batch's rows (for blocks of the period) its
 * leaves; then rows of the period that no batch holds. Names each row altered, deleted or inserted.
 */
export async function verifyLog (store: Store, req: LogVerifyRequest): Promise<LogVerification> {
  const result: LogVerification = { ok: true, blocks: 0, batches: 0, rows: 0, findings: [] }
  const report = (f: LogFinding): void => { if (result.findings.length < FINDINGS_MAX) result.findings.push(f) }
  const keys = verifierKeys(req.checkpointDir, req.keys)
  if (keys.length === 0) report({ problem: 'checkpoint', subject: req.checkpointDir, detail: 'no verifier key: give --key, or put key.pub in the checkpoint directory' })
  const shortest = Math.min(...(await store.lifecycle.policies()).map((p) => p.retentionDays))
  const ctx: Context = { store, req, keys, retentionHorizon: new Date(Date.now() - (Number.isFinite(shortest) ? shortest : 3650) * 86_400_000), result, report }
  const inDir = fs.existsSync(req.checkpointDir) ? fs.readdirSync(req.checkpointDir).filter((n) => UUID.test(n)) : []
  for (const epoch of new Set([...inDir, ...await store.ledger.epochsWithBlocks()])) await verifyEpoch(ctx, epoch)
  for (const r of await store.ledger.rowsOutsideLedger(req.from, req.to, 1000)) {
    report({ problem: 'inserted', subject: r.id, detail: `${describe(r)}: in no ledger batch (written outside the gateway's commit path, or in the moment before a crash)` })
  }
  result.ok = result.findings.every((f) => NOT_FAILING.has(f.problem))
  return result
}

const describe = (r: TransactionRecord): string => `${r.vin ?? '-'} ${r.occurredAt.toISOString()} ${r.kind} ${r.status}`

/** The signed notes of an epoch in the directory, by the last batch each covers. */
function notesOf (dir: string, epoch: string): number[] {
  const d = path.join(dir, epoch)
  if (!fs.existsSync(d)) return []
  return fs.readdirSync(d).map((n) => /^(\d{12})\.note$/.exec(n)).filter((m) => m !== null).map((m) => Number(m[1])).sort((a, b) => a - b)
}

async function verifyEpoch (ctx: Context, epoch: string): Promise<void> {
  const notes = new Set(notesOf(ctx.req.checkpointDir, epoch))
  let prev: LedgerBlock | null = null
  let after = 0
  for (;;) {
    const blocks = await ctx.store.ledger.blocks(epoch, after, BLOCKS_PER_PAGE)
    for (const block of blocks) {
      const name = `${epoch}/${block.block}`
      if (!block.prev.equals(prev?.link ?? GENESIS_LINK) || block.firstSeq <= (prev?.lastSeq ?? 0)) {
        ctx.report({ problem: 'block', subject: name, detail: 'does not follow the block before it: a block was removed or changed' })
      }
      if (!notes.delete(block.lastSeq)) ctx.report({ problem: 'checkpoint', subject: name, detail: `no signed note for batches ${block.firstSeq}..${block.lastSeq} in ${ctx.req.checkpointDir}` })
      await verifyBlock(ctx, block)
      prev = block
    }
    if (blocks.length < BLOCKS_PER_PAGE) break
    after = (blocks[blocks.length - 1] as LedgerBlock).block
  }
  for (const seq of notes) {
    ctx.report({ problem: 'block', subject: `${epoch}/…${seq}`, detail: `the signed note for batches up to ${seq} has no block in the database: the block (and what it covered) was removed` })
  }
  const unanchored = await ctx.store.ledger.batchCountAfter(epoch, prev?.lastSeq ?? 0)
  if (unanchored > 0) ctx.report({ problem: 'unanchored', subject: epoch, detail: `${unanchored} batch(es) after the last checkpoint: not yet provable (the epoch's process is running, or it died before signing them)` })
}

async function verifyBlock (ctx: Context, block: LedgerBlock & { createdAt: Date }): Promise<void> {
  ctx.result.blocks++
  const name = `${block.epoch}/${block.block}`
  const note = noteInDir(ctx.req.checkpointDir, ctx.keys, block.epoch, block.lastSeq)
  const heads = await ctx.store.ledger.batchHeads(block.epoch, block.firstSeq, block.lastSeq)
  const link = blockLink(block.prev, { firstSeq: block.firstSeq, lastSeq: block.lastSeq, root: merkleRoot(heads.map((b) => batchHash(b))) })
  if (!note.ok) ctx.report({ problem: 'checkpoint', subject: name, detail: note.why })
  else if (!link.equals(note.checkpoint.link) || !block.link.equals(link)) {
    ctx.report({ problem: 'block', subject: name, detail: `its batches (${heads.length} of ${block.lastSeq - block.firstSeq + 1}) do not make the link its signed note holds: a batch was changed or removed` })
  }
  if (block.createdAt < ctx.req.from || block.createdAt >= ctx.req.to) return
  const batches = await ctx.store.ledger.batches(block.epoch, block.firstSeq, block.lastSeq)
  const rows = await ctx.store.ledger.rowsOfXids(batches.map((b) => b.xid))
  const byXid = new Map<string, TransactionRecord[]>()
  for (const r of rows) {
    const group = byXid.get(r.xid ?? '')
    if (group === undefined) byXid.set(r.xid ?? '', [r])
    else group.push(r)
  }
  for (const batch of batches) verifyBatch(ctx, batch, byXid.get(batch.xid) ?? [])
}

function verifyBatch (ctx: Context, batch: LedgerBatch, rows: readonly TransactionRecord[]): void {
  ctx.result.batches++
  const { report } = ctx
  const leaves = Array.from({ length: batch.leafIds.length }, (_, i) => batch.leaves.subarray(i * 32, i * 32 + 32))
  if (!merkleRoot(leaves).equals(batch.root)) report({ problem: 'batch', subject: `${batch.epoch}/${batch.seq}`, detail: 'its stored leaves do not make its root' })
  const byId = new Map<string, TransactionRecord>()
  for (const r of rows) {
    if (byId.has(r.id)) report({ problem: 'inserted', subject: r.id, detail: `${describe(r)}: a second row with this id in transaction ${batch.xid}` })
    else byId.set(r.id, r)
  }
  const old = batch.createdAt < ctx.retentionHorizon
  batch.leafIds.forEach((id, i) => {
    const row = byId.get(id)
    if (row === undefined) {
      report(old
        ? { problem: 'expired', subject: id, detail: `listed in batch ${batch.epoch}/${batch.seq}, older than the shortest retention period: retention may have removed it` }
        : { problem: 'deleted', subject: id, detail: `listed in batch ${batch.epoch}/${batch.seq} (transaction ${batch.xid}) but no longer in the log` })
      return
    }
    ctx.result.rows++
    byId.delete(id)
    if (!leafHash(leafFieldsOfRecord(row)).equals(leaves[i] as Buffer)) {
      report({ problem: 'altered', subject: id, detail: `${describe(row)}: differs from what batch ${batch.epoch}/${batch.seq} recorded` })
    }
  })
  for (const row of byId.values()) {
    report({ problem: 'inserted', subject: row.id, detail: `${describe(row)}: carries transaction ${batch.xid} but batch ${batch.epoch}/${batch.seq} does not list it` })
  }
}
