import { createHash } from 'node:crypto'
import fs from 'node:fs'
import path from 'node:path'
import { ChainWriter, EXPORT_FORMAT, GENESIS, type ExportManifest } from '../../protocol/index.ts'
import type { Store } from '../../store/index.ts'
import { transactionView } from '../api/views.ts'

export interface ExportRequest {
  vin: string
  from: Date
  to: Date
  actor: string
  now: () => number
}

/**
 * The export as NDJSON lines, streamed from a server-side cursor (constant memory),
 * followed by its manifest. `onLine` receives each line; the manifest is returned.
 */
export async function produceExport (store: Store, req: ExportRequest, onLine: (line: string) => Promise<void> | void, file: string): Promise<ExportManifest> {
  const chain = new ChainWriter()
  const sha = createHash('sha256')
  let first: string | null = null
  let last: string | null = null
  for await (const row of store.exports.rows(req.vin, req.from, req.to)) {
    const line = chain.line(transactionView(row))
    sha.update(line)
    first ??= row.occurredAt.toISOString()
    last = row.occurredAt.toISOString()
    await onLine(line)
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

export const EXPORT_FILE = 'transactions.ndjson'
export const MANIFEST_FILE = 'manifest.json'

/** `vgw export`: DIR/transactions.ndjson and DIR/manifest.json. */
export async function writeExportFiles (store: Store, req: ExportRequest, outDir: string): Promise<ExportManifest> {
  fs.mkdirSync(outDir, { recursive: true })
  const out = fs.createWriteStream(path.join(outDir, EXPORT_FILE))
  const write = (line: string): Promise<void> | void => {
    if (out.write(line)) return
    return new Promise((resolve) => out.once('drain', () => resolve()))
  }
  try {
    const manifest = await produceExport(store, req, write, EXPORT_FILE)
    await new Promise<void>((resolve, reject) => out.end((err?: Error | null) => err ? reject(err) : resolve()))
    fs.writeFileSync(path.join(outDir, MANIFEST_FILE), JSON.stringify(manifest, null, 2) + '\n')
    return manifest
  } catch (err) {
    out.destroy()
    throw err
  }
}
