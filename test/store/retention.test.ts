import pg from 'pg'
import t from 'tap'
import { testStore } from '../helpers/database.ts'
import { logRow } from '../helpers/records.ts'
import { startTestGateway } from '../helpers/gateway.ts'
import { connectVehicle, envelope, publishEnvelope } from '../helpers/vehicle.ts'

const NOW = new Date(Date.UTC(2026, 10, 26, 12))
const DAY = 24 * 3600_000
const ago = (days: number): Date => new Date(NOW.getTime() - days * DAY)
const DE = 'WVWZZZ1JZXW000600'
const DE_HELD = 'WVWZZZ1JZXW000601'
const US = '1FTZZZ1JZXW000602'
const FR = 'VF1ZZZ1JZXW000603'

t.test('retention removes exactly what is past its market\'s period, across partitions, and leaves held vehicles alone', async (t) => {
  const { store, url } = await testStore(t)
  await store.lifecycle.setPolicy('DE', 365, 'test')
  await store.lifecycle.setPolicy('US', 30, 'test')
  await store.lifecycle.setPolicy('*', 730, 'test')
  await store.lifecycle.addHold(DE_HELD, 'case 123', 'test')

  const rows = {
    deOld: logRow(DE, 'DE', ago(400)),
    deKept: logRow(DE, 'DE', ago(300)),
    usOld: logRow(US, 'US', ago(40)),
    usKept: logRow(US, 'US', ago(20)),
    frKept: logRow(FR, 'FR', ago(400)),
    // Past the default period, alone in its month: that month is dropped too.
    frOld: logRow(FR, 'FR', ago(800)),
    heldOld: logRow(DE_HELD, 'DE', ago(400)),
    // A month past every market's period: dropped whole.
    ancientDe: logRow(DE, 'DE', ago(1000)),
    ancientUs: logRow(US, 'US', new Date(ago(1000).getTime() - 3600_000)),
    // Another such month that also holds a held vehicle's row: kept, emptied of the others.
    ancientHeld: logRow(DE_HELD, 'DE', ago(1100)),
    ancientOther: logRow(FR, 'FR', ago(1100))
  }
  await store.transactions.append(Object.values(rows))

  const report = await store.lifecycle.runRetention(NOW, 'test')
  const left = new Set<string>()
  const db = new pg.Client({ connectionString: url })
  await db.connect()
  t.teardown(() => db.end())
  for (const r of (await db.query<{ id: string }>('SELECT id FROM transactions')).rows) left.add(r.id)
  const kept = Object.entries(rows).filter(([, r]) => left.has(r.id)).map(([name]) => name).sort()
  t.same(kept, ['ancientHeld', 'deKept', 'frKept', 'heldOld', 'usKept'])
  t.equal(report.totalRemoved, 6)
  t.same(report.droppedPartitions.map((p) => p.rows), [2, 1], 'two months dropped whole, oldest first')
  t.same(report.heldVins, [DE_HELD])
  const partitions = (await db.query<{ n: number }>("SELECT count(*)::int AS n FROM pg_inherits WHERE inhparent = 'transactions'::regclass AND inhrelid::regclass::text = $1", [report.droppedPartitions[0]?.name])).rows[0]?.n
  t.equal(partitions, 0, 'the dropped partition is gone')

  const audit = await store.lifecycle.auditTrail(10, 'retention.run')
  t.equal(audit.length, 1)
  t.match(audit[0]?.details, { totalRemoved: 6, deletedRows: { DE: 1, US: 1, FR: 1 } })

  // Releasing the hold lets the next run remove the held vehicle's old rows too.
  await store.lifecycle.releaseHolds(DE_HELD, 'case closed', 'test')
  const again = await store.lifecycle.runRetention(NOW, 'test')
  t.equal(again.totalRemoved, 2)
  t.same((await store.lifecycle.auditTrail(10)).map((a) => a.action).slice(0, 3), ['retention.run', 'hold.release', 'retention.run'])
})

t.test('retention runs while vehicles keep publishing, without write errors', async (t) => {
  const gw = await startTestGateway(t)
  await gw.store.lifecycle.setPolicy('*', 30, 'test')
  // Plenty of old rows in old months, so that the run takes a while.
  const old = Array.from({ length: 20_000 }, (_, i) => logRow(FR, 'FR', new Date(Date.now() - (40 + (i % 300)) * DAY)))
  for (let i = 0; i < old.length; i += 5000) await gw.store.transactions.append(old.slice(i, i + 5000))
  const car = await connectVehicle(t, { port: gw.mqttPort, ca: gw.pki.ca, creds: await gw.pki.vehicle(DE) })
  const sent = Array.from({ length: 300 }, () => envelope())
  const publishing = (async () => {
    for (const e of sent) await publishEnvelope(car, DE, e)
  })()
  const report = await gw.store.lifecycle.runRetention(new Date(), 'test', 1000)
  await publishing
  t.equal(report.totalRemoved, 20_000)
  const stored = await gw.store.transactions.listForVehicle({ vin: DE, direction: 'up', limit: 1000 })
  t.equal(stored.items.length, 300, 'every uplink was stored while retention ran')
  t.notOk(gw.logs.some((l) => l.level >= 50), 'no errors logged')
})
