-- A fallback deadline per downlink (README, "Integrating a backend"): when the vehicle has not
-- PUBACKed by fallback_at, one `fallback_due` log row is written and fallback_due_at is set; the
-- message stays queued until its TTL.
ALTER TABLE "messages" ADD COLUMN "fallback_at" timestamp (6) with time zone;
--> statement-breakpoint
ALTER TABLE "messages" ADD COLUMN "fallback_due_at" timestamp (6) with time zone;
--> statement-breakpoint
-- Only messages still waiting for their fallback are in it, so the job's scan stays small.
CREATE INDEX "messages_fallback_idx" ON "messages" ("fallback_at") WHERE fallback_at IS NOT NULL AND fallback_due_at IS NULL AND status IN ('queued', 'sent');
