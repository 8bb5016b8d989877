// npm run bench [-- --quick] [-- --soak[=30m]] [-- --only=U1,D1] [-- --profile]: vgw and its peers
// under the same load from the project's fleet tool, on this machine, in one run. Prints a
// table and writes bench/results/*.json and (for a whole run) docs/benchmarks.md.
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { initDevPki } from '../certs/index.ts'
import { parseDuration } from '../simulators/index.ts'
import { machineDetails, markdownTable, postgresVersion, writeDocBlock, type Row } from './bench-row.ts'
import { c1, d1, FULL, o1, QUICK, u1, u2, u2Rates } from './scenarios.ts'
import { m1, type SoakResult } from './soak.ts'
import { startBareAedes, startMosquittoTarget, startVgw, type Target, type VgwTarget } from './targets.ts'

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const flag = (name: string): string | undefined => {
  const arg = process.argv.find((a) => a === `--${name}` || a.startsWith(`--${name}=`))
  return arg === undefined ? undefined : arg.slice(name.length + 3)
}
const quick = flag('quick') !== undefined
const soakArg = flag('soak')
const soakMs = soakArg === undefined ? null : soakArg === '' ? 30 * 60_000 : parseDuration('soak', soakArg)
const onlyArg = flag('only')
const only = onlyArg === undefined ? null : new Set(onlyArg.split(',').map((s) => s.trim().toUpperCase()))
const wanted = (scenario: string): boolean => only === null || only.has(scenario)
const profileDir = flag('profile') !== undefined ? path.join(ROOT, 'bench/results/profiles') : null
const size = quick ? QUICK : FULL
const stamp = new Date().toISOString()

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
if (wanted('U2') || wanted('C1')) {
  await withVgw('vgw-u2', async (vgw) => {
    for (const rate of wanted('U2') ? u2Rates(size) : []) {
      step(`U2 at ${rate}/s against vgw`)
      rows.push(await u2(vgw, certDir, size, rate))
    }
    if (wanted('C1')) {
      step('C1 against vgw')
      rows.push(await c1(vgw, certDir, size))
    }
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
const summary = `Run ${stamp}${quick ? ' (--quick)' : ''} on ${machine.cpu}, ${machine.cores} cores, ${machine.memoryGiB} GiB, Node ${machine.node}, PostgreSQL ${machine.postgres}${process.env.DATABASE_URL !== undefined ? ' (DATABASE_URL)' : ' (embedded)'}. ` +
  `U1: ${size.u1Vehicles} vehicles × 1 in flight, as fast as acknowledged, 200-byte payloads; U2: ${size.u2Rate} and 2,800 msg/s offered by ${size.u2Vehicles} vehicles (Poisson, up to 10 in flight); ` +
  `C1: ${size.c1Vehicles} vehicles connecting at 2,000/s; D1: ${size.d1Rate} REST sends/s to ${size.d1Vehicles} connected vehicles for ${size.seconds} s; O1: 10 queued messages each for ${size.o1Vehicles} offline vehicles, which then connect. ` +
  `U1 and U2 use lean vehicles (raw MQTT packets) that start publishing once all are connected; rates, CPU and latencies are over the ${size.seconds} s that follow. Broker CPU includes vgw's PostgreSQL (in brackets); broker RSS is the broker process alone. The load generator runs on the same cores.`
const table = markdownTable(rows)
process.stdout.write(`\n${summary}\n\n${table}\n`)
const results = path.join(ROOT, 'bench/results')
fs.mkdirSync(results, { recursive: true })
const soakResult = soak as SoakResult | null
fs.writeFileSync(path.join(results, `${stamp.replace(/[:.]/g, '-')}${quick ? '-quick' : ''}${only !== null ? `-${[...only].join('-')}` : ''}.json`),
  JSON.stringify({ machine, quick, size, rows, ...(soakResult !== null ? { soakRss: soakResult.rss } : {}) }, null, 2) + '\n')
const doc = path.join(ROOT, 'docs/benchmarks.md')
if (only === null) writeDocBlock(doc, 'bench', 'Latest harness run (`npm run bench`)', `${summary}\n\n${table}`)
if (soakResult !== null) {
  const rss = soakResult.rss.filter((_, i) => i % 6 === 0).map(([t, m]) => `${Math.round(t / 60)} min: ${m}`).join(', ')
  writeDocBlock(doc, 'soak', 'Latest soak (`npm run bench -- --soak`)', `Run ${stamp} on the same machine as above.\n\n${markdownTable([soakResult.row])}\n\nGateway RSS (MiB) every minute: ${rss}.`)
}
fs.rmSync(workDir, { recursive: true, force: true })
