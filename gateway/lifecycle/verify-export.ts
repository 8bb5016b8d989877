import { createHash } from 'node:crypto'
import fs from 'node:fs'
import path from 'node:path'
import readline from 'node:readline'
import { ChainVerifier, type ChainVerdict, type ExportManifest } from '../../protocol/index.ts'
import { MANIFEST_FILE } from './legal-export.ts'

export interface ExportVerification extends ChainVerdict {
  fileSha256: string
  fileHashMatches: boolean
  manifest: ExportManifest
}

/** `vgw export verify DIR`: needs nothing but the two files. */
export async function verifyExportDir (dir: string): Promise<ExportVerification> {
  const manifest = JSON.parse(fs.readFileSync(path.join(dir, MANIFEST_FILE), 'utf8')) as ExportManifest
  const file = path.join(dir, manifest.file)
  const sha = createHash('sha256')
  const verifier = new ChainVerifier()
  const input = fs.createReadStream(file)
  input.on('data', (chunk) => sha.update(chunk))
  for await (const line of readline.createInterface({ input, crlfDelay: Infinity })) verifier.push(line)
  const verdict = verifier.finish(manifest)
  const fileSha256 = sha.digest('hex')
  const fileHashMatches = fileSha256 === manifest.sha256
  return { ...verdict, ok: verdict.ok && fileHashMatches, fileSha256, fileHashMatches, manifest }
}
