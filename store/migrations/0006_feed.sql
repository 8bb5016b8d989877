-- The durable feed (README, "Integrating a backend"): each log row records the id of the
-- transaction that inserted it. pg_current_xact_id() is STABLE, so adding the column is a
-- catalogue change, not a rewrite of ten years of partitions: rows already stored read the
-- migration's own transaction id and come first, ordered by their (time-ordered) ids.
ALTER TABLE "transactions" ADD COLUMN "xid" xid8 NOT NULL DEFAULT pg_current_xact_id();
--> statement-breakpoint
-- The feed reads in (xid, id) order. One index on xid alone: every row of a batch shares its
-- transaction's xid, so B-tree deduplication (PostgreSQL 13+) keeps about one posting list per
-- batch, and new keys only ever go to the right edge. Rows of one xid are sorted by id after
-- the index scan (an incremental sort over at most one batch).
CREATE INDEX "transactions_feed_idx" ON "transactions" ("xid");
