import pg from 'pg'
import t, { type Test } from 'tap'
import { v7 as uuidv7 } from 'uuid'
import { derivedAppUrl } from '../../store/app-login.ts'
import { openStore } from '../../store/index.ts'
import { testStore } from '../helpers/database.ts'
import { logRow } from '../helpers/records.ts'

const VIN = 'WVWZZZ1JZXW000710'

t.test('the gateway\'s login cannot escape vgw_app: every attempt fails with a clear error', async (t) => {
  const { store, url } = await testStore(t)
  await store.transactions.append([logRow(VIN, 'DE', new Date())])
  const hold = await store.lifecycle.addHold(VIN, 'case 7', 'test')
  const ownerName = decodeURIComponent(new URL(url).username) || 'postgres'
  const partition = `transactions_y${new Date().getUTCFullYear()}m${String(new Date().getUTCMonth() + 1).padStart(2, '0')}`

  // What the pools log in with (the role in the startup packet, as the pools set it).
  const app = new pg.Client({ connectionString: derivedAppUrl(url), options: '-c role=vgw_app' })
  await app.connect()
  t.teardown(() => app.end())
  const who = (await app.query<{ u: string, s: string }>('SELECT current_user AS u, session_user AS s')).rows[0]
  t.same(who, { u: 'vgw_app', s: 'vgw_gateway' }, 'the pools work as vgw_app, logged in as vgw_gateway')

  const whoAmI = async (): Promise<unknown> => (await app.query<{ u: string, su: boolean, owner: boolean }>(
    "SELECT current_user AS u, (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) AS su, pg_has_role(current_user, $1, 'MEMBER') AS owner", [ownerName])).rows[0]
  await app.query('RESET ROLE')
  t.same(await whoAmI(), { u: 'vgw_app', su: false, owner: false }, 'RESET ROLE goes back to the startup packet\'s role, vgw_app')
  await app.query('SET ROLE NONE')
  t.same(await whoAmI(), { u: 'vgw_gateway', su: false, owner: false }, 'SET ROLE NONE lands on the login itself: neither the owner nor a superuser')

  await t.rejects(app.query(`SET ROLE "${ownerName}"`), { code: '42501', message: /permission denied to set role/ }, 'SET ROLE to the owner')
  const escapes: Array<[string, RegExp]> = [
    ["UPDATE transactions SET status = 'forged'", /permission denied for table transactions/],
    ['DELETE FROM transactions', /permission denied for table transactions/],
    ['TRUNCATE transactions', /permission denied for table transactions/],
    ["UPDATE audit_log SET actor = 'x'", /permission denied for table audit_log/],
    ['DELETE FROM audit_log', /permission denied for table audit_log/],
    [`ALTER TABLE transactions DETACH PARTITION ${partition}`, /must be owner of table transactions/],
    ['DELETE FROM legal_holds', /permission denied for table legal_holds/],
    [`UPDATE legal_holds SET vin = 'WVWZZZ1JZXW000711' WHERE id = '${hold.id}'`, /permission denied for table legal_holds/],
    ["UPDATE retention_policies SET retention_days = 1", /permission denied for table retention_policies/],
    ["INSERT INTO retention_policies (market, retention_days) VALUES ('DE', 1)", /permission denied for table retention_policies/],
    ['DELETE FROM retention_policies', /permission denied for table retention_policies/]
  ]
  for (const role of ['vgw_gateway', 'vgw_app']) {
    await app.query(role === 'vgw_app' ? 'SET ROLE vgw_app' : 'SET ROLE NONE')
    // vgw.retention is only a flag the owner's retention path sets: for anyone else it opens nothing.
    await app.query("SET vgw.retention = 'on'")
    for (const [sql, message] of escapes) await t.rejects(app.query(sql), { code: '42501', message }, `${role}: ${sql}`)
  }
  t.equal((await app.query('SELECT count(*)::int AS n FROM transactions')).rows[0]?.n, 1, 'the row is untouched')
  t.equal((await store.lifecycle.holds(true)).length, 1, 'the hold is untouched')
})

