import pg from 'pg'
import { v7 as uuidv7 } from 'uuid'
import { encodeEnvelope } from '../../protocol/index.ts'

const CHUNK = 200_000

/**
 * Appends `count` accepted uplink rows of one VIN, spread evenly over [from, to), with
 * SQL alone (INSERT … SELECT generate_series) as the database owner: a long history in
 * seconds, for export tests and benchmarks. Every row carries the same decodable envelope
 * of `payloadBytes` payload, so the export does the work a real row costs.
 */
export async function fillVehicleRows (url: string, vin: string, count: number, from: Date, to: Date, payloadBytes = 200): Promise<void> {
  const raw = Buffer.from(encodeEnvelope({ messageId: uuidv7(), kind: 'TELEMETRY', type: 'telemetry.position', createdAtMs: from.getTime(), payload: Buffer.alloc(payloadBytes, 7) }))
  const db = new pg.Client({ connectionString: url })
  await db.connect()
  try {
    for (let month = new Date(from); month < to; month = new Date(Date.UTC(month.getUTCFullYear(), month.getUTCMonth() + 1, 1))) {
      await db.query('SELECT vgw_ensure_transactions_partition($1)', [month])
    }
    for (let done = 0; done < count; done += CHUNK) {
      await db.query(`
        INSERT INTO transactions (id, occurred_at, received_at, vin, market, direction, kind, type, message_id, created_at_ms, ttl_seconds, attributes, status, raw)
        SELECT vgw_uuid_v7(t), t, t + interval '15 ms', $3, 'DE', 'up', 'TELEMETRY', 'telemetry.position', gen_random_uuid()::text,
          (extract(epoch FROM t) * 1000)::int8, 0, '{}'::jsonb, 'accepted', $4
        FROM generate_series($1::int, $2::int) g, LATERAL (SELECT $5::timestamptz + (g::float8 / $7) * ($6::timestamptz - $5::timestamptz) AS t) ts`,
      [done, Math.min(count, done + CHUNK) - 1, vin, raw, from, to, count])
    }
  } finally {
    await db.end()
  }
}
