import pg from 'pg'
import t from 'tap'
import { derivedAppUrl } from '../../store/app-login.ts'
import { testStore } from '../helpers/database.ts'

// Issue #19 B: the log's server-set columns are the database's. As the gateway's own login, a row
// cannot be placed before the feed's cursors (xid) nor back-dated by its received_at.
const VIN = 'WVWZZZ1JZXW000720'

t.test('the gateway\'s login cannot write xid or received_at; the database sets both', async (t) => {
  const { store, url } = await testStore(t)
  await store.transactions.ensurePartitions([new Date()])
  const app = new pg.Client({ connectionString: derivedAppUrl(url), options: '-c role=vgw_app' })
  await app.connect()
  t.teardown(() => app.end())
  const row = (id: string): unknown[] => [id, VIN]
  await t.rejects(app.query(`INSERT INTO transactions (id, occurred_at, vin, direction, kind, status, xid)
    VALUES ($1, now() - interval '1 day', $2, 'up', 'TELEMETRY', 'accepted', '5'::xid8)`, row('01900000-0000-7000-8000-000000000b01')),
  { code: '42501', message: /permission denied for table transactions/ }, 'a back-dated xid is refused')
  await t.rejects(app.query(`INSERT INTO transactions (id, occurred_at, received_at, vin, direction, kind, status)
    VALUES ($1, now() - interval '1 day', now() - interval '1 day', $2, 'up', 'TELEMETRY', 'accepted')`, row('01900000-0000-7000-8000-000000000b02')),
  { code: '42501', message: /permission denied for table transactions/ }, 'a chosen received_at is refused')
  await app.query(`INSERT INTO transactions (id, occurred_at, vin, direction, kind, status)
    VALUES ($1, now(), $2, 'up', 'TELEMETRY', 'accepted')`, row('01900000-0000-7000-8000-000000000b03'))
  const stored = (await app.query<{ mine: boolean, fresh: boolean }>(
    `SELECT xid = pg_current_xact_id() OR xid::text::bigint > 5 AS mine, received_at > now() - interval '1 minute' AS fresh
     FROM transactions WHERE id = $1`, ['01900000-0000-7000-8000-000000000b03'])).rows[0]
  t.same(stored, { mine: true, fresh: true }, 'a row without them gets the inserting transaction\'s id and time')
})
