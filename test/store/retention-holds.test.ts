import pg from 'pg'
import t, { type Test } from 'tap'
import { testStore } from '../helpers/database.ts'
import { startTestGateway } from '../helpers/gateway.ts'
import { logRow } from '../helpers/records.ts'

const NOW = new Date(Date.UTC(2026, 10, 26, 12))
const DAY = 24 * 3600_000
const ago = (days: number): Date => new Date(NOW.getTime() - days * DAY)
const HELD = 'WVWZZZ1JZXW000720'
const OTHER = 'WVWZZZ1JZXW000721'

const partitionOf = (d: Date): string => `transactions_y${d.getUTCFullYear()}m${String(d.getUTCMonth() + 1).padStart(2, '0')}`

async function ownerClient (t: Test, url: string): Promise<pg.Client> {
  const c = new pg.Client({ connectionString: url })
  await c.connect()
  t.teardown(() => c.end().catch(() => undefined))
  return c
}

/** Polls `sql` on `db` until it returns a row, within a bound. */
async function until (db: pg.Client, sql: string, what: string, boundMs = 10_000): Promise<void> {
  const end = Date.now() + boundMs
  while (Date.now() < end) {
    if (((await db.query(sql)).rowCount ?? 0) > 0) return
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
  throw new Error(`timed out waiting for ${what}`)
}

t.test('a hold added while a retention run is in progress is honoured', async (t) => {
  const { store, url } = await testStore(t)
  await store.lifecycle.setPolicy('*', 30, 'test')
  // Two months past every period: the run drops the older first, then the one with the vehicle's rows.
  await store.transactions.append([logRow(OTHER, 'DE', ago(400)), logRow(HELD, 'DE', ago(200)), logRow(HELD, 'DE', ago(199)), logRow(OTHER, 'DE', ago(200))])
  const watcher = await ownerClient(t, url)
  // A reader of the log holds the run at its first DETACH … CONCURRENTLY (which waits for it).
  const reader = await ownerClient(t, url)
  await reader.query('BEGIN')
  await reader.query('SELECT count(*) FROM transactions')

  const run = store.lifecycle.runRetention(NOW, 'test')
  await until(watcher, "SELECT 1 FROM pg_stat_activity WHERE query LIKE 'ALTER TABLE transactions DETACH PARTITION%' AND wait_event_type = 'Lock'", 'the run to wait at its detach')
  // Added now, while the run has already read the holds it started with.
  let added = false
  const hold = store.lifecycle.addHold(HELD, 'accident', 'test').then(() => { added = true })
  await until(watcher, "SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND NOT granted", 'the hold to wait', 2000).catch(() => undefined)
  await reader.query('COMMIT')
  const [report] = await Promise.all([run, hold])
  t.ok(added)

  const left = (await watcher.query<{ vin: string, n: number }>('SELECT vin, count(*)::int AS n FROM transactions GROUP BY vin ORDER BY vin')).rows
  t.same(left, [{ vin: HELD, n: 2 }], 'every row of the held vehicle is kept; the others\' expired rows are gone')
  t.same(report.droppedPartitions.map((p) => p.name), [partitionOf(ago(400))], 'the month holding the held vehicle\'s rows was not dropped')
})

t.test('a DETACH PARTITION … CONCURRENTLY that was interrupted is finished by the next run; a month left detached is dropped or attached again', async (t) => {
  const { store, url } = await testStore(t)
  await store.lifecycle.setPolicy('*', 30, 'test')
  await store.transactions.append([logRow(OTHER, 'DE', ago(400)), logRow(OTHER, 'DE', ago(300)), logRow(HELD, 'DE', ago(200))])
  await store.lifecycle.addHold(HELD, 'case 9', 'test')
  const [pending, loose, looseHeld] = [partitionOf(ago(400)), partitionOf(ago(300)), partitionOf(ago(200))]
  const owner = await ownerClient(t, url)

  // Interrupt a concurrent detach in its second step: the partition stays "detach pending".
  const reader = await ownerClient(t, url)
  await reader.query('BEGIN')
  await reader.query('SELECT count(*) FROM transactions')
  await owner.query("SET statement_timeout = '300ms'")
  await t.rejects(owner.query(`ALTER TABLE transactions DETACH PARTITION ${pending} CONCURRENTLY`), { message: /statement timeout/ })
  await owner.query('RESET statement_timeout')
  await reader.query('COMMIT')
  t.equal((await owner.query('SELECT 1 FROM pg_inherits WHERE inhrelid = $1::regclass AND inhdetachpending', [pending])).rowCount, 1, 'left pending detach')
  // And two months detached by a run that died before its DROP.
  await owner.query(`ALTER TABLE transactions DETACH PARTITION ${loose}`)
  await owner.query(`ALTER TABLE transactions DETACH PARTITION ${looseHeld}`)

  const report = await store.lifecycle.runRetention(NOW, 'test')
  t.same(report.droppedPartitions.map((p) => p.name).sort(), [pending, loose].sort(), 'the pending detach was finalized and dropped, the loose month dropped')
  t.equal((await owner.query('SELECT 1 FROM pg_class WHERE relname = ANY($1)', [[pending, loose]])).rowCount, 0, 'both are gone')
  const held = (await owner.query<{ n: number }>('SELECT count(*)::int AS n FROM transactions WHERE vin = $1', [HELD])).rows[0]?.n
  t.equal(held, 1, 'the month with a held vehicle\'s row is part of the log again')
  t.same(await store.lifecycle.runRetention(NOW, 'test').then((r) => r.droppedPartitions), [], 'a second run has nothing left to finish')
})

t.test('the retention floor in server configuration: no call can go below it, and a run never does', async (t) => {
  const { store, url } = await testStore(t, { retentionFloors: { DE: 3650, '*': 365 } })
  await t.rejects(store.lifecycle.setPolicy('DE', 30, 'test'), { code: 'GW_ERR_RETENTION_FLOOR', message: /below the floor of 3650 days/ })
  await t.rejects(store.lifecycle.setPolicy('*', 30, 'test'), { code: 'GW_ERR_RETENTION_FLOOR' })
  await t.rejects(store.lifecycle.setPolicy('FR', 30, 'test'), { code: 'GW_ERR_RETENTION_FLOOR' }, 'a market without a floor of its own has the default floor')
  await store.lifecycle.setPolicy('US', 400, 'test')
  // A policy put into the database behind the API's back is still held to the floor by the run.
  const owner = await ownerClient(t, url)
  await owner.query("INSERT INTO retention_policies (market, retention_days) VALUES ('DE', 1)")
  await store.transactions.append([logRow(OTHER, 'DE', ago(400)), logRow('1FTZZZ1JZXW000722', 'US', ago(450))])
  const report = await store.lifecycle.runRetention(NOW, 'test')
  t.match(report.policies, { DE: 3650, US: 400, '*': 3650 })
  t.same(report.deletedRows, { US: 1 }, 'only the US row, past its 400 days, is removed')
})

t.test('over REST: a period below the floor is refused with GW_ERR_RETENTION_FLOOR', async (t) => {
  const gw = await startTestGateway(t, { VGW_RETENTION_FLOOR: 'DE:10y,default:1y' })
  const put = (market: string, period: string): ReturnType<typeof gw.api> => gw.api(`/v1/retention/${market}`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ period }) })
  t.match(await put('DE', '9y'), { status: 400, body: { error: { code: 'GW_ERR_RETENTION_FLOOR', message: /VGW_RETENTION_FLOOR/ } } })
  t.match(await put('US', '6m'), { status: 400, body: { error: { code: 'GW_ERR_RETENTION_FLOOR' } } })
  t.match(await put('DE', '12y'), { status: 200 })
  const audit = await gw.store.lifecycle.auditTrail(10, 'retention.set')
  t.equal(audit.length, 1, 'only the accepted change is audited')
})
