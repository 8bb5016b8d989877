// The log append in isolation (issue #14): CPU per uplink row in this process and in PostgreSQL.
//
//   npx tsx bench/append-bench.ts [rows=200000] [callers=1200] [batch=300]
//
// `callers` closed loops (a vehicle each, one uplink in flight) decode an envelope, build its
// log row and hand it to a CommitBatcher like the gateway's (batches of `batch`, 4 committing at
// once) that appends through store.transactions.append. Envelopes are encoded before the clock
// starts (the vehicles' work). This process' CPU is process.cpuUsage(); PostgreSQL's is the
// postmaster's and its children's from /proc (so use the embedded server: without DATABASE_URL
// one is started for the run, and nothing else shares it). Run it under
// `flock /tmp/vgw-bench.lock`. Prints one JSON line.
import { generateKeyPairSync } from 'node:crypto'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import pg from 'pg'
import pino from 'pino'
import { v7 as uuidv7 } from 'uuid'
import { decodeEnvelope, defaultEnvelopeLimits, encodeEnvelope } from '../protocol/index.ts'
import { newUuidV7 } from '../protocol/uuid-v7.ts'
import { openStore, type TransactionRecord } from '../store/index.ts'
import { CommitBatcher } from '../gateway/commit-batcher.ts'
import { acceptedUplink, type RecordContext } from '../gateway/edge/records.ts'
import type { DeviceIdentity } from '../gateway/edge/device-identity.ts'
import { benchDatabase } from './bench-database.ts'
import { Ledger } from '../gateway/ledger/ledger.ts'
import { signerFromKey } from '../gateway/ledger/checkpoint-signer.ts'
import { copyAppend } from './append-copy.ts'

const rows = Number(process.argv[2] ?? 200_000)
const callers = Number(process.argv[3] ?? 1200)
const batch = Number(process.argv[4] ?? 300)
const ticks = 100 // USER_HZ (clock ticks per second in /proc) on Linux

/** utime + stime (+ reaped children's) of a process, in ms; 0 once it is gone. */
function cpuMsOf (pid: number, withChildren: boolean): number {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8')
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    const own = Number(f[11]) + Number(f[12])
    const reaped = withChildren ? Number(f[13]) + Number(f[14]) : 0
    return (own + reaped) * 1000 / ticks
  } catch {
    return 0
  }
}

function childrenOf (ppid: number): number[] {
  const out: number[] = []
  for (const name of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue
    try {
      const stat = fs.readFileSync(`/proc/${name}/stat`, 'utf8')
      if (Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === ppid) out.push(Number(name))
    } catch { /* gone */ }
  }
  return out
}

/** PostgreSQL's CPU so far: the postmaster (with the children it reaped) and every live child. */
function postgresCpuMs (postmaster: number): number {
  return cpuMsOf(postmaster, true) + childrenOf(postmaster).reduce((sum, pid) => sum + cpuMsOf(pid, false), 0)
}

const { url, stop } = await benchDatabase('vgw-append-bench-')
if (process.env.DATABASE_URL !== undefined && process.env.DATABASE_URL !== '') {
  console.error('note: DATABASE_URL is set; PostgreSQL CPU then includes whatever else that server runs')
}
const store = openStore({ url, newId: uuidv7 })
await store.migrate()
await store.transactions.ensurePartitionRange(new Date(Date.now() - 24 * 3600_000), new Date(Date.now() + 24 * 3600_000))
// What one index costs on every row: APPEND_BENCH_DROP=transactions_vin_time_idx,... drops them first (owner's connection).
const owner = new pg.Client({ connectionString: url })
await owner.connect()
for (const name of (process.env.APPEND_BENCH_DROP ?? '').split(',').filter((n) => n !== '')) {
  await owner.query(name.endsWith('_pkey') ? `ALTER TABLE transactions DROP CONSTRAINT "${name}"` : `DROP INDEX "${name}"`)
}
await owner.end()
const probe = new pg.Client({ connectionString: url })
await probe.connect()
const backend = (await probe.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]?.pid ?? 0
const postmaster = Number(fs.readFileSync(`/proc/${backend}/stat`, 'utf8').split(') ')[1]?.split(' ')[1])
await probe.end()

