import pg from 'pg'
import t from 'tap'
import { testStore } from '../helpers/database.ts'
import { logRow } from '../helpers/records.ts'

const VIN = 'WVWZZZ1JZXW000500'

t.test('the gateway\'s role may append to the log but never change or remove a row', async (t) => {
  const { store, url } = await testStore(t)
  t.equal(await store.currentRole(), 'vgw_app', 'the pool works as vgw_app')
  const row = logRow(VIN, 'DE', new Date())
  await store.transactions.append([row])
  await store.lifecycle.audit('test', 'test.entry', {})

  const app = new pg.Client({ connectionString: url })
  await app.connect()
  t.teardown(() => app.end())
  await app.query('SET ROLE vgw_app')
  for (const sql of ["UPDATE transactions SET status = 'forged'", 'DELETE FROM transactions', "UPDATE audit_log SET actor = 'x'", 'DELETE FROM audit_log', 'TRUNCATE transactions']) {
    await t.rejects(app.query(sql), { code: '42501' }, sql)
  }
  t.equal((await store.transactions.findByMessageId(VIN, row.messageId ?? '')).length, 1, 'the row is untouched')
})

t.test('even the owner cannot change the log; only the retention path can remove rows', async (t) => {
  const { store, url } = await testStore(t)
  const row = logRow(VIN, 'DE', new Date())
  await store.transactions.append([row])
  await store.lifecycle.audit('test', 'test.entry', {})
  const owner = new pg.Client({ connectionString: url })
  await owner.connect()
  t.teardown(() => owner.end())
  await t.rejects(owner.query("UPDATE transactions SET status = 'forged'"), { code: '42501', message: /append-only/ })
  await t.rejects(owner.query('DELETE FROM transactions'), { code: '42501', message: /append-only/ })
  await t.rejects(owner.query('DELETE FROM audit_log'), { code: '42501' })
  await owner.query('BEGIN')
  await owner.query("SET LOCAL vgw.retention = 'on'")
  const removed = await owner.query('DELETE FROM transactions WHERE id = $1', [row.id])
  await owner.query('COMMIT')
  t.equal(removed.rowCount, 1, 'the retention path removes')
})
