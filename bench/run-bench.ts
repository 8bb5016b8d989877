// npm run bench [-- --quick] [-- --soak[=30m]] [-- --only U1,C1,R1] [-- --profile]: vgw and its peers
// under the same load from the project's fleet tool, on this machine, in one run. Prints a
// table and writes bench/results/*.json and (for a whole run) docs/benchmarks.md. The gateway,
// the peers and the fleet run on the Node that runs this (process.execPath): put Node 24 first
// on the PATH to measure it.
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { initDevPki } from '../certs/index.ts'
import { parseDuration } from '../simulators/index.ts'
import { machineDetails, markdownTable, postgresVersion, withLimitNote, writeDocBlock, type Row } from './bench-row.ts'
import { restScenarios } from './rest-scenarios.ts'
import { c1, d1, FULL, o1, QUICK, u1, u2, u2Rates } from './scenarios.ts'
import { m1, type SoakResult } from './soak.ts'
import { startBareAedes, startMosquittoTarget, startVgw, type Target, type VgwTarget } from './targets.ts'

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
/** `--name=value`, `--name value` (when `spaced`) or `--name` alone (''); undefined when absent. */
const flag = (name: string, spaced = false): string | undefined => {
  const i = process.argv.findIndex((a) => a === `--${name}` || a.startsWith(`--${name}=`))
  if (i < 0) return undefined
  const arg = process.argv[i] as string
  if (arg !== `--${name}`) return arg.slice(name.length + 3)
  const next = process.argv[i + 1]
  return spaced && next !== undefined && !next.startsWith('--') ? next : ''
}
const quick = flag('quick') !== undefined
const soakArg = flag('soak')
const soakMs = soakArg === undefined ? null : soakArg === '' ? 30 * 60_000 : parseDuration('soak', soakArg)
const onlyArg = flag('only', true)
const only = onlyArg === undefined ? null : new Set(onlyArg.split(',').map((s) => s.trim().toUpperCase()).filter((s) => s !== ''))
const SCENARIOS = ['U1', 'U2', 'C1', 'D1', 'O1', 'R1', 'R2', 'R3', 'M1']
const unknown = [...only ?? []].filter((s) => !SCENARIOS.includes(s))
if (only !== null && (only.size === 0 || unknown.length > 0)) throw new Error(`--only takes a comma-separated list of ${SCENARIOS.join(', ')}${unknown.length > 0 ? `, not ${unknown.join(', ')}` : ''}`)
const wanted = (scenario: string): boolean => only === null || only.has(scenario)
const profileDir = flag('profile') !== undefined ? path.join(ROOT, 'bench/results/profiles') : null
const size = quick ? QUICK : FULL
const stamp = new Date().toISOString()
const startedAt = Date.now()

const workDir = fs.mkdtempSync(path.join(os.tmpdir(), 'vgw-bench-'))
fs.chmodSync(workDir, 0o755) // the embedded PostgreSQL runs as its own user and must reach its data directory
const certDir = path.join(workDir, 'certs')
await initDevPki(certDir)
let postgres: string | null = null

/** A fresh vgw (own data directory) for each group of scenarios, stopped afterwards whatever happens. */
async function withVgw (name: string, fn: (vgw: VgwTarget) => Promise<void>): Promise<void> {
  const dir = path.join(workDir, name)
  fs.mkdirSync(dir, { recursive: true })
  const vgw = await startVgw(dir, certDir, profileDir === null ? [] : ['--cpu-prof', `--cpu-prof-dir=${profileDir}`])
  postgres ??= await postgresVersion(vgw.databaseUrl())
  try {
    await fn(vgw)
  } finally {
    await vgw.stop()
  }
}

const step = (text: string): void => { process.stderr.write(`${new Date().toISOString().slice(11, 19)} ${text}…\n`) }
const rows: Row[] = []
let soak: SoakResult | null = null

