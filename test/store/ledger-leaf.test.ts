import t from 'tap'
import { v7 as uuidv7 } from 'uuid'
import { leafFieldsOfRecord, leafFieldsOfView } from '../../gateway/ledger/leaf-fields.ts'
import { transactionView } from '../../gateway/api/views.ts'
import { leafHash } from '../../protocol/index.ts'
import { testStore } from '../helpers/database.ts'
import { logRow } from '../helpers/records.ts'

// The leaf PostgreSQL computes as it stores a row (vgw_log_leaf) is the one a third party computes
// from the row or from its legal-export record (protocol/ledger.ts): byte for byte, tricky values included.
t.test('the database\'s leaf equals the one computed from the row and from its export record', async (t) => {
  const { store } = await testStore(t)
  const vin = 'WVWZZZ1JZXW000730'
  const at = new Date(Date.now() - 5000)
  await store.transactions.ensurePartitions([at])
  const rows = [
    logRow(vin, 'DE', at, { attributes: { 'ключ': 'värde 🚗', quote: 'a"b\\c\n\t', e: '', zz: 'x', a: 'y' }, details: { nested: { list: [1, 'zwei', null, true] }, text: 'tab\there' } }),
    logRow(vin, null, new Date(at.getTime() + 1), { direction: 'system', kind: 'CONNECTION', type: null, messageId: null, createdAtMs: null, ttlSeconds: null, attributes: null, status: 'recorded', raw: null, details: null }),
    logRow(vin, 'FR', new Date(at.getTime() + 2), { raw: new Uint8Array(0), ackStatus: 'READ', ackReason: 'ok, «gut»', errorCode: 'GW_ERR_INTERNAL', correlationId: uuidv7() })
  ]
  const committed: Buffer[] = []
  const off = store.onLogCommitted((leaves) => { for (const l of leaves) committed.push(l.leaf) })
  const stored = await store.transactions.append(rows)
  off()
  t.equal(stored.length, 3)
  t.equal(committed.length, 3, 'every committed row reports its leaf')
  const read = (await store.transactions.listForVehicle({ vin, limit: 10 })).items
  for (const s of stored) {
    const back = read.find((r) => r.id === s.id)
    if (back === undefined || s.leaf === undefined) { t.fail(`row ${s.id} missing`); continue }
    t.same(leafHash(leafFieldsOfRecord(back)), s.leaf, `${s.kind}: from the row read back`)
    t.same(leafHash(leafFieldsOfView(JSON.parse(JSON.stringify(transactionView(back))))), s.leaf, `${s.kind}: from its export record`)
    t.same(leafHash(leafFieldsOfRecord(s)), s.leaf, `${s.kind}: from the row as the gateway sent it`)
  }
})
