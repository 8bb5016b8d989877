import fs from 'node:fs'
import path from 'node:path'
import { batchHash, blockLink, leafHash, openCheckpoint, rootFromPath, type Checkpoint, type JsonValue } from '../../protocol/index.ts'
import { leafFieldsOfView } from './leaf-fields.ts'
import type { RowProof } from './export-proofs.ts'

/** What a checkpoint directory holds for one block: its signed note, opened with a trusted key, or why not. */
export type NoteVerdict = { ok: true, checkpoint: Checkpoint } | { ok: false, why: string }

/** Verifier keys: given ones, else DIR/key.pub (one per line). */
export function verifierKeys (checkpointDir: string, given: readonly string[]): string[] {
  if (given.length > 0) return [...given]
  const file = path.join(checkpointDir, 'key.pub')
  return fs.existsSync(file) ? fs.readFileSync(file, 'utf8').split('\n').map((l) => l.trim()).filter((l) => l !== '') : []
}

/** The signed note of the block ending at lastSeq in the checkpoint directory (outside the database). */
export function noteInDir (checkpointDir: string, keys: readonly string[], epoch: string, lastSeq: number): NoteVerdict {
  const file = path.join(checkpointDir, epoch, `${String(lastSeq).padStart(12, '0')}.note`)
  if (!fs.existsSync(file)) return { ok: false, why: `no checkpoint ${epoch}/${lastSeq} in ${checkpointDir}` }
  const note = fs.readFileSync(file, 'utf8')
  for (const key of keys) {
    const c = openCheckpoint(note, key)
    if (c !== null) return c.epoch === epoch && c.seq === lastSeq ? { ok: true, checkpoint: c } : { ok: false, why: `checkpoint ${file} names another block` }
  }
  return { ok: false, why: `the checkpoint ${epoch}/${lastSeq} is not signed by a trusted key` }
}

const buf = (h: unknown): Buffer => Buffer.from(typeof h === 'string' ? h : '', 'hex')

/**
 * Proves export records against signed checkpoints: the record's leaf, through its batch and block,
 * must lead to the link a trusted note in the checkpoint directory signed. Says per record why not.
 */
export class ProofVerifier {
  readonly #notes = new Map<string, NoteVerdict>()
  readonly #dir: string
  readonly #keys: string[]

  constructor (checkpointDir: string, keys: readonly string[]) {
    this.#dir = checkpointDir
    this.#keys = verifierKeys(checkpointDir, keys)
  }

  get keys (): number {
    return this.#keys.length
  }

  /** Null when the record proves; otherwise what is wrong, in a sentence. */
  check (record: { [key: string]: JsonValue }, proofValue: JsonValue | undefined): { problem: 'unproven' | 'altered' | 'checkpoint', detail: string } | null {
    const proof = proofValue as RowProof | null | undefined
    const id = String(record.id)
    if (proof === null || proof === undefined) return { problem: 'unproven', detail: `record ${id} is in no ledger batch: it was not written by the gateway's commit path` }
    if (proof.block === null) return { problem: 'unproven', detail: `record ${id} is not yet covered by a checkpoint (batch ${proof.epoch}/${proof.seq})` }
    const root = rootFromPath(leafHash(leafFieldsOfView(record)), proof.index, proof.count, proof.path.map(buf))
    const bh = root === null ? null : batchHash({ seq: proof.seq, xid: proof.xid, count: proof.count, root })
    const blockRoot = bh === null || proof.blockSize !== proof.lastSeq - proof.firstSeq + 1 || proof.blockIndex !== proof.seq - proof.firstSeq
      ? null
      : rootFromPath(bh, proof.blockIndex, proof.blockSize, proof.blockPath.map(buf))
    const link = blockRoot === null ? null : blockLink(buf(proof.prev), { firstSeq: proof.firstSeq, lastSeq: proof.lastSeq, root: blockRoot })
    const note = this.#note(proof.epoch, proof.lastSeq)
    if (!note.ok) return { problem: 'checkpoint', detail: `record ${id}: ${note.why}` }
    if (link === null || !link.equals(note.checkpoint.link)) {
      return { problem: 'altered', detail: `record ${id} differs from what the gateway wrote in batch ${proof.epoch}/${proof.seq} (signed in checkpoint ${proof.lastSeq})` }
    }
    return null
  }

  #note (epoch: string, lastSeq: number): NoteVerdict {
    const key = `${epoch}/${lastSeq}`
    const known = this.#notes.get(key)
    if (known !== undefined) return known
    const verdict = noteInDir(this.#dir, this.#keys, epoch, lastSeq)
    this.#notes.set(key, verdict)
    return verdict
  }
}
