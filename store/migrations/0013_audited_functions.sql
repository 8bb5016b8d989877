-- The legal record is complete (README, "Security"): the gateway's role no longer writes API keys,
-- holds or the audit trail itself. It calls functions that run with the owner's rights, check
-- their arguments, take the time from the database's clock, and write their own audit row in the
-- same transaction; a direct INSERT or UPDATE fails with SQLSTATE 42501.
--
-- Every function here pins search_path with pg_temp last: without it a caller's temporary table
-- named like ours would be found first inside the owner's rights.
--
-- Audit rows: the time is the database's, whoever inserts (the owner's retention run too).
ALTER TABLE "audit_log" ALTER COLUMN "id" SET DEFAULT gen_random_uuid();
--> statement-breakpoint
ALTER TABLE "audit_log" ALTER COLUMN "at" SET DEFAULT now();
--> statement-breakpoint
CREATE FUNCTION vgw_audit_time() RETURNS trigger LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
BEGIN
	NEW.at := now();
	RETURN NEW;
END;
$$;
--> statement-breakpoint
CREATE TRIGGER "audit_log_time" BEFORE INSERT ON "audit_log" FOR EACH ROW EXECUTE FUNCTION vgw_audit_time();
--> statement-breakpoint
REVOKE INSERT ON "audit_log" FROM vgw_app;
--> statement-breakpoint
-- Keys: only the time a key was last used is the gateway's to write (in batches, README "Security").
-- Revoking the table's UPDATE also revokes the column grants of legal_holds below (REVOKE's rule).
REVOKE INSERT, UPDATE, DELETE ON "api_keys" FROM vgw_app;
--> statement-breakpoint
GRANT UPDATE ("last_used_at") ON "api_keys" TO vgw_app;
--> statement-breakpoint
REVOKE INSERT, UPDATE, DELETE ON "legal_holds" FROM vgw_app;
--> statement-breakpoint
-- Scopes a key may have: the same list as SCOPES in store/api-key-repository.ts.
CREATE FUNCTION vgw_valid_scopes() RETURNS text[] LANGUAGE sql IMMUTABLE AS $$
	SELECT ARRAY['messages:send', 'messages:read', 'transactions:read', 'vehicles:read', 'stream:read', 'legal', 'metrics:read', 'admin']
