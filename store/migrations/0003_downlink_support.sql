-- The history of one downlink message (GET /v1/messages/{id}) is read from the log by (vin, message_id).
CREATE INDEX "transactions_downlink_message_idx" ON "transactions" ("vin", "message_id") WHERE "direction" = 'down';
--> statement-breakpoint
-- Time-ordered UUIDs (version 7, RFC 9562) made in SQL, for set-based inserts such as campaigns.
-- PostgreSQL 18 has uuidv7(); this works from PostgreSQL 13 on.
CREATE FUNCTION vgw_uuid_v7(at timestamptz DEFAULT clock_timestamp()) RETURNS uuid
LANGUAGE sql VOLATILE AS $$
	SELECT encode(
		set_bit(set_bit(overlay(uuid_send(gen_random_uuid())
			PLACING substring(int8send(floor(extract(epoch FROM at) * 1000)::bigint) FROM 3)
			FROM 1 FOR 6), 52, 1), 53, 1),
		'hex')::uuid
$$;
