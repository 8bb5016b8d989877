// npm run bench [-- --quick]: vgw and its peers under the same load from the project's fleet tool,
// on this machine, in one run. Prints a table and writes bench/results/*.json and docs/benchmarks.md.
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import pg from 'pg'
import { initDevPki } from '../certs/index.ts'
import { defaultFleetOptions, fleetVin, marketFor, runFleet, type FleetOptions } from '../simulators/index.ts'
import { startBareAedes, startMosquittoTarget, startVgw, usage, type Target } from './targets.ts'

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const quick = process.argv.includes('--quick')
// `--only U1,D1` runs some scenarios (for working on one); the docs block is written only by a whole run.
const onlyArg = process.argv.find((a) => a.startsWith('--only='))?.slice('--only='.length)
const only = onlyArg === undefined ? null : new Set(onlyArg.split(',').map((s) => s.trim().toUpperCase()))
const wanted = (scenario: string): boolean => only === null || only.has(scenario)
const size = quick
  ? { u1Vehicles: 300, seconds: 15, u2Rate: 3000, u2Vehicles: 300, c1Vehicles: 2000, d1Rate: 300, d1Vehicles: 300, o1Vehicles: 1000 }
  : { u1Vehicles: 2000, seconds: 45, u2Rate: 10_000, u2Vehicles: 2000, c1Vehicles: 10_000, d1Rate: 1000, d1Vehicles: 2000, o1Vehicles: 10_000 }

interface Row {
  scenario: string
  target: string
  msgPerSecond: number | null
  offeredPerSecond?: number
  p50: number | null
  p99: number | null
  p999: number | null
  brokerCpuPercent: number | null
  brokerRssMiB: number | null
  loadGeneratorCpuPercent: number
  note?: string
}

const f = (x: number | null | undefined, digits = 1): string => x === null || x === undefined ? '–' : x.toFixed(digits)

const workDir = fs.mkdtempSync(path.join(os.tmpdir(), 'vgw-bench-'))
fs.chmodSync(workDir, 0o755)
const certDir = path.join(workDir, 'certs')
await initDevPki(certDir)

function options (target: Target, over: Partial<FleetOptions>): FleetOptions {
  return {
    ...defaultFleetOptions(),
    mqttUrl: target.mqttUrl,
    apiUrl: '',
    apiKey: '',
    certDir,
    payloadBytes: 200,
    inFlight: 1,
    downlinkRate: 0,
    connectRatePerSecond: 2000,
    verify: false,
    ...over
  }
}

/** Runs a fleet and measures over the steady part: from when every vehicle is connected to the end. */
async function measure (scenario: string, target: Target, opts: FleetOptions): Promise<Row> {
  let steady: { at: number, acked: number, sent: number, cpu: number } | null = null
  const report = await runFleet(opts, {
    onProgress: (p) => {
      if (steady === null && p.counters.connected >= opts.vehicles) {
        steady = { at: Date.now(), acked: p.counters.uplinkAcked, sent: p.counters.uplinkSent, cpu: usage(target.pids()).cpuSeconds }
      }
    }
  })
  const end = { at: Date.now(), acked: report.counters.uplinkAcked, sent: report.counters.uplinkSent, cpu: usage(target.pids()).cpuSeconds }
  const s = steady as { at: number, acked: number, sent: number, cpu: number } | null
  const seconds = s === null ? report.durationSeconds : (end.at - s.at) / 1000
  return {
    scenario,
    target: target.name,
    msgPerSecond: s === null ? null : Math.round((end.acked - s.acked) / seconds),
    offeredPerSecond: s === null ? undefined : Math.round((end.sent - s.sent) / seconds),
    p50: report.latencyMs.uplink.p50,
    p99: report.latencyMs.uplink.p99,
    p999: report.latencyMs.uplink.p999,
    brokerCpuPercent: s === null ? null : Math.round((end.cpu - s.cpu) / seconds * 100),
    brokerRssMiB: usage(target.pids()).rssMiB,
    loadGeneratorCpuPercent: report.loadGenerator.cpuPercentOfOneCore,
    ...(s === null ? { note: `only ${report.counters.connected} of ${opts.vehicles} connected` } : {})
  }
}

