-- A database boundary that holds (README, "Security"). The gateway's pools log in as a role that
-- is only a member of vgw_app (store/app-login.ts); what that role may do is narrowed here.
--
-- TRUNCATE skips row triggers: refuse it on the log as on the audit trail, whoever asks.
CREATE TRIGGER "transactions_no_truncate" BEFORE TRUNCATE ON "transactions" FOR EACH STATEMENT EXECUTE FUNCTION vgw_refuse_truncate();
--> statement-breakpoint
-- The partition helper runs with the owner's rights: only the gateway's role may call it.
REVOKE EXECUTE ON FUNCTION vgw_ensure_transactions_partition(timestamptz) FROM PUBLIC;
--> statement-breakpoint
GRANT EXECUTE ON FUNCTION vgw_ensure_transactions_partition(timestamptz) TO vgw_app;
--> statement-breakpoint
-- A hold is never deleted, only released; nothing else of it changes.
REVOKE UPDATE, DELETE ON "legal_holds" FROM vgw_app;
--> statement-breakpoint
GRANT UPDATE ("released_at", "released_by", "release_reason") ON "legal_holds" TO vgw_app;
--> statement-breakpoint
-- Retention policies change only through the owner's checked path (the floor in server configuration).
REVOKE INSERT, UPDATE, DELETE ON "retention_policies" FROM vgw_app;
--> statement-breakpoint
-- Rows leave the log only through retention: the owner, in a transaction that set vgw.retention,
-- and never a row of a vehicle under legal hold (checked here too, so no path can skip it).
CREATE OR REPLACE FUNCTION vgw_refuse_change() RETURNS trigger LANGUAGE plpgsql SET search_path = public AS $$
BEGIN
	IF TG_OP = 'DELETE' AND TG_TABLE_NAME LIKE 'transactions%' AND current_setting('vgw.retention', true) = 'on'
		AND pg_has_role(current_user, (SELECT relowner FROM pg_class WHERE oid = TG_RELID), 'USAGE') THEN
		IF OLD.vin IS NOT NULL AND EXISTS (SELECT 1 FROM legal_holds h WHERE h.vin = OLD.vin AND h.released_at IS NULL) THEN
			RAISE EXCEPTION 'DELETE of a row of % refused: the vehicle is under legal hold', OLD.vin USING ERRCODE = 'insufficient_privilege';
		END IF;
		RETURN OLD;
	END IF;
	RAISE EXCEPTION '% on % refused: the table is append-only', TG_OP, TG_TABLE_NAME USING ERRCODE = 'insufficient_privilege';
END;
$$;