if (wanted('U1')) {
  const peers: Array<() => Promise<Target | null>> = [
    async () => await startBareAedes(certDir),
    async () => await startBareAedes(null),
    async () => await startMosquittoTarget(certDir, workDir)
  ]
  await withVgw('vgw-u1', async (vgw) => {
    step(`U1 against ${vgw.name}`)
    rows.push(await u1(vgw, certDir, size))
  })
  for (const start of peers) {
    const target = await start()
    if (target === null) {
      rows.push({ scenario: 'U1', target: 'Mosquitto', msgPerSecond: null, p50: null, p99: null, p999: null, brokerCpuPercent: null, brokerRssMiB: null, loadGeneratorCpuPercent: null, goal: 'peer', note: 'not available (no mosquitto binary on the PATH)' })
      continue
    }
    try {
      step(`U1 against ${target.name}`)
      rows.push(await u1(target, certDir, size))
    } finally {
      await target.stop()
    }
  }
}
if (wanted('U2')) {
  await withVgw('vgw-u2', async (vgw) => {
    for (const rate of u2Rates(size)) {
      step(`U2 at ${rate}/s against vgw`)
      rows.push(await u2(vgw, certDir, size, rate))
    }
  })
}
if (wanted('C1')) {
  // A gateway of its own, as fresh as the bare Aedes it is compared with (and its RSS per connection not U2's leftovers).
  await withVgw('vgw-c1', async (vgw) => {
    step('C1 against vgw')
    rows.push(await c1(vgw, certDir, size))
  })
  const bare = await startBareAedes(certDir)
  try {
    step(`C1 against ${bare.name}`)
    rows.push(await c1(bare, certDir, size))
  } finally {
    await bare.stop()
  }
}
if (wanted('R1') || wanted('R2') || wanted('R3')) {
  await withVgw('vgw-rest', async (vgw) => {
    rows.push(...await restScenarios(vgw, { vehicles: size.restVehicles, seconds: size.restSeconds, clients: 50, rate: size.restRate }, step))
  })
}
if (wanted('D1') || wanted('O1')) {
  await withVgw('vgw-d1', async (vgw) => {
    if (wanted('D1')) {
      step('D1 against vgw')
      rows.push(await d1(vgw, certDir, size))
    }
    if (wanted('O1')) {
      step('O1 against vgw')
      rows.push(await o1(vgw, certDir, size))
    }
  })
}
if (soakMs !== null && (wanted('M1') || only === null)) {
  await withVgw('vgw-m1', async (vgw) => {
    step(`M1 (${soakMs / 60_000} min soak) against vgw`)
    soak = await m1(vgw, certDir, soakMs)
    rows.push(soak.row)
  })
}

const machine = machineDetails(postgres ?? 'unknown')
const durationSeconds = Math.round((Date.now() - startedAt) / 1000)
const summary = `Run ${stamp}${quick ? ' (--quick)' : ''}${only !== null ? ` (--only ${[...only].join(',')})` : ''} on ${machine.cpu}, ${machine.cores} cores, ${machine.memoryGiB} GiB; ` +
  `Node ${machine.node} (OpenSSL ${machine.openssl}) ran the harness, the fleet, bare Aedes and the gateway; PostgreSQL ${machine.postgres}${process.env.DATABASE_URL !== undefined ? ' (DATABASE_URL: its CPU is not measured)' : ' (embedded)'}; the run took ${Math.round(durationSeconds / 60)} min. ` +
  `U1: ${size.u1Vehicles} vehicles × 1 in flight, as fast as acknowledged, 200-byte payloads; U2: ${size.u2Rate} and 2,800 msg/s offered by ${size.u2Vehicles} vehicles (Poisson, up to 10 in flight); ` +
  `C1: ${size.c1Vehicles} vehicles connecting at up to 2,000/s, against vgw and bare Aedes over mTLS; D1: ${size.d1Rate} REST sends/s to ${size.d1Vehicles} connected vehicles for ${size.seconds} s; O1: 10 queued messages each for ${size.o1Vehicles} offline vehicles, which then connect; ` +
  `R1–R3: REST sends to ${size.restVehicles} registered offline vehicles for ${size.restSeconds} s each: R1 50 clients in a closed loop, beside PostgreSQL's own single-row INSERT … RETURNING from 50 node-postgres connections; R2 ${size.restRate}/s offered; R3 3 × R1's rate offered. ` +
  `U1 and U2 use lean vehicles (raw MQTT packets) that start publishing once all are connected; rates, CPU and latencies are over the ${size.seconds} s that follow. ` +
  'CPU per message: the gateway process (peers: the broker process) and PostgreSQL (its postmaster and all its children, from /proc), over each scenario\'s window, divided by the messages of the column "one message is". ' +
  'Broker CPU % is the gateway plus PostgreSQL (in brackets), of one core; broker RSS is the broker process alone. The load generator (fleet workers, or the harness\'s HTTP client for R1–R3) runs on the same cores; its CPU is a column, and a note says where it may limit a figure.'
const noted = rows.map((r) => withLimitNote(r, machine.cores))
const table = markdownTable(noted)
process.stdout.write(`\n${summary}\n\n${table}\n`)
const results = path.join(ROOT, 'bench/results')
fs.mkdirSync(results, { recursive: true })
const soakResult = soak as SoakResult | null
fs.writeFileSync(path.join(results, `${stamp.replace(/[:.]/g, '-')}${quick ? '-quick' : ''}${only !== null ? `-${[...only].join('-')}` : ''}.json`),
  JSON.stringify({ machine, quick, only: only === null ? null : [...only], durationSeconds, size, rows: noted, ...(soakResult !== null ? { soakRss: soakResult.rss } : {}) }, null, 2) + '\n')
const doc = path.join(ROOT, 'docs/benchmarks.md')
if (only === null && !quick) writeDocBlock(doc, 'bench', 'Latest harness run (`npm run bench`)', `${summary}\n\n${table}`)
if (soakResult !== null) {
  const rss = soakResult.rss.filter((_, i) => i % 6 === 0).map(([t, m]) => `${Math.round(t / 60)} min: ${m}`).join(', ')
  writeDocBlock(doc, 'soak', 'Latest soak (`npm run bench -- --soak`)', `Run ${stamp} on the same machine as above.\n\n${markdownTable([soakResult.row])}\n\nGateway RSS (MiB) every minute: ${rss}.`)
}
fs.rmSync(workDir, { recursive: true, force: true })
