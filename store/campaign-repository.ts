import type pg from 'pg'
import { GatewayError } from '../protocol/index.ts'
import { inTransaction } from './in-transaction.ts'
import type { MessageContent } from './message-repository.ts'
import { translateError } from './store-errors.ts'
import { LOG_COLUMNS } from './transaction-rows.ts'
import type { CommittedLeaf, LogCommitted } from './log-committed.ts'

export interface NewCampaign extends MessageContent {
  id: string
  apiKeyId: string | null
  target: { vins: string[] } | { market: string }
  /** A market's vehicles past this many refuse the campaign with GW_ERR_TOO_MANY_RECIPIENTS (a list is checked by its caller). */
  maxRecipients?: number
  /**
   * A market's vehicles past this many refuse the campaign with GW_ERR_CAMPAIGN_TOO_LARGE: its byte bound divided by
   * the size of one message (a list is checked by its caller).
   */
  maxRecipientsForBytes?: number
}

export interface CreatedCampaign {
  id: string
  messageCount: number
  /** VINs of the target list that are not known vehicles. */
  skippedVins: string[]
}

export interface CampaignReport {
  id: string
  type: string
  target: { vins?: number, market?: string }
  createdAt: Date
  messageCount: number
  skippedVins: string[]
  statuses: Record<string, number>
}

/** Counts at most max + 1 of the market's vehicles, so a huge market costs no full count. */
async function refuseLargeMarket (client: pg.PoolClient, market: string, c: NewCampaign): Promise<void> {
  const byCount = c.maxRecipients ?? Number.MAX_SAFE_INTEGER
  const byBytes = c.maxRecipientsForBytes ?? Number.MAX_SAFE_INTEGER
  const max = Math.min(byCount, byBytes)
  if (max === Number.MAX_SAFE_INTEGER) return
  const { rows } = await client.query<{ n: number }>(
    'SELECT count(*)::int AS n FROM (SELECT 1 FROM vehicles WHERE market = $1 LIMIT $2) v', [market, max + 1])
  const n = rows[0]?.n ?? 0
  if (n <= max) return
  if (byCount <= byBytes) throw new GatewayError('GW_ERR_TOO_MANY_RECIPIENTS', `market ${market} has more than ${max} vehicles, the most one campaign may name`)
  throw new GatewayError('GW_ERR_CAMPAIGN_TOO_LARGE', `market ${market} has more than ${max} vehicles, the most a campaign of this message's size may name (VGW_CAMPAIGN_MAX_BYTES)`)
}

export class CampaignRepository {
  readonly #pool: pg.Pool

  readonly #committed: LogCommitted

  constructor (pool: pg.Pool, committed: LogCommitted) {
    this.#pool = pool
    this.#committed = committed
  }

