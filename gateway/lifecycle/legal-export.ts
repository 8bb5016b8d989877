import { createHash } from 'node:crypto'
import { once } from 'node:events'
import fs from 'node:fs'
import path from 'node:path'
import type { Writable } from 'node:stream'
import { ChainWriter, EXPORT_FORMAT, GENESIS, GatewayError, type ExportManifest } from '../../protocol/index.ts'
import type { Store } from '../../store/index.ts'
import { transactionView } from '../api/views.ts'

export interface ExportRequest {
  vin: string
  from: Date
  to: Date
  actor: string
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
  for await (const row of store.exports.rows(req.vin, req.from, req.to, req.signal)) {
    const line = chain.line(transactionView(row))
    sha.update(line)
    first ??= row.occurredAt.toISOString()
    last = row.occurredAt.toISOString()
    await onLine(line)
    req.signal?.throwIfAborted()
  }
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
    exportedBy: req.actor
  }
  await store.lifecycle.audit(req.actor, 'export', { vin: req.vin, from: manifest.from, to: manifest.to, rowCount: manifest.rowCount, sha256: manifest.sha256, chainHead: manifest.chainHead }, new Date(req.now()))
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

/**
 * `vgw export`: DIR/transactions.ndjson and DIR/manifest.json. Until complete the lines go
 * to transactions.ndjson.partial; an export that fails leaves neither file (an earlier
 * export's files in DIR are removed first, as they were overwritten before), and rejects
 * with GW_ERR_EXPORT_FAILED.
 */
export async function writeExportFiles (store: Store, req: ExportRequest, outDir: string): Promise<ExportManifest> {
  fs.mkdirSync(outDir, { recursive: true })
  const file = path.join(outDir, EXPORT_FILE)
  const partial = file + PARTIAL_SUFFIX
  const manifestFile = path.join(outDir, MANIFEST_FILE)
  for (const f of [manifestFile, file]) fs.rmSync(f, { force: true })
  const out = fs.createWriteStream(partial)
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
    fs.renameSync(partial, file)
    // The manifest is what marks an export complete, so it appears whole or not at all.
    fs.writeFileSync(manifestFile + PARTIAL_SUFFIX, JSON.stringify(manifest, null, 2) + '\n')
    fs.renameSync(manifestFile + PARTIAL_SUFFIX, manifestFile)
    return manifest
  } catch (err) {
    await closeQuietly(out)
    for (const f of [partial, file, manifestFile + PARTIAL_SUFFIX]) fs.rmSync(f, { force: true })
    throw new GatewayError('GW_ERR_EXPORT_FAILED', `the export of ${req.vin} stopped after ${written} records: ${failureReason(err)}; nothing was left in ${outDir}`, { cause: err })
  }
}
