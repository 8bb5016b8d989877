import { generateKeyPairSync } from 'node:crypto'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import pg from 'pg'
import t from 'tap'
import { v7 as uuidv7 } from 'uuid'
import { Ledger } from '../../gateway/ledger/ledger.ts'
import { signerFromKey } from '../../gateway/ledger/checkpoint-signer.ts'
import { verifyLog } from '../../gateway/ledger/log-verify.ts'
import { writeExportFiles } from '../../gateway/lifecycle/legal-export.ts'
import { verifyExportDir } from '../../gateway/lifecycle/verify-export.ts'
import { register, send, waitForStatus, inbox } from '../helpers/downlink.ts'
import { captureLogger, startTestGateway } from '../helpers/gateway.ts'
import { testStore } from '../helpers/database.ts'
import { logRow } from '../helpers/records.ts'
import { connectVehicle, envelope, publishEnvelope } from '../helpers/vehicle.ts'

// Issue #19 C: the chain is built as rows are written and anchored outside the database, so a row
// altered, deleted, inserted or moved in the database after its checkpoint is found and named,
// from the whole log (vgw log verify) and from a legal export (vgw export verify --checkpoints).
const VIN = 'WVWZZZ1JZXW000740'

t.test('the ledger proves an untouched log and export, and names every kind of tampering', async (t) => {
  const gw = await startTestGateway(t, { VGW_LEDGER_CHECKPOINT_MS: '200' })
  await register(gw, VIN)
  const car = await connectVehicle(t, { port: gw.mqttPort, ca: gw.pki.ca, creds: await gw.pki.vehicle(VIN) })
  const box = inbox(car, VIN)
  await car.subscribeAsync(`vehicles/${VIN}/down`, { qos: 1 })
  const uplinks: string[] = []
  for (let i = 0; i < 12; i++) {
    const e = envelope({ createdAtMs: Date.now() - 10_000 + i })
    await publishEnvelope(car, VIN, e)
    uplinks.push(e.messageId)
  }
  const downs = await Promise.all(Array.from({ length: 4 }, async (_, i) => (await send(gw, VIN, { type: 'service.reminder', payload: `m${i}` })).body.id as string))
  await box.next(4)
  for (const id of downs) await waitForStatus(gw, id, 'delivered')
  await gw.gateway.log.flush()
  await gw.gateway.transitions.flush()
  await gw.gateway.ledger.checkpoint()
  const checkpointDir = gw.config.ledger?.checkpointDir as string
  const period = { from: new Date(Date.now() - 3600_000), to: new Date(Date.now() + 3600_000) }

  const clean = await verifyLog(gw.store, { ...period, checkpointDir, keys: [] })
  t.same(clean.findings, [], 'an untouched log has no findings')
  t.ok(clean.rows >= 12 + 4 * 3, `every row proven (${clean.rows})`)
  const exportDir = fs.mkdtempSync(path.join(os.tmpdir(), 'vgw-ledger-export-'))
  t.teardown(() => fs.rmSync(exportDir, { recursive: true, force: true }))
  const req = { vin: VIN, ...period, actor: 'test', now: Date.now }
  await writeExportFiles(gw.store, req, path.join(exportDir, 'before'))
  const before = await verifyExportDir(path.join(exportDir, 'before'), { dir: checkpointDir, keys: [] })
  t.same(before.findings, [], 'an untouched export proves against the checkpoints')
  t.ok(before.ok)

  // A database administrator, past every trigger, after the checkpoints were written.
  const db = new pg.Client({ connectionString: gw.dbUrl })
  await db.connect()
  t.teardown(() => db.end())
  await db.query("SET session_replication_role = 'replica'")
  const idOf = async (messageId: string): Promise<{ id: string, xid: string, occurred_at: Date }> =>
    (await db.query("SELECT id, xid::text AS xid, occurred_at FROM transactions WHERE message_id = $1 AND direction = 'up'", [messageId])).rows[0]
  const altered = await idOf(uplinks[1] as string)
  const deleted = await idOf(uplinks[2] as string)
  const [moveA, moveB] = [await idOf(uplinks[3] as string), await idOf(uplinks[4] as string)]
  await db.query("UPDATE transactions SET raw = '\\x0801'::bytea WHERE id = $1", [altered.id])
  await db.query('DELETE FROM transactions WHERE id = $1', [deleted.id])
  // Reordered: two rows trade their places in time.
  await db.query('UPDATE transactions SET occurred_at = CASE WHEN id = $1 THEN $4::timestamptz ELSE $3::timestamptz END WHERE id IN ($1, $2)', [moveA.id, moveB.id, moveA.occurred_at, moveB.occurred_at])
  // Inserted: a back-dated row that claims the transaction of a real batch.
  const forged = uuidv7()
  await db.query(`INSERT INTO transactions (id, occurred_at, received_at, vin, market, direction, kind, type, message_id, status, xid)
    VALUES ($1, now() - interval '20 minutes', now() - interval '20 minutes', $2, 'DE', 'up', 'EVENT', 'crash.report', $3, 'accepted', $4::text::xid8)`, [forged, VIN, uuidv7(), altered.xid])

  // A second copy of a proven row (its unique indexes dropped first).
  const copied = await idOf(uplinks[5] as string)
  await db.query('DROP INDEX transactions_vin_time_id_key')
  await db.query('DROP INDEX transactions_uplink_dedup_idx')
  await db.query('INSERT INTO transactions SELECT * FROM transactions WHERE id = $1', [copied.id])
  // The ledger's own records: a block's time moved out of any period, the newest block removed.
  await db.query("UPDATE ledger_blocks SET created_at = '2100-01-01' WHERE block = 1")
  const newest = (await db.query<{ epoch: string, block: string }>('SELECT epoch, block FROM ledger_blocks ORDER BY block DESC LIMIT 1')).rows[0]
  await db.query('DELETE FROM ledger_blocks WHERE epoch = $1 AND block = $2', [newest?.epoch, newest?.block])

  const after = await verifyLog(gw.store, { from: new Date(0), to: new Date(8.64e15), checkpointDir, keys: [] })
  const named = (problem: string): string[] => after.findings.filter((f) => f.problem === problem).map((f) => f.subject).sort()
  t.same(named('altered'), [altered.id, moveA.id, moveB.id].sort(), 'altered and moved rows are named')
  t.same(named('deleted'), [deleted.id], 'the deleted row is named')
  t.same(named('inserted'), [copied.id, forged].sort(), 'the inserted row and the second copy are named')
  t.ok(after.findings.some((f) => f.problem === 'block' && f.detail.includes('has no block in the database')), 'the removed newest block is named from its signed note')
  t.notOk(after.ok)

  await writeExportFiles(gw.store, req, path.join(exportDir, 'after'))
  const exported = await verifyExportDir(path.join(exportDir, 'after'), { dir: checkpointDir, keys: [] })
  t.notOk(exported.ok, 'an export made after the tampering does not prove')
  const lineOf = (id: string): number => fs.readFileSync(path.join(exportDir, 'after', 'transactions.ndjson'), 'utf8').split('\n').findIndex((l) => l.includes(`"id":"${id}"`)) + 1
  const byLine = (problem: string): number[] => exported.findings.filter((f) => f.problem === problem).map((f) => f.line).sort((a, b) => a - b)
  t.same(byLine('altered'), [lineOf(altered.id), lineOf(moveA.id), lineOf(moveB.id)].sort((a, b) => a - b), 'each altered record is named by its line')
  // (Records of the removed newest block prove nothing either now.)
  t.ok(byLine('unproven').includes(lineOf(forged)), 'the inserted record proves nothing')
  t.ok(exported.findings.some((f) => f.problem === 'inserted' && f.detail.includes(`record ${copied.id} appears a second time`)), 'a proven record twice is named')

  // A checkpoint signed by another key is not trusted.
  const wrongKey = await verifyExportDir(path.join(exportDir, 'before'), { dir: checkpointDir, keys: ['vgw-ledger+00000000+AQ' + 'A'.repeat(42) + '='] })
  t.notOk(wrongKey.ok, 'an untrusted key proves nothing')
})