$$;
--> statement-breakpoint
-- Times in audit details as the gateway writes them (ISO 8601, UTC, milliseconds).
CREATE FUNCTION vgw_iso(t timestamptz) RETURNS text LANGUAGE sql IMMUTABLE AS $$
	SELECT to_char(t AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')
$$;
--> statement-breakpoint
-- Who acts, as the audit trail names them: an API key by its id (the name is read here, not
-- taken from the caller), or an operator on the server (`cli:alice`), never both. An operator
-- name cannot pass for a key.
CREATE FUNCTION vgw_actor(p_by_key uuid, p_operator text) RETURNS text LANGUAGE plpgsql STABLE SET search_path = public, pg_temp AS $$
DECLARE
	v_name text;
BEGIN
	IF (p_by_key IS NULL) = (p_operator IS NULL) THEN
		RAISE EXCEPTION 'exactly one of an API key and an operator acts' USING ERRCODE = 'invalid_parameter_value';
	END IF;
	IF p_by_key IS NULL THEN
		IF p_operator LIKE 'api-key:%' THEN
			RAISE EXCEPTION 'operator % refused: a key acts by its id, not by a name written like the trail''s', p_operator USING ERRCODE = 'insufficient_privilege';
		END IF;
		IF length(p_operator) NOT BETWEEN 1 AND 200 THEN
			RAISE EXCEPTION 'an operator is named in 1 to 200 characters' USING ERRCODE = 'invalid_parameter_value';
		END IF;
		RETURN p_operator;
	END IF;
	SELECT name INTO v_name FROM api_keys WHERE id = p_by_key;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'no API key %', p_by_key USING ERRCODE = 'insufficient_privilege';
	END IF;
	RETURN format('api-key:%s (%s)', p_by_key, v_name);
END;
$$;
--> statement-breakpoint
-- Whether the acting key may hand out (or take away) every one of these scopes: `admin` holds
-- every scope except `legal` (grants() in store/api-key-repository.ts). An operator may.
CREATE FUNCTION vgw_key_grants(p_by_key uuid, p_scopes text[]) RETURNS boolean LANGUAGE sql STABLE SET search_path = public, pg_temp AS $$
	SELECT p_by_key IS NULL OR EXISTS (SELECT 1 FROM api_keys k WHERE k.id = p_by_key
		AND NOT EXISTS (SELECT 1 FROM unnest(p_scopes) AS s WHERE NOT (s = ANY(k.scopes) OR (s <> 'legal' AND 'admin' = ANY(k.scopes)))))
$$;
--> statement-breakpoint
-- Refuses (42501, hint vgw:scope: GW_ERR_FORBIDDEN in store/store-errors.ts) naming the scopes beyond the key.
CREATE FUNCTION vgw_require_grants(p_by_key uuid, p_scopes text[], p_what text) RETURNS void LANGUAGE plpgsql STABLE SET search_path = public, pg_temp AS $$
DECLARE
	v_beyond text[] := ARRAY(SELECT s FROM unnest(p_scopes) AS s WHERE NOT vgw_key_grants(p_by_key, ARRAY[s]) ORDER BY s);
BEGIN
	IF cardinality(v_beyond) > 0 THEN
		RAISE EXCEPTION 'this key cannot % of the scope(s) %: admin does not include legal; use vgw keys on the server, or a key that holds them', p_what, array_to_string(v_beyond, ', ')
			USING ERRCODE = 'insufficient_privilege', HINT = 'vgw:scope';
	END IF;
END;
$$;
--> statement-breakpoint
CREATE FUNCTION vgw_write_audit(p_actor text, p_action text, p_details jsonb) RETURNS void LANGUAGE sql SET search_path = public, pg_temp AS $$
	INSERT INTO audit_log (id, at, actor, action, details) VALUES (gen_random_uuid(), now(), p_actor, p_action, p_details)
$$;
--> statement-breakpoint
-- A new key (its SHA-256, never the secret), audited as key.create.
CREATE FUNCTION vgw_create_api_key(p_id uuid, p_name text, p_key_hash text, p_scopes text[], p_expires_at timestamptz, p_by_key uuid, p_operator text)
RETURNS SETOF api_keys LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
	v_actor text := vgw_actor(p_by_key, p_operator);
	v_row api_keys;
BEGIN
	IF p_id IS NULL OR length(p_name) NOT BETWEEN 1 AND 200 OR p_key_hash !~ '^[0-9a-f]{64}$'
		OR coalesce(cardinality(p_scopes), 0) = 0 OR NOT p_scopes <@ vgw_valid_scopes() OR array_position(p_scopes, NULL) IS NOT NULL
		OR p_expires_at <= now() THEN
		RAISE EXCEPTION 'API key refused: a name of 1 to 200 characters, a SHA-256 in hex, known scopes, an expiry in the future' USING ERRCODE = 'invalid_parameter_value';
	END IF;
	PERFORM vgw_require_grants(p_by_key, p_scopes, 'hand out keys');
	INSERT INTO api_keys (id, name, key_hash, scopes, expires_at, created_at) VALUES (p_id, p_name, p_key_hash, p_scopes, p_expires_at, now()) RETURNING * INTO v_row;
	PERFORM vgw_write_audit(v_actor, 'key.create',
		jsonb_build_object('keyId', p_id, 'name', p_name, 'scopes', to_jsonb(p_scopes), 'expiresAt', vgw_iso(p_expires_at)));
	RETURN NEXT v_row;
END;
$$;
--> statement-breakpoint
-- Revokes one live key (p_id) or every live key of a name (p_name), audited as key.revoke. A key
-- may revoke only keys whose every scope it could hand out: `admin` cannot revoke a `legal` key.
CREATE FUNCTION vgw_revoke_api_keys(p_id uuid, p_name text, p_by_key uuid, p_operator text)
RETURNS SETOF api_keys LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
	v_actor text := vgw_actor(p_by_key, p_operator);
	v_scopes text[];
	v_ids uuid[];
BEGIN
	IF (p_id IS NULL) = (p_name IS NULL) THEN
		RAISE EXCEPTION 'revoke by id or by name' USING ERRCODE = 'invalid_parameter_value';
	END IF;
	SELECT coalesce(array_agg(id ORDER BY created_at DESC, id DESC), '{}') INTO v_ids FROM (SELECT id, created_at FROM api_keys
		WHERE (id = p_id OR name = p_name) AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > now()) FOR UPDATE) k;
	SELECT coalesce(array_agg(DISTINCT s), '{}') INTO v_scopes FROM api_keys k, unnest(k.scopes) AS s WHERE k.id = ANY(v_ids);
	PERFORM vgw_require_grants(p_by_key, v_scopes, 'revoke keys');
	IF cardinality(v_ids) = 0 THEN
		RETURN;
	END IF;
	PERFORM vgw_write_audit(v_actor, 'key.revoke',
		jsonb_build_object('keyIds', to_jsonb(v_ids), 'name', coalesce(p_name, (SELECT name FROM api_keys WHERE id = p_id))));
	RETURN QUERY UPDATE api_keys SET revoked_at = now() WHERE id = ANY(v_ids) RETURNING *;
