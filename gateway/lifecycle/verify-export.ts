import { createHash } from 'node:crypto'
import fs from 'node:fs'
import path from 'node:path'
import readline from 'node:readline'
import { ChainVerifier, type ChainVerdict, type ExportLine, type ExportManifest, type TamperFinding } from '../../protocol/index.ts'
import { ProofVerifier } from '../ledger/verify-proofs.ts'
import { MANIFEST_FILE } from './legal-export.ts'

export interface ExportVerification extends ChainVerdict {
  fileSha256: string
  fileHashMatches: boolean
  manifest: ExportManifest
}

/**
 * Why the manifest's `file` cannot be read as the export's data, or null: only a plain file name
 * in the export's own directory is accepted (a tampered manifest could name `../other` or
 * `/etc/passwd`), and neither the manifest nor the file may be a symlink to somewhere else.
 */
function refusedFile (dir: string, name: unknown): string | null {
  if (typeof name !== 'string' || name === '' || name === '.' || name === '..' || /[/\\\0]/.test(name) || path.basename(name) !== name) {
    return `the manifest names ${JSON.stringify(name)} as its file: only a plain file name in the export's directory is accepted`
  }
  for (const f of [MANIFEST_FILE, name]) {
    const st = fs.lstatSync(path.join(dir, f), { throwIfNoEntry: false })
    if (st === undefined) return `${f} is missing`
    if (!st.isFile()) return `${f} is not a plain file${st.isSymbolicLink() ? ' (a symlink)' : ''}`
  }
  return null
}

/** The ledger's checkpoints to prove every record against (`--checkpoints DIR`, `--key`). */
export interface CheckpointSource { dir: string, keys: readonly string[] }

/** Proves each line's record against the checkpoints; findings carry the line. */
function proofChecker (manifest: ExportManifest, source: CheckpointSource, findings: TamperFinding[]): (text: string, line: number) => void {
  const proofs = new ProofVerifier(source.dir, source.keys)
  if (proofs.keys === 0) findings.push({ line: 0, seq: null, problem: 'checkpoint', detail: `no verifier key: give --key, or put key.pub in ${source.dir}` })
  const seen = new Set<string>()
  const [from, to] = [Date.parse(manifest.from), Date.parse(manifest.to)]
  return (text, line) => {
    let parsed: ExportLine
    try {
      parsed = JSON.parse(text) as ExportLine
    } catch {
      return // the chain check names it
    }
    if (typeof parsed.record !== 'object' || parsed.record === null) return
    const seq = typeof parsed.seq === 'number' ? parsed.seq : null
    const r = parsed.record
    // A proven record twice, another vehicle's, or one from outside the period is not this export's.
    const id = String(r.id)
    const at = Date.parse(String(r.occurredAt))
    if (seen.has(id)) findings.push({ line, seq, problem: 'inserted', detail: `record ${id} appears a second time` })
    else if (r.vin !== manifest.vin) findings.push({ line, seq, problem: 'inserted', detail: `record ${id} is of ${String(r.vin)}, not ${manifest.vin}` })
    else if (!(at >= from && at < to)) findings.push({ line, seq, problem: 'inserted', detail: `record ${id} occurred at ${String(r.occurredAt)}, outside the export's period` })
    seen.add(id)
    const problem = proofs.check(r, parsed.ledger)
    if (problem !== null) findings.push({ line, seq, ...problem })
  }
}

/** `vgw export verify DIR`: needs nothing but the two files; with checkpoints, also proves every record against them. */
export async function verifyExportDir (dir: string, checkpoints?: CheckpointSource): Promise<ExportVerification> {
  const manifest = JSON.parse(fs.readFileSync(path.join(dir, MANIFEST_FILE), 'utf8')) as ExportManifest
  const refused = refusedFile(dir, manifest.file)
  if (refused !== null) {
    return { ok: false, rows: 0, head: '', findings: [{ line: 0, seq: null, problem: 'unreadable', detail: refused }], fileSha256: '', fileHashMatches: false, manifest }
  }
  const file = path.join(dir, manifest.file)
  const sha = createHash('sha256')
  const verifier = new ChainVerifier()
  const input = fs.createReadStream(file)
  input.on('data', (chunk) => sha.update(chunk))
  const proved: TamperFinding[] = []
  const prove = checkpoints === undefined ? null : proofChecker(manifest, checkpoints, proved)
  let n = 0
  for await (const line of readline.createInterface({ input, crlfDelay: Infinity })) {
    verifier.push(line)
    n++
    if (prove !== null && line.trim() !== '') prove(line, n)
  }
  const chained = verifier.finish(manifest)
  const findings = [...chained.findings, ...proved]
  const verdict = { ...chained, ok: findings.length === 0, findings }
  const fileSha256 = sha.digest('hex')
  const fileHashMatches = fileSha256 === manifest.sha256
  return { ...verdict, ok: verdict.ok && fileHashMatches, fileSha256, fileHashMatches, manifest }
}