const rows: Row[] = []
const targets: Array<() => Promise<Target | null>> = [
  async () => await startVgw(path.join(workDir, 'vgw-u1'), certDir),
  async () => await startBareAedes(certDir),
  async () => await startBareAedes(null),
  async () => await startMosquittoTarget(certDir, workDir)
]
fs.mkdirSync(path.join(workDir, 'vgw-u1'), { recursive: true })
for (const start of wanted('U1') ? targets : []) {
  const target = await start()
  if (target === null) {
    rows.push({ scenario: 'U1', target: 'Mosquitto', msgPerSecond: null, p50: null, p99: null, p999: null, brokerCpuPercent: null, brokerRssMiB: null, loadGeneratorCpuPercent: 0, note: 'not available (no mosquitto binary)' })
    continue
  }
  try {
    process.stderr.write(`U1 against ${target.name}…\n`)
    // As fast as acknowledged: each vehicle always has its one message in flight.
    rows.push(await measure('U1', target, options(target, { vehicles: size.u1Vehicles, durationMs: size.seconds * 1000, uplinkRatePerVehicle: 1000, firstVehicle: 100_000 })))
  } finally {
    await target.stop()
  }
}

// U2 and C1 on vgw.
fs.mkdirSync(path.join(workDir, 'vgw-u2'), { recursive: true })
if (wanted('U2')) {
  const vgw = await startVgw(path.join(workDir, 'vgw-u2'), certDir)
  try {
    process.stderr.write('U2 against vgw…\n')
    rows.push(await measure('U2', vgw, options(vgw, { vehicles: size.u2Vehicles, durationMs: size.seconds * 1000, uplinkRatePerVehicle: size.u2Rate / size.u2Vehicles, inFlight: 10, firstVehicle: 200_000 })))
    process.stderr.write('C1 against vgw…\n')
    const before = usage(vgw.pids()).rssMiB
    const started = Date.now()
    let allAt: number | null = null
    const c1 = await runFleet(options(vgw, { vehicles: size.c1Vehicles, durationMs: 60_000, uplinkRatePerVehicle: 0, connectRatePerSecond: 2000, firstVehicle: 300_000 }), {
      onProgress: (p) => { if (allAt === null && p.counters.connected >= size.c1Vehicles) allAt = Date.now() }
    })
    const after = usage(vgw.pids()).rssMiB
    const connectedAfter = allAt === null ? null : ((allAt as number) - started) / 1000
    rows.push({
      scenario: 'C1',
      target: vgw.name,
      msgPerSecond: null,
      p50: c1.latencyMs.connect.p50,
      p99: c1.latencyMs.connect.p99,
      p999: c1.latencyMs.connect.p999,
      brokerCpuPercent: null,
      brokerRssMiB: after,
      loadGeneratorCpuPercent: c1.loadGenerator.cpuPercentOfOneCore,
      note: `${c1.counters.connected} of ${size.c1Vehicles} connected${connectedAfter === null ? ' (not all within 60 s)' : ` after ${connectedAfter.toFixed(1)} s (certificates ${c1.certSeconds.toFixed(1)} s, registration none)`}; RSS +${after - before} MiB = ${Math.round((after - before) * 1024 / Math.max(1, c1.counters.connected))} KB per connection (gateway + PostgreSQL)`
    })
  } finally {
    await vgw.stop()
  }
}
// D1 and O1 on a fresh vgw.
fs.mkdirSync(path.join(workDir, 'vgw-d1'), { recursive: true })
if (wanted('D1')) {
  const vgw = await startVgw(path.join(workDir, 'vgw-d1'), certDir)
  try {
    process.stderr.write('D1 against vgw…\n')
    const d1 = await runFleet(options(vgw, {
      apiUrl: vgw.apiUrl, apiKey: vgw.apiKey, vehicles: size.d1Vehicles, durationMs: size.seconds * 1000, uplinkRatePerVehicle: 0.01,
      downlinkRate: size.d1Rate, ackDelayMs: [10, 50], firstVehicle: 500_000
    }))
    rows.push({
      scenario: 'D1',
      target: vgw.name,
      msgPerSecond: d1.rates.downlinkPostedPerSecond,
      offeredPerSecond: size.d1Rate,
      p50: d1.latencyMs.downlinkDelivered.p50,
      p99: d1.latencyMs.downlinkDelivered.p99,
      p999: d1.latencyMs.downlinkDelivered.p999,
      brokerCpuPercent: null,
      brokerRssMiB: usage(vgw.pids()).rssMiB,
      loadGeneratorCpuPercent: d1.loadGenerator.cpuPercentOfOneCore,
      note: `POST → delivered; ${d1.downlinks.delivered} of ${d1.downlinks.posted} delivered, ${d1.downlinks.postFailed} POST failed; POST → vehicle p99 ${f(d1.latencyMs.downlinkReceipt.p99)} ms`
    })

    process.stderr.write('O1 against vgw…\n')
    const o1Vins = Array.from({ length: size.o1Vehicles }, (_, i) => fleetVin(marketFor(i, size.o1Vehicles, defaultFleetOptions().markets), 600_000 + i))
    const headers = { authorization: `Bearer ${vgw.apiKey}`, 'content-type': 'application/json' }
    let next = 0
    await Promise.all(Array.from({ length: 32 }, async () => {
      while (next < o1Vins.length) {
        const i = next++
        const vin = o1Vins[i] as string
        await fetch(`${vgw.apiUrl}/v1/vehicles/${vin}`, { method: 'PUT', headers, body: JSON.stringify({ market: marketFor(i, size.o1Vehicles, defaultFleetOptions().markets) }) })
      }
    }))
    const queuedAt = Date.now()
    for (let k = 0; k < 10; k++) {
      await fetch(`${vgw.apiUrl}/v1/campaigns`, { method: 'POST', headers, body: JSON.stringify({ vins: o1Vins, type: 'service.reminder', payload: `reminder ${k}` }) })
    }
    const queueSeconds = (Date.now() - queuedAt) / 1000
    const total = size.o1Vehicles * 10
    const started = Date.now()
    let doneAt: number | null = null
    const o1 = await runFleet(options(vgw, { vehicles: size.o1Vehicles, durationMs: 60_000, uplinkRatePerVehicle: 0, ackDelayMs: [0, 10], firstVehicle: 600_000 }), {
      onProgress: (p) => { if (doneAt === null && p.counters.downlinkReceived >= total) doneAt = Date.now() }
    })
    rows.push({
      scenario: 'O1',
      target: vgw.name,
      msgPerSecond: doneAt === null ? null : Math.round(total / (((doneAt as number) - started) / 1000)),
      p50: null,
      p99: null,
      p999: null,
      brokerCpuPercent: null,
      brokerRssMiB: usage(vgw.pids()).rssMiB,
      loadGeneratorCpuPercent: o1.loadGenerator.cpuPercentOfOneCore,
      note: `${total} messages queued for ${size.o1Vehicles} offline vehicles in ${queueSeconds.toFixed(1)} s; ${o1.counters.downlinkReceived} received ${doneAt === null ? 'within 60 s (not all)' : `${(((doneAt as number) - started) / 1000).toFixed(1)} s after the fleet started (certificates ${o1.certSeconds.toFixed(1)} s of it)`}`
    })
  } finally {
    await vgw.stop()
  }
}
rows.push({ scenario: 'M1', target: 'vgw', msgPerSecond: null, p50: null, p99: null, p999: null, brokerCpuPercent: null, brokerRssMiB: null, loadGeneratorCpuPercent: 0, note: 'the 30-minute soak is not in this version of the harness' })

