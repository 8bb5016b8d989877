import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { startEmbeddedPostgres } from '../store/index.ts'
import { withPassword } from '../test/helpers/database-url.ts'

/** DATABASE_URL, or an embedded PostgreSQL in a temporary directory removed by stop(). */
export async function benchDatabase (prefix: string): Promise<{ url: string, stop: () => Promise<void> }> {
  const fromEnv = process.env.DATABASE_URL ?? ''
  if (fromEnv !== '') return { url: withPassword(fromEnv), stop: async () => undefined }
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix))
  fs.chmodSync(dir, 0o755)
  const embedded = await startEmbeddedPostgres({ dataDir: dir })
  return { url: embedded.url, stop: async () => { await embedded.stop(); fs.rmSync(dir, { recursive: true, force: true }) } }
}
