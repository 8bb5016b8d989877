import { sql } from 'drizzle-orm'
import { bigint, customType, index, integer, jsonb, pgTable, primaryKey, text, timestamp, uniqueIndex, uuid } from 'drizzle-orm/pg-core'

const bytea = customType<{ data: Buffer, driverData: Buffer }>({ dataType: () => 'bytea' })

/** Vehicles the gateway knows: seen over MQTT or registered by an operator. */
export const vehicles = pgTable('vehicles', {
  vin: text('vin').primaryKey(),
  market: text('market'),
  certFingerprint: text('cert_fingerprint'),
  firstSeenAt: timestamp('first_seen_at', { withTimezone: true, precision: 6 }).notNull().default(sql`now()`),
  lastSeenAt: timestamp('last_seen_at', { withTimezone: true, precision: 6 }),
  lastConnectedAt: timestamp('last_connected_at', { withTimezone: true, precision: 6 }),
  lastDisconnectedAt: timestamp('last_disconnected_at', { withTimezone: true, precision: 6 }),
  registeredAt: timestamp('registered_at', { withTimezone: true, precision: 6 })
}, (t) => [index('vehicles_market_idx').on(t.market)])

/**
 * Downlink messages: PostgreSQL is the per-vehicle queue (README, "Delivery semantics"). A row is
 * committed (status `queued`) before the API answers 202; the dispatcher sends
 * every row not yet delivered and not expired whenever its vehicle is subscribed.
 * The envelope is built from the row the same way each time (created_at_ms is
 * created_at), so every redelivery carries the same bytes.
 */
export const messages = pgTable('messages', {
  id: uuid('id').primaryKey(),
  vin: text('vin').notNull(),
  market: text('market'),
  apiKeyId: uuid('api_key_id'),
  idempotencyKey: text('idempotency_key'),
  campaignId: uuid('campaign_id'),
  type: text('type').notNull(),
  payload: bytea('payload').notNull(),
  attributes: jsonb('attributes').$type<Record<string, string>>().notNull(),
  ttlSeconds: integer('ttl_seconds').notNull(),
  priority: integer('priority').notNull().default(0),
  status: text('status').notNull(),
  ackStatus: text('ack_status'),
  createdAt: timestamp('created_at', { withTimezone: true, precision: 6 }).notNull(),
  expiresAt: timestamp('expires_at', { withTimezone: true, precision: 6 }).notNull(),
  sentAt: timestamp('sent_at', { withTimezone: true, precision: 6 }),
  deliveredAt: timestamp('delivered_at', { withTimezone: true, precision: 6 }),
  acknowledgedAt: timestamp('acknowledged_at', { withTimezone: true, precision: 6 }),
  finishedAt: timestamp('finished_at', { withTimezone: true, precision: 6 }),
  attempts: integer('attempts').notNull().default(0)
}, (t) => [
  uniqueIndex('messages_idempotency_idx').on(t.apiKeyId, t.idempotencyKey),
  index('messages_pending_idx').on(t.vin, t.priority.desc(), t.createdAt, t.id).where(sql`status IN ('queued', 'sent')`),
  index('messages_expiry_idx').on(t.expiresAt).where(sql`status IN ('queued', 'sent')`),
  index('messages_campaign_idx').on(t.campaignId, t.status),
  index('messages_vin_delivered_idx').on(t.vin, t.deliveredAt)
])

/** A bulk send: one message per vehicle, created set-based. */
export const campaigns = pgTable('campaigns', {
  id: uuid('id').primaryKey(),
  apiKeyId: uuid('api_key_id'),
  type: text('type').notNull(),
  target: jsonb('target').$type<{ vins?: number, market?: string }>().notNull(),
  messageCount: integer('message_count').notNull(),
  skippedVins: jsonb('skipped_vins').$type<string[]>().notNull(),
  createdAt: timestamp('created_at', { withTimezone: true, precision: 6 }).notNull()
})

/** API keys: only a SHA-256 of the secret is kept; the key itself is printed once. */
export const apiKeys = pgTable('api_keys', {
  id: uuid('id').primaryKey(),
  name: text('name').notNull(),
  keyHash: text('key_hash').notNull().unique(),
  scopes: text('scopes').array().notNull(),
  createdAt: timestamp('created_at', { withTimezone: true, precision: 6 }).notNull().default(sql`now()`),
  revokedAt: timestamp('revoked_at', { withTimezone: true, precision: 6 }),
  expiresAt: timestamp('expires_at', { withTimezone: true, precision: 6 }),
  lastUsedAt: timestamp('last_used_at', { withTimezone: true, precision: 6 })
}, (t) => [index('api_keys_name_idx').on(t.name)])

/** Retention per market (market `*` is the default for every other market). */
export const retentionPolicies = pgTable('retention_policies', {
  market: text('market').primaryKey(),
  retentionDays: integer('retention_days').notNull(),
  updatedAt: timestamp('updated_at', { withTimezone: true, precision: 6 }).notNull().default(sql`now()`)
})

/** Legal holds: while one is active, retention removes nothing of the vehicle. */
export const legalHolds = pgTable('legal_holds', {
  id: uuid('id').primaryKey(),
  vin: text('vin').notNull(),
  reason: text('reason').notNull(),
  createdAt: timestamp('created_at', { withTimezone: true, precision: 6 }).notNull(),
  createdBy: text('created_by').notNull(),
  releasedAt: timestamp('released_at', { withTimezone: true, precision: 6 }),
  releasedBy: text('released_by'),
  releaseReason: text('release_reason')
}, (t) => [index('legal_holds_active_idx').on(t.vin).where(sql`released_at IS NULL`)])

/**
 * Who did what to the data's lifecycle: retention runs, holds, keys, exports. Append-only like the
 * log; written only by owner-run functions and the owner's paths, `at` always set by the database
 * (migration 0013).
 */
export const auditLog = pgTable('audit_log', {
  id: uuid('id').primaryKey().defaultRandom(),
  at: timestamp('at', { withTimezone: true, precision: 6 }).notNull().default(sql`now()`),
  actor: text('actor').notNull(),
  action: text('action').notNull(),
  details: jsonb('details').$type<Record<string, unknown>>().notNull()
}, (t) => [index('audit_log_at_idx').on(t.at)])

/** TLS session ticket secrets, one per rotation period, shared by a cluster (migration 0012, store/ticket-key-repository.ts). */
export const tlsTicketKeys = pgTable('tls_ticket_keys', {
  periodMs: bigint('period_ms', { mode: 'number' }).notNull(),
  epoch: bigint('epoch', { mode: 'number' }).notNull(),
  secret: bytea('secret').notNull(),
  createdAt: timestamp('created_at', { withTimezone: true, precision: 6 }).notNull().default(sql`now()`)
}, (t) => [primaryKey({ columns: [t.periodMs, t.epoch] })])
