-- The write-time ledger (issue #19 C, docs/legal-export.md "Proving the log"). Every statement that
-- writes log rows answers each row's leaf hash, computed here from exactly what was stored; the
-- gateway makes each transaction's rows a batch (a Merkle tree of their leaves), gathers the
-- batches of a checkpoint interval into a block (a Merkle tree of the batches), chains the blocks
-- and signs each block's link with a key the database never holds. The leaf's definition is the
-- contract third parties recompute (protocol/ledger.ts, leafPreimage): keep the two identical.
CREATE FUNCTION vgw_log_field(v text) RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
	SELECT CASE WHEN v IS NULL THEN '-' ELSE octet_length(v)::text || ':' || v END
$$;
--> statement-breakpoint
CREATE FUNCTION vgw_log_leaf(t transactions) RETURNS bytea LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
	SELECT sha256('\x00'::bytea || convert_to(concat_ws(E'\n', 'vgw-log-row/1',
		vgw_log_field(t.id::text), vgw_log_field(t.vin), vgw_log_field(t.market), vgw_log_field(t.direction),
		vgw_log_field(t.kind), vgw_log_field(t.type), vgw_log_field(t.message_id), vgw_log_field(t.correlation_id),
		vgw_log_field(t.created_at_ms::text), vgw_log_field(t.ttl_seconds::text), vgw_log_field(t.attributes::text),
		vgw_log_field(t.ack_status), vgw_log_field(t.ack_reason), vgw_log_field(t.status), vgw_log_field(t.error_code),
		vgw_log_field(floor(extract(epoch FROM t.occurred_at) * 1000)::bigint::text),
		vgw_log_field(floor(extract(epoch FROM t.received_at) * 1000)::bigint::text),
		vgw_log_field(t.details::text), vgw_log_field(octet_length(t.raw)::text)) || E'\n', 'UTF8') || coalesce(t.raw, '\x'::bytea))
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
GRANT EXECUTE ON FUNCTION vgw_log_field(text), vgw_log_leaf(transactions) TO vgw_app;
--> statement-breakpoint
CREATE TRIGGER "ledger_epochs_append_only" BEFORE UPDATE OR DELETE ON "ledger_epochs" FOR EACH ROW EXECUTE FUNCTION vgw_refuse_change();
--> statement-breakpoint
CREATE TRIGGER "ledger_batches_append_only" BEFORE UPDATE OR DELETE ON "ledger_batches" FOR EACH ROW EXECUTE FUNCTION vgw_refuse_change();
--> statement-breakpoint
CREATE TRIGGER "ledger_blocks_append_only" BEFORE UPDATE OR DELETE ON "ledger_blocks" FOR EACH ROW EXECUTE FUNCTION vgw_refuse_change();
