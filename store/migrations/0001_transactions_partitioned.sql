-- The append-only transaction log (DESIGN §4), partitioned by month on occurred_at.
-- Kept as a custom migration because drizzle-kit cannot express PARTITION BY (drizzle-orm#2854).
CREATE TABLE "transactions" (
	"id" uuid NOT NULL,
	"occurred_at" timestamp (6) with time zone NOT NULL,
	"received_at" timestamp (6) with time zone NOT NULL,
	"vin" text,
	"market" text,
	"direction" text NOT NULL CHECK ("direction" IN ('up', 'down', 'system')),
	"kind" text NOT NULL,
	"type" text,
	"message_id" text,
	"correlation_id" text,
	"created_at_ms" bigint,
	"ttl_seconds" integer,
	"attributes" jsonb,
	"ack_status" text,
	"ack_reason" text,
	"status" text NOT NULL,
	"error_code" text,
	"raw" bytea,
	"details" jsonb,
	PRIMARY KEY ("occurred_at", "id")
) PARTITION BY RANGE ("occurred_at");
--> statement-breakpoint
-- Uplink retries (DUP, reconnect) carry the same (vin, message_id, created_at); for
-- uplinks occurred_at is the sender's created_at, so this key includes the partition key.
CREATE UNIQUE INDEX "transactions_uplink_dedup_idx" ON "transactions" ("vin", "message_id", "occurred_at")
	WHERE "direction" = 'up' AND "message_id" IS NOT NULL;
--> statement-breakpoint
CREATE INDEX "transactions_vin_time_idx" ON "transactions" ("vin", "occurred_at" DESC, "id" DESC);
--> statement-breakpoint
-- Creates the monthly partition holding `at` if it is missing. Serialised with an
-- advisory lock so that several gateways starting at once do not race.
CREATE FUNCTION vgw_ensure_transactions_partition(at timestamptz) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
	month_start timestamptz := date_trunc('month', at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC';
	month_end timestamptz := (date_trunc('month', at AT TIME ZONE 'UTC') + interval '1 month') AT TIME ZONE 'UTC';
	part_name text := 'transactions_' || to_char(at AT TIME ZONE 'UTC', '"y"YYYY"m"MM');
BEGIN
	PERFORM pg_advisory_xact_lock(hashtext('vgw_transactions_partitions'));
	IF to_regclass(part_name) IS NULL THEN
		EXECUTE format('CREATE TABLE %I PARTITION OF transactions FOR VALUES FROM (%L) TO (%L)', part_name, month_start, month_end);
	END IF;
	RETURN part_name;
END;
$$;