END;
$$;
--> statement-breakpoint
-- A new secret for the keys of a name (README, "Security"), audited as key.rotate: one new key
-- with the newest's scopes, living as long as it was meant to unless p_set_expiry (then
-- p_expires_at, null: never); the old keys expire p_grace_ms from now, or sooner if they would
-- anyway. The new key is the first row; the others are the old keys with their new expiry.
CREATE FUNCTION vgw_rotate_api_keys(p_name text, p_id uuid, p_key_hash text, p_grace_ms bigint, p_set_expiry boolean, p_expires_at timestamptz, p_by_key uuid, p_operator text)
RETURNS SETOF api_keys LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
	v_actor text := vgw_actor(p_by_key, p_operator);
	v_newest api_keys;
	v_ids uuid[];
	v_scopes text[];
	v_until timestamptz;
	v_new api_keys;
BEGIN
	IF p_id IS NULL OR p_key_hash !~ '^[0-9a-f]{64}$' OR p_grace_ms IS NULL OR p_grace_ms < 0 OR (p_set_expiry AND p_expires_at <= now()) THEN
		RAISE EXCEPTION 'rotation refused: a SHA-256 in hex, a grace of 0 or more, an expiry in the future' USING ERRCODE = 'invalid_parameter_value';
	END IF;
	SELECT array_agg(id ORDER BY created_at DESC, id DESC) INTO v_ids FROM (SELECT id, created_at FROM api_keys
		WHERE name = p_name AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > now()) FOR UPDATE) k;
	IF v_ids IS NULL THEN
		RETURN;
	END IF;
	SELECT coalesce(array_agg(DISTINCT s), '{}') INTO v_scopes FROM api_keys k, unnest(k.scopes) AS s WHERE k.id = ANY(v_ids);
	PERFORM vgw_require_grants(p_by_key, v_scopes, 'rotate keys');
	SELECT * INTO v_newest FROM api_keys WHERE id = v_ids[1];
	v_until := CASE WHEN p_set_expiry THEN p_expires_at WHEN v_newest.expires_at IS NULL THEN NULL ELSE now() + (v_newest.expires_at - v_newest.created_at) END;
	INSERT INTO api_keys (id, name, key_hash, scopes, expires_at, created_at) VALUES (p_id, p_name, p_key_hash, v_newest.scopes, v_until, now()) RETURNING * INTO v_new;
	RETURN NEXT v_new;
	RETURN QUERY UPDATE api_keys SET expires_at = LEAST(coalesce(expires_at, 'infinity'), now() + p_grace_ms * interval '1 millisecond')
		WHERE id = ANY(v_ids) RETURNING *;
	PERFORM vgw_write_audit(v_actor, 'key.rotate', jsonb_build_object('keyId', p_id, 'name', p_name, 'previous',
		(SELECT jsonb_agg(jsonb_build_object('id', id, 'expiresAt', vgw_iso(expires_at)) ORDER BY created_at DESC, id DESC) FROM api_keys WHERE id = ANY(v_ids))));
END;
$$;
--> statement-breakpoint
-- A hold, audited as hold.add, created now. It waits for HOLD_LOCK (store/lifecycle-repository.ts)
-- for the rest of the caller's transaction, so retention's removals and this hold never overlap.
CREATE FUNCTION vgw_add_hold(p_id uuid, p_vin text, p_reason text, p_by_key uuid, p_operator text)
RETURNS SETOF legal_holds LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
	v_actor text := vgw_actor(p_by_key, p_operator);
	v_row legal_holds;
