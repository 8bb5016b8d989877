// The ledger's verification at scale (issue #19): N log rows written through the store's append
// with the gateway's Ledger recording them (batches of 500, a checkpoint every 2 s), then the
// time `vgw log verify` takes to prove them all against the signed checkpoints, and the time to
// export and prove one vehicle's share of them.
//   npx tsx bench/ledger-verify-bench.ts [rows=1000000] [vehicles=1000]
// Prints one JSON line.
import { generateKeyPairSync, randomBytes } from 'node:crypto'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import pino from 'pino'
import { v7 as uuidv7 } from 'uuid'
import { Ledger } from '../gateway/ledger/ledger.ts'
import { signerFromKey } from '../gateway/ledger/checkpoint-signer.ts'
import { verifyLog } from '../gateway/ledger/log-verify.ts'
import { writeExportFiles } from '../gateway/lifecycle/legal-export.ts'
import { verifyExportDir } from '../gateway/lifecycle/verify-export.ts'
import { encodeEnvelope, newUuidV7 } from '../protocol/index.ts'
import { openStore, type TransactionRecord } from '../store/index.ts'
import { benchDatabase } from './bench-database.ts'

const rows = Number(process.argv[2] ?? 1_000_000)
const vehicles = Number(process.argv[3] ?? 1000)
const BATCH = 500
const { url, stop } = await benchDatabase('vgw-ledger-bench-')
const store = openStore({ url, newId: uuidv7 })
await store.migrate()
const start = Date.now() - 3600_000
await store.transactions.ensurePartitionRange(new Date(start), new Date(Date.now() + 3600_000))
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vgw-ledger-bench-'))
const ledger = new Ledger({
  store,
  signer: signerFromKey('vgw-ledger', generateKeyPairSync('ed25519').privateKey),
  settings: { checkpointDir: dir, checkpointIntervalMs: 2000, flushIntervalMs: 200 },
  epoch: newUuidV7(),
  gateway: 'ledger-bench',
  logger: pino({ level: 'warn' })
})
await ledger.start()
const vin = (i: number): string => `WVWBENCH${String(i % vehicles).padStart(9, '0')}`
const payload = Buffer.alloc(120, 7)
const row = (i: number): TransactionRecord => {
  const at = start + Math.floor(i * 3_000_000 / rows)
  const messageId = newUuidV7()
  return {
    id: newUuidV7(), occurredAt: new Date(at), receivedAt: new Date(at), vin: vin(i), market: 'DE', direction: 'up', kind: 'TELEMETRY',
    type: 'telemetry.position', messageId, correlationId: null, createdAtMs: at, ttlSeconds: 0, attributes: { 'content-type': 'application/json' },
    ackStatus: null, ackReason: null, status: 'accepted', errorCode: null,
    raw: encodeEnvelope({ messageId, correlationId: '', kind: 'TELEMETRY', type: 'telemetry.position', createdAtMs: at, ttlSeconds: 0, payload, attributes: { 'content-type': 'application/json' }, ackStatus: 'ACK_STATUS_UNSPECIFIED', ackReason: '' }),
    details: null
  }
}
const w0 = performance.now()
for (let i = 0; i < rows; i += BATCH * 4) {
  await Promise.all([0, 1, 2, 3].map(async (k) => {
    const from = i + k * BATCH
    if (from >= rows) return
    await store.transactions.append(Array.from({ length: Math.min(BATCH, rows - from) }, (_, j) => row(from + j)))
  }))
}
await ledger.close()
const writeSeconds = (performance.now() - w0) / 1000
const v0 = performance.now()
const verdict = await verifyLog(store, { from: new Date(0), to: new Date(Date.now() + 60_000), checkpointDir: dir, keys: [] })
const verifySeconds = (performance.now() - v0) / 1000
const out = path.join(dir, 'export')
const e0 = performance.now()
const manifest = await writeExportFiles(store, { vin: vin(0), from: new Date(0), to: new Date(Date.now() + 60_000), actor: 'cli:bench', now: Date.now }, out)
const exportSeconds = (performance.now() - e0) / 1000
const x0 = performance.now()
const exported = await verifyExportDir(out, { dir, keys: [] })
const exportVerifySeconds = (performance.now() - x0) / 1000
// Last (its batches name rows that do not exist), the gateway's share alone: 200,000 committed rows' leaves in transactions of 300 (as the log
// append reports them) through record(), stored, and one checkpoint; this process' CPU per row.
const costLedger = new Ledger({
  store,
  signer: signerFromKey('vgw-ledger', generateKeyPairSync('ed25519').privateKey),
  settings: { checkpointDir: path.join(dir, 'cost'), checkpointIntervalMs: 3_600_000, flushIntervalMs: 200 },
  epoch: newUuidV7(),
  gateway: 'ledger-cost',
  logger: pino({ level: 'warn' })
})
await costLedger.start()
const COST_ROWS = 200_000
const committed = Array.from({ length: COST_ROWS / 300 }, (_, g) => Array.from({ length: 300 }, () => ({ id: newUuidV7(), xid: String(10_000_000 + g), leaf: randomBytes(32) })))
const c0 = process.cpuUsage()
for (const group of committed) costLedger.record(group)
await costLedger.checkpoint()
const cost = process.cpuUsage(c0)
await costLedger.close()
const ledgerGatewayUsPerRow = Number(((cost.user + cost.system) / COST_ROWS).toFixed(2))

console.log(JSON.stringify({
  scenario: 'ledger-verify',
  ledgerGatewayUsPerRow,
  rows,
  writeSeconds: Number(writeSeconds.toFixed(1)),
  logVerify: { ok: verdict.ok, rows: verdict.rows, batches: verdict.batches, blocks: verdict.blocks, seconds: Number(verifySeconds.toFixed(1)), rowsPerSecond: Math.round(verdict.rows / verifySeconds), findings: verdict.findings.length },
  export: { rows: manifest.rowCount, seconds: Number(exportSeconds.toFixed(1)), bytes: fs.statSync(path.join(out, "transactions.ndjson")).size, verifySeconds: Number(exportVerifySeconds.toFixed(1)), ok: exported.ok, findings: exported.findings.slice(0, 3) }
}))
await store.close()
await stop()
fs.rmSync(dir, { recursive: true, force: true })