const logger = pino({ level: 'warn' })
// The write-time ledger as the gateway runs it (#19): batches, blocks, signed checkpoints to a temporary
// directory. APPEND_BENCH_LEDGER=0 leaves it out (PostgreSQL still computes the leaves in the statement).
const ledgerDir = fs.mkdtempSync(path.join(os.tmpdir(), 'vgw-append-ledger-'))
const ledger = process.env.APPEND_BENCH_LEDGER === '0'
  ? null
  : new Ledger({
    store,
    signer: signerFromKey('vgw-ledger', generateKeyPairSync('ed25519').privateKey),
    settings: { checkpointDir: ledgerDir, checkpointIntervalMs: 10_000, flushIntervalMs: 200 },
    epoch: newUuidV7(),
    gateway: 'append-bench',
    logger
  })
await ledger?.start()
let counter = 0
// The gateway's id source (pooled random bytes), as build-gateway.ts uses it.
const ctx: RecordContext = { now: () => Date.now(), newId: newUuidV7 }
// APPEND_BENCH_MODE=copy: binary COPY into a temporary staging table, then INSERT … SELECT (bench/append-copy.ts).
const copyPool = new pg.Pool({ connectionString: url, max: 8 })
// Its idle connections end with the server at the end of the run: not an error of the bench.
copyPool.on('error', () => undefined)
const append = process.env.APPEND_BENCH_MODE === 'copy'
  ? async (records: TransactionRecord[]): Promise<void> => { await copyAppend(copyPool, records) }
  : async (records: TransactionRecord[]): Promise<void> => { await store.transactions.append(records) }
const log = new CommitBatcher<TransactionRecord>({
  commit: append,
  maxSize: batch,
  maxDelayMs: 5,
  maxConcurrent: 4,
  logger
})
const fleet: DeviceIdentity[] = Array.from({ length: callers }, (_, i) => ({
  vin: `WVWBENCH${String(i).padStart(9, '0')}`,
  market: 'DE',
  fingerprint: 'f'.repeat(64),
  serialNumber: String(i),
  remoteAddress: '127.0.0.1',
  chain: [],
  notAfter: Date.now() + 3600_000
}))
const payload = Buffer.alloc(200, 7)
const envelopes: Uint8Array[] = Array.from({ length: rows + callers * 20 }, () => encodeEnvelope({
  messageId: uuidv7(), kind: 'TELEMETRY', type: 'vehicle.telemetry', createdAtMs: Date.now(), payload, attributes: { 'content-type': 'application/x-protobuf' }
}))

async function vehicle (who: DeviceIdentity, until: number): Promise<void> {
  while (counter < until) {
    const raw = Buffer.from(envelopes[counter++] as Uint8Array)
    const result = decodeEnvelope(raw, defaultEnvelopeLimits, ctx.now())
    if (!result.ok) throw new Error(result.detail)
    await log.add(acceptedUplink(ctx, who, result.envelope, raw))
  }
}

// Warm up (JIT, plans, the partition's first pages), then measure.
await Promise.all(fleet.map((who) => vehicle(who, callers * 20)))
await log.flush()
const startCount = counter
const cpu0 = process.cpuUsage()
const pg0 = postgresCpuMs(postmaster)
const t0 = performance.now()
await Promise.all(fleet.map((who) => vehicle(who, startCount + rows)))
await log.flush()
// The ledger's batches and a checkpoint over them, inside the measured window.
await ledger?.checkpoint()
const seconds = (performance.now() - t0) / 1000
const cpu = process.cpuUsage(cpu0)
const pgMs = postgresCpuMs(postmaster) - pg0
const done = counter - startCount
// The gateway-side share of decoding and building the row, measured alone on the same envelopes.
const b0 = process.cpuUsage()
let sink = 0
for (let i = 0; i < rows; i++) {
  const raw = Buffer.from(envelopes[i] as Uint8Array)
  const result = decodeEnvelope(raw, defaultEnvelopeLimits, ctx.now())
  if (result.ok) sink += acceptedUplink(ctx, fleet[i % callers] as DeviceIdentity, result.envelope, raw).kind.length
}
const build = process.cpuUsage(b0)
console.log(JSON.stringify({
  scenario: 'append',
  rows: done,
  callers,
  batch,
  dropped: process.env.APPEND_BENCH_DROP ?? '',
  mode: process.env.APPEND_BENCH_MODE ?? 'store',
  rowsPerSecond: Math.round(done / seconds),
  gatewayUsPerRow: Number(((cpu.user + cpu.system) / done).toFixed(1)),
  postgresUsPerRow: Number((pgMs * 1000 / done).toFixed(1)),
  decodeAndBuildUsPerRow: Number(((build.user + build.system) / rows).toFixed(1)),
  sink: sink > 0
}))
await log.close()
await copyPool.end()
await ledger?.close()
await store.close()
await stop()