  /**
   * One message per target vehicle and its `queued` log row, set-based in one
   * transaction: a single INSERT … SELECT for the messages and one for the log.
   */
  async create (c: NewCampaign): Promise<CreatedCampaign> {
    const { created, leaves } = await inTransaction(this.#pool, async (client) => {
      const vins = 'vins' in c.target ? c.target.vins : null
      const market = 'market' in c.target ? c.target.market : null
      const byVins = vins !== null
      const targets = byVins
        ? 'SELECT v.vin, v.market FROM (SELECT DISTINCT unnest($1::text[]) AS vin) u JOIN vehicles v USING (vin)'
        : 'SELECT v.vin, v.market FROM vehicles v WHERE v.market = $1'
      if (!byVins) await refuseLargeMarket(client, market as string, c)
      let skippedVins: string[] = []
      if (byVins) {
        const skipped = await client.query<{ vin: string }>(
          'SELECT DISTINCT u.vin FROM unnest($1::text[]) AS u(vin) LEFT JOIN vehicles v USING (vin) WHERE v.vin IS NULL ORDER BY 1',
          [vins])
        skippedVins = skipped.rows.map((r) => r.vin)
      }
      const inserted = await client.query<{ n: number, xid: string, ids: string[] | null, leaves: Buffer | null }>(
        `WITH targets AS (${targets}),
         ins AS (
           INSERT INTO messages (id, vin, market, api_key_id, campaign_id, type, payload, attributes, ttl_seconds, priority, status, created_at, expires_at, fallback_at)
           SELECT vgw_uuid_v7($9::timestamptz), t.vin, t.market, $2::uuid, $3::uuid, $4, $5::bytea, $6::jsonb, $7::int, $8::int, 'queued', $9::timestamptz,
             $9::timestamptz + $7::int * interval '1 second', $9::timestamptz + $10::int * interval '1 second'
           FROM targets t
           RETURNING *
         ),
         logged AS (
           INSERT INTO transactions AS t (${LOG_COLUMNS})
           SELECT vgw_uuid_v7($9::timestamptz), created_at, vin, market, 'down', 'MESSAGE', type, id::text, NULL, (extract(epoch FROM created_at) * 1000)::int8,
             ttl_seconds, attributes, NULL, NULL, 'queued', NULL, NULL, jsonb_build_object('campaignId', campaign_id, 'priority', priority)
           FROM ins
           RETURNING t.id, vgw_log_leaf(t) AS leaf
         )
         -- The ledger's part, compact: ids and leaves in id order (a campaign may have many rows).
         SELECT count(*)::int AS n, pg_current_xact_id()::text AS xid, array_agg(id ORDER BY id)::text[] AS ids,
           string_agg(leaf, ''::bytea ORDER BY id) AS leaves FROM logged`,
        [vins ?? market, c.apiKeyId, c.id, c.type, Buffer.from(c.payload), JSON.stringify(c.attributes), c.ttlSeconds, c.priority, c.createdAt, c.fallbackAfterSeconds ?? null])
      const n = inserted.rows[0]?.n ?? 0
      // Vehicles registered since the count could carry a market past the cap; the transaction rolls back then.
      if (!byVins && n > Math.min(c.maxRecipients ?? n, c.maxRecipientsForBytes ?? n)) await refuseLargeMarket(client, market as string, c)
      await client.query(
        `INSERT INTO campaigns (id, api_key_id, type, target, message_count, skipped_vins, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
        [c.id, c.apiKeyId, c.type, JSON.stringify(vins !== null ? { vins: vins.length } : { market }), n, JSON.stringify(skippedVins), c.createdAt])
      const row = inserted.rows[0]
      const leaves: CommittedLeaf[] = (row?.ids ?? []).map((id, i) => ({ id, xid: row?.xid ?? '', leaf: (row?.leaves as Buffer).subarray(i * 32, i * 32 + 32) }))
      return { created: { id: c.id, messageCount: n, skippedVins }, leaves }
    })
    this.#committed.emit(leaves)
    return created
  }

  /** Which of these vehicles have a pending message of the campaign. */
  async vinsAmong (campaignId: string, vins: readonly string[]): Promise<string[]> {
    try {
      const { rows } = await this.#pool.query<{ vin: string }>(
        "SELECT DISTINCT vin FROM messages WHERE campaign_id = $1 AND vin = ANY($2) AND status IN ('queued', 'sent')", [campaignId, vins])
      return rows.map((r) => r.vin)
    } catch (err) {
      throw translateError(err)
    }
  }

  async report (id: string): Promise<CampaignReport | null> {
    try {
      const { rows } = await this.#pool.query<{ id: string, type: string, target: CampaignReport['target'], created_at: Date, message_count: number, skipped_vins: string[] }>(
        'SELECT id, type, target, created_at, message_count, skipped_vins FROM campaigns WHERE id = $1', [id])
      const row = rows[0]
      if (row === undefined) return null
      const counts = await this.#pool.query<{ status: string, n: number }>(
        'SELECT status, count(*)::int AS n FROM messages WHERE campaign_id = $1 GROUP BY status', [id])
      const statuses: Record<string, number> = { queued: 0, sent: 0, delivered: 0, acknowledged: 0, expired: 0, failed: 0 }
      for (const r of counts.rows) statuses[r.status] = r.n
      return { id: row.id, type: row.type, target: row.target, createdAt: row.created_at, messageCount: row.message_count, skippedVins: row.skipped_vins, statuses }
    } catch (err) {
      throw translateError(err)
    }
  }
}
