CREATE TABLE "campaigns" (
	"id" uuid PRIMARY KEY NOT NULL,
	"api_key_id" uuid,
	"type" text NOT NULL,
	"target" jsonb NOT NULL,
	"message_count" integer NOT NULL,
	"skipped_vins" jsonb NOT NULL,
	"created_at" timestamp (6) with time zone NOT NULL
);
--> statement-breakpoint
CREATE TABLE "messages" (
	"id" uuid PRIMARY KEY NOT NULL,
	"vin" text NOT NULL,
	"market" text,
	"api_key_id" uuid,
	"idempotency_key" text,
	"campaign_id" uuid,
	"type" text NOT NULL,
	"payload" "bytea" NOT NULL,
	"attributes" jsonb NOT NULL,
	"ttl_seconds" integer NOT NULL,
	"priority" integer DEFAULT 0 NOT NULL,
	"status" text NOT NULL,
	"ack_status" text,
	"created_at" timestamp (6) with time zone NOT NULL,
	"expires_at" timestamp (6) with time zone NOT NULL,
	"sent_at" timestamp (6) with time zone,
	"delivered_at" timestamp (6) with time zone,
	"acknowledged_at" timestamp (6) with time zone,
	"finished_at" timestamp (6) with time zone,
	"attempts" integer DEFAULT 0 NOT NULL
);
--> statement-breakpoint
ALTER TABLE "vehicles" ADD COLUMN "registered_at" timestamp (6) with time zone;--> statement-breakpoint
CREATE UNIQUE INDEX "messages_idempotency_idx" ON "messages" USING btree ("api_key_id","idempotency_key");--> statement-breakpoint
CREATE INDEX "messages_pending_idx" ON "messages" USING btree ("vin","priority" DESC NULLS LAST,"created_at","id") WHERE status IN ('queued', 'sent');--> statement-breakpoint
CREATE INDEX "messages_expiry_idx" ON "messages" USING btree ("expires_at") WHERE status IN ('queued', 'sent');--> statement-breakpoint
CREATE INDEX "messages_campaign_idx" ON "messages" USING btree ("campaign_id","status");--> statement-breakpoint
CREATE INDEX "messages_vin_delivered_idx" ON "messages" USING btree ("vin","delivered_at");