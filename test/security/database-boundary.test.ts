import pg from 'pg'
import t from 'tap'
import { derivedAppUrl } from '../../store/app-login.ts'
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
