-- The log's server-set columns and one row per event (issue #19 B and D).
--
-- received_at and xid are the database's: the gateway's login may insert every other column but
-- not these two, so it cannot back-date a row (received_at) nor place one before the feed's
-- cursors (xid). Both come from their defaults, the inserting transaction's start and id; received_at
-- to the millisecond, so that what a JSON export shows is the whole stored value (the ledger's
-- leaves cover it, migration 0015).
ALTER TABLE "transactions" ALTER COLUMN "received_at" SET DEFAULT date_trunc('milliseconds', now());
--> statement-breakpoint
REVOKE INSERT ON "transactions" FROM vgw_app;
--> statement-breakpoint
GRANT INSERT ("id", "occurred_at", "vin", "market", "direction", "kind", "type", "message_id", "correlation_id", "created_at_ms",
  "ttl_seconds", "attributes", "ack_status", "ack_reason", "status", "error_code", "raw", "details") ON "transactions" TO vgw_app;
--> statement-breakpoint
-- A row is stored once: (vin, occurred_at, id) is unique (system rows without a vehicle included),
-- so a batch written again after its first answer was lost skips what the first attempt stored,
-- and waits for that attempt when it is still running inside PostgreSQL (a NOT EXISTS check
-- could not see it). It replaces transactions_vin_time_idx, same columns and order, for every
-- read by vehicle; uniqueness costs the lookup the insertion does anyway.
CREATE UNIQUE INDEX "transactions_vin_time_id_key" ON "transactions" ("vin", "occurred_at" DESC, "id" DESC) NULLS NOT DISTINCT;
--> statement-breakpoint
DROP INDEX "transactions_vin_time_idx";
