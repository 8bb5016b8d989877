-- Webhooks (README, "Integrating a backend"): each reads the durable feed through a cursor of its
-- own, so no event is copied per receiver and a slow receiver only lags its own cursor. The batch
-- in progress is the feed range (cursor, batch_end]: re-read on every retry, by any gateway, with
-- the same delivery id. A gateway delivers a batch while it holds the row's lease (a time, not a
-- lock held across the HTTP request: an open transaction would hold the feed back for everyone).
CREATE TABLE "webhooks" (
	"id" uuid PRIMARY KEY NOT NULL,
	"url" text NOT NULL,
	"events" text[] NOT NULL,
	"secret" text NOT NULL,
	"created_at" timestamp (6) with time zone NOT NULL,
	"cursor_xid" xid8 NOT NULL,
	"cursor_id" uuid NOT NULL,
	"batch_end_xid" xid8,
	"batch_end_id" uuid,
	"delivery_id" uuid,
	"attempts" integer DEFAULT 0 NOT NULL,
	"first_attempt_at" timestamp (6) with time zone,
	"last_error" text,
	"next_attempt_at" timestamp (6) with time zone NOT NULL,
	"lease_token" uuid,
	"lease_until" timestamp (6) with time zone
);
--> statement-breakpoint
CREATE INDEX "webhooks_due_idx" ON "webhooks" ("next_attempt_at");
--> statement-breakpoint
-- The dead letters: batches not delivered within the retry period, kept as their feed range.
CREATE TABLE "webhook_failures" (
	"id" uuid PRIMARY KEY NOT NULL,
	"webhook_id" uuid NOT NULL REFERENCES "webhooks" ("id") ON DELETE CASCADE,
	"delivery_id" uuid NOT NULL,
	"from_xid" xid8 NOT NULL,
	"from_id" uuid NOT NULL,
	"to_xid" xid8 NOT NULL,
	"to_id" uuid NOT NULL,
	"event_count" integer NOT NULL,
	"attempts" integer NOT NULL,
	"last_error" text,
	"failed_at" timestamp (6) with time zone NOT NULL,
	"replay_requested_at" timestamp (6) with time zone,
	"replayed_at" timestamp (6) with time zone
);
--> statement-breakpoint
CREATE INDEX "webhook_failures_webhook_idx" ON "webhook_failures" ("webhook_id", "failed_at");
--> statement-breakpoint
GRANT SELECT, INSERT, UPDATE, DELETE ON "webhooks", "webhook_failures" TO vgw_app;