t.test('an export whose records lie in hundreds of batches proves every one', async (t) => {
  const { store } = await testStore(t)
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vgw-ledger-many-'))
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }))
  const ledger = new Ledger({
    store,
    signer: signerFromKey('vgw-ledger', generateKeyPairSync('ed25519').privateKey),
    settings: { checkpointDir: path.join(dir, 'checkpoints'), checkpointIntervalMs: 3_600_000, flushIntervalMs: 200 },
    epoch: uuidv7(),
    gateway: 'test',
    logger: captureLogger().logger
  })
  await ledger.start()
  const at = Date.now() - 60_000
  await store.transactions.ensurePartitions([new Date(at)])
  // 300 transactions, each this vehicle's row beside another's: every record in a batch of its own.
  for (let i = 0; i < 300; i++) {
    await store.transactions.append([logRow(VIN, 'DE', new Date(at + i)), logRow('WVWZZZ1JZXW000741', 'DE', new Date(at + i))])
  }
  await ledger.close()
  await writeExportFiles(store, { vin: VIN, from: new Date(at - 1000), to: new Date(), actor: 'test', now: Date.now }, path.join(dir, 'export'))
  const v = await verifyExportDir(path.join(dir, 'export'), { dir: path.join(dir, 'checkpoints'), keys: [] })
  t.same(v.findings, [], 'no record is left without its proof')
  t.equal(v.rows, 300)
})
