// Measures bytes per transaction row (with indexes) at a realistic envelope size, and
// query times by VIN and time on one monthly partition of several million rows.
// npx tsx bench/capacity-bench.ts [rows=3000000] [vehicles=20000]
import pg from 'pg'
import { v7 as uuidv7 } from 'uuid'
import { openStore } from '../store/index.ts'
import { benchDatabase } from './bench-database.ts'

const rows = Number(process.argv[2] ?? 3_000_000)
const vehicles = Number(process.argv[3] ?? 20_000)
const { url, stop } = await benchDatabase('vgw-capacity-')
const store = openStore({ url, newId: uuidv7 })
await store.migrate()
await store.close()
const db = new pg.Client({ connectionString: url })
await db.connect()
const month = new Date(Date.UTC(2026, 0, 1))
await db.query('SELECT vgw_ensure_transactions_partition($1)', [month])
const started = performance.now()
// A 250-byte envelope (200-byte payload), as the benchmarks' vehicles send; one month of rows spread over the vehicles.
const chunk = 500_000
for (let done = 0; done < rows; done += chunk) {
  await db.query(`
    INSERT INTO transactions (id, occurred_at, received_at, vin, market, direction, kind, type, message_id, correlation_id, created_at_ms,
      ttl_seconds, attributes, ack_status, ack_reason, status, error_code, raw, details)
    SELECT vgw_uuid_v7(t), t, t + interval '15 ms', 'WVWFLEET0RS' || lpad((g % $3)::text, 6, '0'), 'DE', 'up', 'TELEMETRY', 'telemetry.position',
      gen_random_uuid()::text, NULL, (extract(epoch FROM t) * 1000)::int8, 0, '{"content-type":"application/octet-stream"}'::jsonb,
      NULL, NULL, 'accepted', NULL,
      decode(repeat(md5(g::text), 15) || substr(md5((g + 1)::text), 1, 20), 'hex'), NULL
    FROM generate_series($1::int, $2::int) g, LATERAL (SELECT $4::timestamptz + (g::float8 / $5) * interval '30 days' AS t) ts`,
  [done, Math.min(rows, done + chunk) - 1, vehicles, month, rows])
}
const insertSeconds = (performance.now() - started) / 1000
await db.query('VACUUM ANALYZE transactions_y2026m01')
const size = (await db.query<{ total: string, heap: string, idx: string }>(
  "SELECT pg_total_relation_size('transactions_y2026m01') AS total, pg_relation_size('transactions_y2026m01') AS heap, pg_indexes_size('transactions_y2026m01') AS idx")).rows[0]
const total = Number(size?.total)
const times: number[] = []
for (let i = 0; i < 200; i++) {
  const vin = `WVWFLEET0RS${String(Math.floor(Math.random() * vehicles)).padStart(6, '0')}`
  const from = new Date(month.getTime() + Math.random() * 25 * 24 * 3600_000)
  const t0 = performance.now()
  await db.query(`SELECT * FROM transactions WHERE vin = $1 AND occurred_at >= $2 AND occurred_at < $3 ORDER BY occurred_at DESC, id DESC LIMIT 100`,
    [vin, from, new Date(from.getTime() + 5 * 24 * 3600_000)])
  times.push(performance.now() - t0)
}
times.sort((a, b) => a - b)
const plan = (await db.query<{ 'QUERY PLAN': string }>(`EXPLAIN SELECT * FROM transactions WHERE vin = 'WVWFLEET0RS000042' AND occurred_at >= '2026-01-10' AND occurred_at < '2026-01-15' ORDER BY occurred_at DESC, id DESC LIMIT 100`)).rows.map((r) => r['QUERY PLAN']).join('\n')
const version = (await db.query<{ v: string }>('SHOW server_version')).rows[0]?.v
console.log(JSON.stringify({
  postgres: version,
  rows,
  vehicles,
  insertSeconds: Number(insertSeconds.toFixed(1)),
  insertRowsPerSecond: Math.round(rows / insertSeconds),
  bytesPerRowTotal: Math.round(total / rows),
  bytesPerRowHeap: Math.round(Number(size?.heap) / rows),
  bytesPerRowIndexes: Math.round(Number(size?.idx) / rows),
  partitionMiB: Math.round(total / 1048576),
  queryMs: { p50: Number(times[100]?.toFixed(2)), p99: Number(times[198]?.toFixed(2)), max: Number(times[199]?.toFixed(2)) }
}, null, 2))
console.log(plan)
await db.end()
await stop()
