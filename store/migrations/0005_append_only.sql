-- Ten years of retention by default, for markets without a policy of their own.
INSERT INTO "retention_policies" ("market", "retention_days") VALUES ('*', 3650) ON CONFLICT DO NOTHING;
--> statement-breakpoint
-- The role the gateway works as: it may append to the log and the audit trail, never change them.
-- Roles belong to the cluster, so a second database (or a racing migration) finds it made.
DO $$
BEGIN
	CREATE ROLE vgw_app NOLOGIN;
EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
END $$;
--> statement-breakpoint
DO $$
BEGIN
	EXECUTE format('GRANT vgw_app TO %I', current_user);
EXCEPTION WHEN OTHERS THEN NULL; -- already a member, or a superuser that needs no membership
END $$;
--> statement-breakpoint
GRANT USAGE ON SCHEMA public TO vgw_app;
--> statement-breakpoint
GRANT SELECT, INSERT ON "transactions", "audit_log" TO vgw_app;
--> statement-breakpoint
GRANT SELECT, INSERT, UPDATE, DELETE ON "vehicles", "api_keys", "messages", "campaigns", "retention_policies", "legal_holds" TO vgw_app;
--> statement-breakpoint
-- Partitions are made on demand by the gateway, with the owner's rights.
ALTER FUNCTION vgw_ensure_transactions_partition(timestamptz) SECURITY DEFINER SET search_path = public;
--> statement-breakpoint
-- Defence in depth, also against the owner: rows never change, and only the retention
-- path (which sets vgw.retention for its own transaction) removes any.
CREATE FUNCTION vgw_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	IF TG_OP = 'DELETE' AND TG_TABLE_NAME LIKE 'transactions%' AND current_setting('vgw.retention', true) = 'on' THEN
		RETURN OLD;
	END IF;
	RAISE EXCEPTION '% on % refused: the table is append-only', TG_OP, TG_TABLE_NAME USING ERRCODE = 'insufficient_privilege';
END;
$$;
--> statement-breakpoint
CREATE TRIGGER "transactions_append_only" BEFORE UPDATE OR DELETE ON "transactions" FOR EACH ROW EXECUTE FUNCTION vgw_refuse_change();
--> statement-breakpoint
CREATE TRIGGER "audit_log_append_only" BEFORE UPDATE OR DELETE ON "audit_log" FOR EACH ROW EXECUTE FUNCTION vgw_refuse_change();
--> statement-breakpoint
CREATE FUNCTION vgw_refuse_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	RAISE EXCEPTION 'TRUNCATE on % refused: the table is append-only', TG_TABLE_NAME USING ERRCODE = 'insufficient_privilege';
END;
$$;
--> statement-breakpoint
CREATE TRIGGER "audit_log_no_truncate" BEFORE TRUNCATE ON "audit_log" FOR EACH STATEMENT EXECUTE FUNCTION vgw_refuse_truncate();
