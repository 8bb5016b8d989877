// What metrics cost under load: U1 (lean vehicles in a closed loop, as `npm run bench` runs it)
// against one `vgw start`, first without and then with a Prometheus-style scrape of /metrics
// every second; prints the gateway's CPU per acknowledged uplink for both runs.
//   npx tsx bench/metrics-u1.ts [vehicles=300] [seconds=20]
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { initDevPki } from '../certs/index.ts'
import { fleetOptions, measureUplinks, type Row } from './bench-row.ts'
import { startVgw } from './targets.ts'

const vehicles = Number(process.argv[2] ?? 300)
const seconds = Number(process.argv[3] ?? 20)
const workDir = fs.mkdtempSync(path.join(os.tmpdir(), 'vgw-metrics-u1-'))
fs.chmodSync(workDir, 0o755)
const certDir = path.join(workDir, 'certs')
await initDevPki(certDir)
const vgwDir = path.join(workDir, 'vgw')
fs.mkdirSync(vgwDir)
const vgw = await startVgw(vgwDir, certDir)

async function run (label: string, firstVehicle: number, scrape: boolean): Promise<Row & { label: string, cpuUsPerMessage: number | null, scrapes: number }> {
  let scrapes = 0
  const timer = scrape
    ? setInterval(() => {
      fetch(`${vgw.apiUrl}/metrics`, { headers: { authorization: `Bearer ${vgw.apiKey}` } })
        .then(async (r) => { await r.text(); scrapes++ }, () => undefined)
    }, 1000)
    : null
  try {
    const { row } = await measureUplinks('U1', vgw, fleetOptions(vgw, certDir, {
      vehicles, uplinkRatePerVehicle: Number.POSITIVE_INFINITY, lean: true, firstVehicle
    }), seconds * 1000, label)
    const perMessage = row.msgPerSecond === null || row.brokerCpuPercent === null ? null : Math.round(row.brokerCpuPercent / 100 / row.msgPerSecond * 1e6)
    return { ...row, label, cpuUsPerMessage: perMessage, scrapes }
  } finally {
    if (timer !== null) clearInterval(timer)
  }
}

try {
  const results = [
    await run('no scrape', 400_000, false),
    await run('scrape every 1 s', 400_000, true),
    await run('no scrape (again)', 400_000, false)
  ]
  for (const r of results) {
    process.stdout.write(`${r.label.padEnd(20)} ${String(r.msgPerSecond).padStart(6)} msg/s  gateway+PostgreSQL CPU ${String(r.brokerCpuPercent).padStart(4)} %  ${String(r.cpuUsPerMessage).padStart(4)} µs/msg  p99 ${String(r.p99)} ms  scrapes ${r.scrapes}\n`)
  }
} finally {
  await vgw.stop()
  fs.rmSync(workDir, { recursive: true, force: true })
}
