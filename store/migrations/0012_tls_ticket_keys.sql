-- TLS session ticket keys shared by every gateway of a cluster (README, "Reconnect storms"): one
-- row per rotation period (epoch = floor(unix ms / period)); the first gateway to need a period's
-- key inserts it, every other reads the same row, and a restarted gateway finds it again, so a
-- vehicle resumes its session on any gateway and across restarts. The stored secret alone is not
-- the ticket key: each gateway derives that with HKDF from it and the server's private key
-- (gateway/edge/session-tickets.ts), so reading this table does not let anyone forge a ticket.
CREATE TABLE "tls_ticket_keys" (
	"period_ms" bigint NOT NULL,
	"epoch" bigint NOT NULL,
	"secret" bytea NOT NULL CHECK (octet_length("secret") = 48),
	"created_at" timestamp (6) with time zone DEFAULT now() NOT NULL,
	PRIMARY KEY ("period_ms", "epoch")
);
--> statement-breakpoint
GRANT SELECT, INSERT, DELETE ON "tls_ticket_keys" TO vgw_app;
