-- The write-time ledger (issue #19 C, docs/legal-export.md "Proving the log"). Every statement that
-- writes log rows answers each row's leaf hash, computed here from exactly what was stored; the
-- gateway makes each transaction's rows a batch (a Merkle tree of their leaves), gathers the
-- batches of a checkpoint interval into a block (a Merkle tree of the batches), chains the blocks
-- and signs each block's link with a key the database never holds. The leaf's definition is the
-- contract third parties recompute (protocol/ledger.ts, leafPreimage): keep the two identical.
-- PL/pgSQL, each field written inline: a LANGUAGE sql function taking the row is not inlined and
-- cost about three times as much per row (measured, docs/benchmarks.md "Ledger").
CREATE FUNCTION vgw_log_leaf(t transactions) RETURNS bytea LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
DECLARE
	occurred text := floor(extract(epoch FROM t.occurred_at) * 1000)::bigint::text;
	received text := floor(extract(epoch FROM t.received_at) * 1000)::bigint::text;
	attrs text := t.attributes::text;
	details text := t.details::text;
BEGIN
	-- Each field as <byte length>:<value>, '-' for NULL, one per line (protocol/ledger.ts, leafPreimage).
	RETURN sha256('\x00'::bytea || convert_to(concat_ws(E'\n', 'vgw-log-row/1',
		octet_length(t.id::text) || ':' || t.id::text,
		coalesce(octet_length(t.vin) || ':' || t.vin, '-'),
		coalesce(octet_length(t.market) || ':' || t.market, '-'),
		coalesce(octet_length(t.direction) || ':' || t.direction, '-'),
		coalesce(octet_length(t.kind) || ':' || t.kind, '-'),
		coalesce(octet_length(t.type) || ':' || t.type, '-'),
		coalesce(octet_length(t.message_id) || ':' || t.message_id, '-'),
		coalesce(octet_length(t.correlation_id) || ':' || t.correlation_id, '-'),
		coalesce(octet_length(t.created_at_ms::text) || ':' || t.created_at_ms, '-'),
		coalesce(octet_length(t.ttl_seconds::text) || ':' || t.ttl_seconds, '-'),
		coalesce(octet_length(attrs) || ':' || attrs, '-'),
		coalesce(octet_length(t.ack_status) || ':' || t.ack_status, '-'),
		coalesce(octet_length(t.ack_reason) || ':' || t.ack_reason, '-'),
		coalesce(octet_length(t.status) || ':' || t.status, '-'),
		coalesce(octet_length(t.error_code) || ':' || t.error_code, '-'),
		octet_length(occurred) || ':' || occurred,
		octet_length(received) || ':' || received,
		coalesce(octet_length(details) || ':' || details, '-'),
		coalesce(octet_length(octet_length(t.raw)::text) || ':' || octet_length(t.raw), '-')) || E'\n', 'UTF8') || coalesce(t.raw, '\x'::bytea));
END
$$;
--> statement-breakpoint
-- One row per gateway process (an epoch): its own chain and checkpoints.
CREATE TABLE "ledger_epochs" (
	"epoch" uuid PRIMARY KEY,
	"gateway" text NOT NULL,
	"key_id" text NOT NULL,
	"started_at" timestamptz NOT NULL DEFAULT now()
);
--> statement-breakpoint
-- One row per transaction that wrote log rows: its leaves (in id order) and their Merkle root.
CREATE TABLE "ledger_batches" (
	"epoch" uuid NOT NULL REFERENCES "ledger_epochs",
	"seq" bigint NOT NULL,
	"xid" xid8 NOT NULL,
	"row_count" integer NOT NULL,
	"leaf_ids" uuid[] NOT NULL,
	"leaves" bytea NOT NULL,
	"root" bytea NOT NULL,
	"created_at" timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY ("epoch", "seq")
);
--> statement-breakpoint
CREATE INDEX "ledger_batches_xid_idx" ON "ledger_batches" ("xid");
--> statement-breakpoint
-- One row per signed checkpoint: the batches first_seq..last_seq, the Merkle root over their batch
-- hashes, the link chaining it to the block before, and the signed note (its copies outside the
-- database are what a verifier trusts).
CREATE TABLE "ledger_blocks" (
	"epoch" uuid NOT NULL REFERENCES "ledger_epochs",
	"block" bigint NOT NULL,
	"first_seq" bigint NOT NULL,
	"last_seq" bigint NOT NULL,
	"root" bytea NOT NULL,
	"prev" bytea NOT NULL,
	"link" bytea NOT NULL,
	"note" text NOT NULL,
	"created_at" timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY ("epoch", "block")
);
--> statement-breakpoint
CREATE INDEX "ledger_blocks_created_idx" ON "ledger_blocks" ("created_at");
--> statement-breakpoint
GRANT SELECT, INSERT ON "ledger_epochs", "ledger_batches", "ledger_blocks" TO vgw_app;
--> statement-breakpoint
GRANT EXECUTE ON FUNCTION vgw_log_leaf(transactions) TO vgw_app;
--> statement-breakpoint
CREATE TRIGGER "ledger_epochs_append_only" BEFORE UPDATE OR DELETE ON "ledger_epochs" FOR EACH ROW EXECUTE FUNCTION vgw_refuse_change();
--> statement-breakpoint
CREATE TRIGGER "ledger_batches_append_only" BEFORE UPDATE OR DELETE ON "ledger_batches" FOR EACH ROW EXECUTE FUNCTION vgw_refuse_change();
--> statement-breakpoint
CREATE TRIGGER "ledger_blocks_append_only" BEFORE UPDATE OR DELETE ON "ledger_blocks" FOR EACH ROW EXECUTE FUNCTION vgw_refuse_change();
