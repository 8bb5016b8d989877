import { sql } from 'drizzle-orm'
import { index, pgTable, text, timestamp, uuid } from 'drizzle-orm/pg-core'

/** Vehicles the gateway knows: seen over MQTT or registered by an operator. */
export const vehicles = pgTable('vehicles', {
  vin: text('vin').primaryKey(),
  market: text('market'),
  certFingerprint: text('cert_fingerprint'),
  firstSeenAt: timestamp('first_seen_at', { withTimezone: true, precision: 6 }).notNull().default(sql`now()`),
  lastSeenAt: timestamp('last_seen_at', { withTimezone: true, precision: 6 }),
  lastConnectedAt: timestamp('last_connected_at', { withTimezone: true, precision: 6 }),
  lastDisconnectedAt: timestamp('last_disconnected_at', { withTimezone: true, precision: 6 })
}, (t) => [index('vehicles_market_idx').on(t.market)])

/** API keys: only a SHA-256 of the secret is kept; the key itself is printed once. */
export const apiKeys = pgTable('api_keys', {
  id: uuid('id').primaryKey(),
  name: text('name').notNull(),
  keyHash: text('key_hash').notNull().unique(),
  scopes: text('scopes').array().notNull(),
  createdAt: timestamp('created_at', { withTimezone: true, precision: 6 }).notNull().default(sql`now()`),
  revokedAt: timestamp('revoked_at', { withTimezone: true, precision: 6 })
})