BEGIN
	IF p_id IS NULL OR p_vin !~ '^[A-HJ-NPR-Z0-9]{17}$' OR length(p_reason) NOT BETWEEN 1 AND 1000 THEN
		RAISE EXCEPTION 'hold refused: a VIN and a reason of 1 to 1000 characters' USING ERRCODE = 'invalid_parameter_value';
	END IF;
	PERFORM vgw_require_grants(p_by_key, ARRAY['legal'], 'add holds');
	PERFORM pg_advisory_xact_lock(7733003);
	INSERT INTO legal_holds (id, vin, reason, created_at, created_by) VALUES (p_id, p_vin, p_reason, now(), v_actor) RETURNING * INTO v_row;
	PERFORM vgw_write_audit(v_actor, 'hold.add', jsonb_build_object('holdId', p_id, 'vin', p_vin, 'reason', p_reason));
	RETURN NEXT v_row;
END;
$$;
--> statement-breakpoint
-- Releases every active hold of a vehicle now (never at a time the caller names), audited as
-- hold.release; returns the holds released.
CREATE FUNCTION vgw_release_holds(p_vin text, p_reason text, p_by_key uuid, p_operator text)
RETURNS SETOF uuid LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
	v_actor text := vgw_actor(p_by_key, p_operator);
	v_ids uuid[];
BEGIN
	IF length(p_reason) NOT BETWEEN 1 AND 1000 THEN
		RAISE EXCEPTION 'release refused: a reason of 1 to 1000 characters' USING ERRCODE = 'invalid_parameter_value';
	END IF;
	PERFORM vgw_require_grants(p_by_key, ARRAY['legal'], 'release holds');
	WITH released AS (
		UPDATE legal_holds SET released_at = now(), released_by = v_actor, release_reason = p_reason WHERE vin = p_vin AND released_at IS NULL RETURNING id
	) SELECT array_agg(id ORDER BY id) INTO v_ids FROM released;
	IF v_ids IS NULL THEN
		RETURN;
	END IF;
	PERFORM vgw_write_audit(v_actor, 'hold.release', jsonb_build_object('vin', p_vin, 'reason', p_reason, 'holdIds', to_jsonb(v_ids)));
	RETURN QUERY SELECT unnest(v_ids);
END;
$$;
--> statement-breakpoint
-- Every other audit entry the gateway writes (vehicle.register, campaign.create, export). The
-- actions the functions above and the owner's paths write are theirs alone.
CREATE FUNCTION vgw_audit(p_action text, p_details jsonb, p_by_key uuid, p_operator text) RETURNS timestamptz
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
	v_actor text := vgw_actor(p_by_key, p_operator);
BEGIN
	IF p_action !~ '^[a-z][a-z0-9_.-]{0,63}$' OR p_action ~ '^(key|hold|retention)\.' OR jsonb_typeof(p_details) IS DISTINCT FROM 'object' THEN
		RAISE EXCEPTION 'audit entry % refused: key.*, hold.* and retention.* are written by their own paths', p_action USING ERRCODE = 'insufficient_privilege';
	END IF;
	PERFORM vgw_write_audit(v_actor, p_action, p_details);
	RETURN now();
END;
$$;
--> statement-breakpoint
-- The internal helpers are for the functions above; the gateway's role calls only the entry points.
REVOKE EXECUTE ON FUNCTION vgw_actor(uuid, text), vgw_key_grants(uuid, text[]), vgw_require_grants(uuid, text[], text), vgw_write_audit(text, text, jsonb), vgw_audit_time() FROM PUBLIC;
--> statement-breakpoint
REVOKE EXECUTE ON FUNCTION vgw_create_api_key(uuid, text, text, text[], timestamptz, uuid, text), vgw_revoke_api_keys(uuid, text, uuid, text),
	vgw_rotate_api_keys(text, uuid, text, bigint, boolean, timestamptz, uuid, text), vgw_add_hold(uuid, text, text, uuid, text),
	vgw_release_holds(text, text, uuid, text), vgw_audit(text, jsonb, uuid, text) FROM PUBLIC;
--> statement-breakpoint
GRANT EXECUTE ON FUNCTION vgw_create_api_key(uuid, text, text, text[], timestamptz, uuid, text), vgw_revoke_api_keys(uuid, text, uuid, text),
	vgw_rotate_api_keys(text, uuid, text, bigint, boolean, timestamptz, uuid, text), vgw_add_hold(uuid, text, text, uuid, text),
	vgw_release_holds(text, text, uuid, text), vgw_audit(text, jsonb, uuid, text) TO vgw_app;