t.test('the owner too: no TRUNCATE of the log, no delete of a held vehicle\'s row, and no one else may call the partition helper', async (t) => {
  const { store, url } = await testStore(t)
  const row = logRow(VIN, 'DE', new Date())
  await store.transactions.append([row])
  await store.lifecycle.addHold(VIN, 'case 8', 'test')
  const owner = new pg.Client({ connectionString: url })
  await owner.connect()
  t.teardown(() => owner.end())
  await t.rejects(owner.query('TRUNCATE transactions'), { code: '42501', message: /TRUNCATE on transactions refused/ })
  await owner.query('BEGIN')
  await owner.query("SET LOCAL vgw.retention = 'on'")
  await t.rejects(owner.query('DELETE FROM transactions WHERE id = $1', [row.id]), { code: '42501', message: /under legal hold/ }, 'even the retention path cannot remove a held vehicle\'s row')
  await owner.query('ROLLBACK')
  const acl = (await owner.query<{ acl: string }>("SELECT proacl::text AS acl FROM pg_proc WHERE proname = 'vgw_ensure_transactions_partition'")).rows[0]?.acl ?? ''
  t.notMatch(acl, /(^|[{,])=X/, 'PUBLIC may not execute the partition helper')
  t.match(acl, /vgw_app=X/, 'the gateway\'s role may')
})

/** The gateway's own login, as the pools log in (issue #19 B: what it could do by the side door). */
async function appLogin (t: Test, url: string): Promise<pg.Client> {
  const app = new pg.Client({ connectionString: derivedAppUrl(url), options: '-c role=vgw_app' })
  await app.connect()
  t.teardown(() => app.end())
  return app
}

t.test('as vgw_gateway, keys, holds and audit entries cannot be written by the side door: only through functions that audit at the database\'s time', async (t) => {
  const { store, url } = await testStore(t)
  const admin = await store.apiKeys.create('ops', ['admin'], 'test')
  const legal = await store.apiKeys.create('legal-team', ['legal'], 'test')
  const hold = await store.lifecycle.addHold(VIN, 'case 11', 'test')
  const app = await appLogin(t, url)
  const hash = 'a'.repeat(64)
  const escapes: Array<[string, RegExp]> = [
    // A working key with every scope, and no key.create row.
    [`INSERT INTO api_keys (id, name, key_hash, scopes) VALUES (gen_random_uuid(), 'backdoor', '${hash}', '{legal,admin}')`, /permission denied for table api_keys/],
    ["UPDATE api_keys SET scopes = '{legal,admin}'", /permission denied for table api_keys/],
    ['UPDATE api_keys SET revoked_at = NULL, expires_at = NULL', /permission denied for table api_keys/],
    ['DELETE FROM api_keys', /permission denied for table api_keys/],
    // A release dated a month back, by no one the audit trail knows; retention would then delete the rows.
    [`UPDATE legal_holds SET released_at = now() - interval '30 days', released_by = 'nobody' WHERE id = '${hold.id}'`, /permission denied for table legal_holds/],
    [`INSERT INTO legal_holds (id, vin, reason, created_at, created_by) VALUES (gen_random_uuid(), '${VIN}', 'x', now() - interval '1 year', 'x')`, /permission denied for table legal_holds/],
    // A back-dated entry that /v1/audit would show.
    ["INSERT INTO audit_log (id, at, actor, action, details) VALUES (gen_random_uuid(), now() - interval '1 year', 'cli:alice', 'export', '{}')", /permission denied for table audit_log/],
    ["SELECT vgw_write_audit('cli:alice', 'hold.release', '{}')", /permission denied for function vgw_write_audit/],
    // The functions' own actions are theirs alone; an API key acts only within its scopes.
    ["SELECT vgw_audit('hold.release', '{}', NULL, 'cli:alice')", /key\.\*, hold\.\* and retention\.\* are written by their own paths/],
    [`SELECT vgw_audit('export', '{}', NULL, 'api-key:${legal.id} (legal-team)')`, /operator .* refused/],
    [`SELECT * FROM vgw_create_api_key(gen_random_uuid(), 'lawyer', '${hash}', '{legal}', NULL, '${admin.id}', NULL)`, /cannot hand out keys of the scope\(s\) legal/],
    [`SELECT * FROM vgw_revoke_api_keys('${legal.id}', NULL, '${admin.id}', NULL)`, /cannot revoke keys of the scope\(s\) legal/],
    [`SELECT * FROM vgw_rotate_api_keys('legal-team', gen_random_uuid(), '${hash}', 0, false, NULL, '${admin.id}', NULL)`, /cannot rotate keys of the scope\(s\) legal/],
    [`SELECT * FROM vgw_release_holds('${VIN}', 'closed', '${admin.id}', NULL)`, /cannot release holds of the scope\(s\) legal/]
  ]
  for (const role of ['vgw_gateway', 'vgw_app']) {
    await app.query(role === 'vgw_app' ? 'SET ROLE vgw_app' : 'SET ROLE NONE')
    for (const [sql, message] of escapes) await t.rejects(app.query(sql), { code: '42501', message }, `${role}: ${sql.slice(0, 90)}`)
  }
  t.equal((await app.query("SELECT count(*)::int AS n FROM api_keys WHERE name = 'backdoor' OR revoked_at IS NOT NULL")).rows[0]?.n, 0, 'no key was added or revoked')
  t.equal((await store.lifecycle.holds(true)).length, 1, 'the hold is still active')

  // What the gateway's login may do, it does only with an audit row at the database's time. A
  // temporary table of the same name does not capture the functions' writes (search_path pinned).
  await app.query('CREATE TEMP TABLE audit_log (LIKE public.audit_log)')
  const before = (await app.query<{ now: Date }>('SELECT now() AS now')).rows[0]?.now as Date
  await app.query(`SELECT * FROM vgw_create_api_key(gen_random_uuid(), 'crm', '${'b'.repeat(64)}', '{vehicles:read}', NULL, '${admin.id}', NULL)`)
  await app.query(`SELECT * FROM vgw_release_holds('${VIN}', 'closed', '${legal.id}', NULL)`)
  await app.query("SELECT vgw_audit('export', '{\"vin\": \"x\"}', NULL, 'cli:alice')")
  t.equal((await app.query('SELECT count(*)::int AS n FROM pg_temp.audit_log')).rows[0]?.n, 0, 'nothing went to the temporary table')
  const released = (await store.lifecycle.holds(false))[0]
  t.ok(released?.releasedAt !== null && (released?.releasedAt?.getTime() ?? 0) >= before.getTime() - 1000, 'released now, by the database\'s clock')
  t.equal(released?.releasedBy, `api-key:${legal.id} (legal-team)`, 'by the acting key, named by the database')
  const trail = await store.lifecycle.auditTrail(20)
  t.match(trail.slice(0, 3).map((a) => [a.action, a.actor]), [['export', 'cli:alice'], ['hold.release', `api-key:${legal.id} (legal-team)`], ['key.create', `api-key:${admin.id} (ops)`]])
  t.ok(trail.every((a) => a.at.getTime() >= before.getTime() - 60_000), 'no entry is back-dated')

  // The owner too: the audit row's time is the database's, whoever inserts it.
  const owner = new pg.Client({ connectionString: url })
  await owner.connect()
  t.teardown(() => owner.end())
  await owner.query("INSERT INTO audit_log (id, at, actor, action, details) VALUES (gen_random_uuid(), now() - interval '1 year', 'owner', 'retention.run', '{}')")
  const run = (await store.lifecycle.auditTrail(1, 'retention.run'))[0]
  t.ok(run !== undefined && run.at.getTime() >= before.getTime() - 1000, 'the owner\'s back-dated time was replaced by now()')
})

t.test('the gateway\'s login password is never derived from no password: a URL without one is refused', async (t) => {
  t.throws(() => derivedAppUrl('postgres://vgw@127.0.0.1:5432/vgw'), { code: 'GW_ERR_CONFIG_INVALID', message: /DATABASE_URL carries no password.*VGW_APP_DATABASE_URL/ })
  t.throws(() => openStore({ url: 'postgres://vgw@127.0.0.1:5432/vgw', newId: uuidv7 }), { code: 'GW_ERR_CONFIG_INVALID' }, 'nor does the store open its pools with one')
  const a = new URL(derivedAppUrl('postgres://vgw:one@127.0.0.1:5432/vgw')).password
  const b = new URL(derivedAppUrl('postgres://vgw:two@127.0.0.1:5432/vgw')).password
  t.not(a, b, 'each owner password gives its own')
  const { url } = await testStore(t)
  t.not(new URL(url).password, '', 'the embedded server (and the test helper) give the owner a password')
})