const machine = {
  cpu: os.cpus()[0]?.model ?? 'unknown',
  cores: os.availableParallelism(),
  memoryGiB: Math.round(os.totalmem() / 2 ** 30),
  node: process.version,
  postgres: await (async () => {
    try {
      const c = new pg.Client({ connectionString: process.env.DATABASE_URL ?? fs.readFileSync(path.join(workDir, 'vgw-u2', 'data', 'postgres.url'), 'utf8').trim() })
      await c.connect()
      const v = (await c.query<{ v: string }>('SHOW server_version')).rows[0]?.v
      await c.end()
      return v ?? 'unknown'
    } catch {
      return '18.4 (embedded)'
    }
  })()
}
const u1 = rows.filter((r) => r.scenario === 'U1')
const bare = u1.find((r) => r.target.startsWith('bare Aedes, mTLS'))?.msgPerSecond ?? null
const lines = [
  `| scenario | target | msg/s | offered/s | p50 ms | p99 ms | p99.9 ms | broker CPU % | broker RSS MiB | load generator CPU % | vs bare Aedes mTLS | note |`,
  '|---|---|---|---|---|---|---|---|---|---|---|---|',
  ...rows.map((r) => `| ${r.scenario} | ${r.target} | ${r.msgPerSecond ?? '–'} | ${r.offeredPerSecond ?? '–'} | ${f(r.p50)} | ${f(r.p99)} | ${f(r.p999)} | ${r.brokerCpuPercent ?? '–'} | ${r.brokerRssMiB ?? '–'} | ${r.loadGeneratorCpuPercent} | ${r.scenario === 'U1' && r.msgPerSecond !== null && bare !== null ? `${(r.msgPerSecond / bare).toFixed(2)}×` : '–'} | ${r.note ?? ''} |`)
]
const stamp = new Date().toISOString()
const summary = `Run ${stamp}${quick ? ' (--quick)' : ''} on ${machine.cpu}, ${machine.cores} cores, ${machine.memoryGiB} GiB, Node ${machine.node}, PostgreSQL ${machine.postgres}. U1: ${size.u1Vehicles} vehicles × 1 in flight, 200-byte payloads, ${size.seconds} s; U2: ${size.u2Rate} msg/s offered by ${size.u2Vehicles} vehicles × 10 in flight; C1: ${size.c1Vehicles} vehicles connecting at 2,000/s; D1: ${size.d1Rate} REST sends/s to ${size.d1Vehicles} connected vehicles; O1: 10 queued messages each for ${size.o1Vehicles} offline vehicles, which then connect. Rates and CPU are over the steady part (every vehicle connected); latencies over the whole run. The load generator runs on the same 2 cores.`
process.stdout.write(`\n${summary}\n\n${lines.join('\n')}\n`)
fs.mkdirSync(path.join(ROOT, 'bench/results'), { recursive: true })
fs.writeFileSync(path.join(ROOT, 'bench/results', `${stamp.replace(/[:.]/g, '-')}${quick ? '-quick' : ''}.json`), JSON.stringify({ machine, quick, size, rows }, null, 2) + '\n')
const doc = path.join(ROOT, 'docs/benchmarks.md')
const text = fs.readFileSync(doc, 'utf8')
const block = `<!-- bench:start -->\n${summary}\n\n${lines.join('\n')}\n<!-- bench:end -->`
fs.writeFileSync(doc, text.includes('<!-- bench:start -->') ? text.replace(/<!-- bench:start -->[\s\S]*<!-- bench:end -->/, block) : `${text}\n## Latest harness run (\`npm run bench\`)\n\n${block}\n`)
fs.rmSync(workDir, { recursive: true, force: true })
