// Times a campaign to a market of N registered vehicles (issue: "100,000 vehicles must be
// enqueued in seconds"). Uses DATABASE_URL, or an embedded PostgreSQL in a temporary directory.
import { v7 as uuidv7 } from 'uuid'
import { openStore } from '../store/index.ts'
import { benchDatabase } from './bench-database.ts'
import pg from 'pg'

const vehicles = Number(process.argv[2] ?? 100_000)
const { url, stop } = await benchDatabase('vgw-bench-pg-')
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
