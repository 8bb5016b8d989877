import { createHash } from 'node:crypto'
import { once } from 'node:events'
import fs from 'node:fs'
import path from 'node:path'
import type { Writable } from 'node:stream'
import { ChainWriter, EXPORT_FORMAT, GENESIS, GatewayError, type ExportManifest } from '../../protocol/index.ts'
import { actorName, type Actor, type Store, type TransactionRecord } from '../../store/index.ts'
import { ExportProver, LEDGER_PROOF_FORMAT, proofJson } from '../ledger/export-proofs.ts'
import { transactionView } from '../api/views.ts'

/** Rows whose proofs are looked up together. */
const PROOF_CHUNK = 256

export interface ExportRequest {
  vin: string
  from: Date
  to: Date
  actor: Actor
  now: () => number
  /** Stops the export between two records; its transaction is rolled back and its connection returned. */
  signal?: AbortSignal
}

/**
 * The export as NDJSON lines, streamed from a server-side cursor (constant memory),
 * followed by its manifest. `onLine` receives each line; the manifest is returned.
 * When `onLine` throws or the signal aborts, the cursor's transaction is rolled back
 * before this rejects.
 */
export async function produceExport (store: Store, req: ExportRequest, onLine: (line: string) => Promise<void> | void, file: string): Promise<ExportManifest> {
  const chain = new ChainWriter()
  const sha = createHash('sha256')
  let first: string | null = null
  let last: string | null = null
  const prover = new ExportProver(store)
  // Rows go out a chunk at a time: their proofs are looked up together (one query per chunk).
  let chunk: TransactionRecord[] = []
  const flush = async (): Promise<void> => {
    const proofs = await prover.prove(chunk)
    for (const [i, row] of chunk.entries()) {
      const line = chain.line(transactionView(row), proofJson(proofs[i] ?? null))
      sha.update(line)
      first ??= row.occurredAt.toISOString()
      last = row.occurredAt.toISOString()
      await onLine(line)
      req.signal?.throwIfAborted()
    }
    chunk = []
  }
  for await (const row of store.exports.rows(req.vin, req.from, req.to, req.signal)) {
    chunk.push(row)
    if (chunk.length >= PROOF_CHUNK) await flush()
  }
  await flush()
  const manifest: ExportManifest = {
    format: EXPORT_FORMAT,
    vin: req.vin,
    from: req.from.toISOString(),
    to: req.to.toISOString(),
    rowCount: chain.count,
    firstOccurredAt: first,
    lastOccurredAt: last,
    file,
    sha256: sha.digest('hex'),
    genesis: GENESIS,
    chainHead: chain.head,
    exportedAt: new Date(req.now()).toISOString(),
    exportedBy: actorName(req.actor),
    ledger: { format: LEDGER_PROOF_FORMAT }
  }
  await store.lifecycle.audit(req.actor, 'export', { vin: req.vin, from: manifest.from, to: manifest.to, rowCount: manifest.rowCount, sha256: manifest.sha256, chainHead: manifest.chainHead })
  return manifest
}

/**
 * Writes with backpressure. Rejects instead of waiting for ever when the stream is gone:
 * a destination that errors, or `signal` aborted (an HTTP client that went away never drains).
 */
export async function writeChunk (out: Writable, chunk: string, signal?: AbortSignal): Promise<void> {
  signal?.throwIfAborted()
  if (out.destroyed) throw new Error('the output was closed')
  if (out.write(chunk)) return
  await once(out, 'drain', signal !== undefined ? { signal } : {})
}

/** Why an export stopped, in a few words, for its error line or message. */
export function failureReason (err: unknown): string {
  if (err instanceof GatewayError) return `${err.message} (${err.code})`
  return err instanceof Error ? err.message : String(err)
}

export const EXPORT_FILE = 'transactions.ndjson'
export const MANIFEST_FILE = 'manifest.json'
/** The NDJSON file while it is written; renamed to EXPORT_FILE only once complete. */
export const PARTIAL_SUFFIX = '.partial'
const WRITE_CHARS = 64 * 1024

async function closeQuietly (out: fs.WriteStream): Promise<void> {
  if (out.closed) return
  const closed = once(out, 'close').then(() => undefined, () => undefined)
  out.destroy()
  await closed
}

/** Refuses a directory that already holds any of the export's names (a file, a symlink, anything). */
function requireFreeNames (outDir: string, names: string[]): void {
  const taken = names.filter((f) => { try { fs.lstatSync(f); return true } catch { return false } })
  if (taken.length > 0) {
    throw new GatewayError('GW_ERR_VALIDATION', `${outDir} already holds ${taken.map((f) => path.basename(f)).join(', ')}: an export never writes over a file or through a symlink; choose a new directory`)
  }
}

/** A new file, mode 0600, created here: O_EXCL fails on any existing name, a symlink included, so nothing is written through one. */
function createNew (file: string): number {
  return fs.openSync(file, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_NOFOLLOW, 0o600)
}

/** Gives a complete file its final name; link() fails if the name exists, so it never replaces one. */
function publish (from: string, to: string, created: Set<string>): void {
  fs.linkSync(from, to)
  created.add(to)
  fs.unlinkSync(from)
  created.delete(from)
}

/**
 * `vgw export`: DIR/transactions.ndjson and DIR/manifest.json, each a new file with mode 0600,
 * never over an existing file nor through a symlink (a directory holding any of the names is
 * refused). Until complete the lines go to transactions.ndjson.partial; an export that fails
 * leaves none of the files it made, and rejects with GW_ERR_EXPORT_FAILED.
 */
export async function writeExportFiles (store: Store, req: ExportRequest, outDir: string): Promise<ExportManifest> {
  fs.mkdirSync(outDir, { recursive: true, mode: 0o700 })
  const file = path.join(outDir, EXPORT_FILE)
  const partial = file + PARTIAL_SUFFIX
  const manifestFile = path.join(outDir, MANIFEST_FILE)
  requireFreeNames(outDir, [file, partial, manifestFile, manifestFile + PARTIAL_SUFFIX])
  const created = new Set<string>()
  const out = fs.createWriteStream(partial, { fd: createNew(partial) })
  created.add(partial)
  let written = 0
  // Lines go out in writes of about 64 KiB: a million single-line writes cost more than the export.
  let pending = ''
  try {
    const manifest = await produceExport(store, req, async (line) => {
      pending += line
      written++
      if (pending.length < WRITE_CHARS) return
      const chunk = pending
      pending = ''
      await writeChunk(out, chunk, req.signal)
    }, EXPORT_FILE)
    await new Promise<void>((resolve, reject) => out.end(pending, (err?: Error | null) => err ? reject(err) : resolve()))
    publish(partial, file, created)
    // The manifest is what marks an export complete, so it appears whole or not at all.
    const fd = createNew(manifestFile + PARTIAL_SUFFIX)
    created.add(manifestFile + PARTIAL_SUFFIX)
    try {
      fs.writeFileSync(fd, JSON.stringify(manifest, null, 2) + '\n')
    } finally {
      fs.closeSync(fd)
    }
    publish(manifestFile + PARTIAL_SUFFIX, manifestFile, created)
    return manifest
  } catch (err) {
    await closeQuietly(out)
    // Only what this export made: never a file that was there before it.
    for (const f of created) fs.rmSync(f, { force: true })
    throw new GatewayError('GW_ERR_EXPORT_FAILED', `the export of ${req.vin} stopped after ${written} records: ${failureReason(err)}; nothing was left in ${outDir}`, { cause: err })
  }
}
