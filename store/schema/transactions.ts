import { bigint, customType, integer, jsonb, pgTable, text, timestamp, uuid } from 'drizzle-orm/pg-core'

const bytea = customType<{ data: Buffer, driverData: Buffer }>({ dataType: () => 'bytea' })

/**
 * The append-only transaction log. drizzle-kit cannot express PARTITION BY
 * (drizzle-orm#2854), so this table is created by the custom migration
 * `0001_transactions_partitioned.sql` and is kept out of drizzle.config.ts;
 * this definition exists for typed queries only.
 */
export const transactions = pgTable('transactions', {
  id: uuid('id').notNull(),
  occurredAt: timestamp('occurred_at', { withTimezone: true, precision: 6 }).notNull(),
  receivedAt: timestamp('received_at', { withTimezone: true, precision: 6 }).notNull(),
  vin: text('vin'),
  market: text('market'),
  direction: text('direction').notNull(),
  kind: text('kind').notNull(),
  type: text('type'),
  messageId: text('message_id'),
  correlationId: text('correlation_id'),
  createdAtMs: bigint('created_at_ms', { mode: 'number' }),
  ttlSeconds: integer('ttl_seconds'),
  attributes: jsonb('attributes').$type<Record<string, string>>(),
  ackStatus: text('ack_status'),
  ackReason: text('ack_reason'),
  status: text('status').notNull(),
  errorCode: text('error_code'),
  raw: bytea('raw'),
  details: jsonb('details').$type<Record<string, unknown>>()
})
