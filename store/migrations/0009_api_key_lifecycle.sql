-- API keys with a lifecycle (README, "Security"): a key may expire (a rotated key keeps working
-- until the end of its grace period), and the time it was last used is kept, written in batches.
ALTER TABLE "api_keys" ADD COLUMN "expires_at" timestamp (6) with time zone;
--> statement-breakpoint
ALTER TABLE "api_keys" ADD COLUMN "last_used_at" timestamp (6) with time zone;
--> statement-breakpoint
CREATE INDEX "api_keys_name_idx" ON "api_keys" USING btree ("name");
