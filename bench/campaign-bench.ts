// Times a campaign to a market of N registered vehicles (issue: "100,000 vehicles must be
// enqueued in seconds"). Uses DATABASE_URL, or an embedded PostgreSQL in a temporary directory.
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { v7 as uuidv7 } from 'uuid'
import { openStore, startEmbeddedPostgres } from '../store/index.ts'
import pg from 'pg'

const vehicles = Number(process.argv[2] ?? 100_000)
let url = process.env.DATABASE_URL ?? ''
let stop = async (): Promise<void> => undefined
if (url === '') {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vgw-bench-pg-'))
  fs.chmodSync(dir, 0o755)
  const embedded = await startEmbeddedPostgres({ dataDir: dir })
  url = embedded.url
  stop = async () => { await embedded.stop(); fs.rmSync(dir, { recursive: true, force: true }) }
}
const store = openStore({ url, newId: uuidv7 })
await store.migrate()
await store.transactions.ensurePartitionRange(new Date(), new Date(Date.now() + 62 * 24 * 3600_000))
const db = new pg.Client({ connectionString: url })
await db.connect()
const market = `Z${String.fromCharCode(65 + Math.floor(Math.random() * 26))}`
await db.query(`INSERT INTO vehicles (vin, market) SELECT 'BENCH' || lpad(g::text, 12, '0'), $1 FROM generate_series(1, $2) g ON CONFLICT (vin) DO UPDATE SET market = excluded.market`, [market, vehicles])
const started = performance.now()
const created = await store.campaigns.create({
  id: uuidv7(),
  apiKeyId: null,
  target: { market },
  type: 'ota.announcement',
  payload: Buffer.from('Software 42.1 is ready to install tonight.'),
  attributes: { locale: 'de-DE', 'content-type': 'text/plain' },
  ttlSeconds: 7 * 24 * 3600,
  priority: 0,
  createdAt: new Date()
})
const ms = performance.now() - started
const rows = await db.query<{ n: number }>('SELECT count(*)::int AS n FROM messages WHERE campaign_id = $1', [created.id])
console.log(JSON.stringify({ scenario: 'campaign', vehicles, messages: created.messageCount, stored: rows.rows[0]?.n, seconds: Number((ms / 1000).toFixed(2)), perSecond: Math.round(created.messageCount / (ms / 1000)) }))
await db.end()
await store.close()
await stop()
