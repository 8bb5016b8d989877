// A fleet worker process: runs a slice of the simulated vehicles and reports to the orchestrator.
import fs from 'node:fs'
import path from 'node:path'
import { FleetCertificates } from './fleet-certs.ts'
import { encodeHistogram, newHistogram, zeroCounters } from './fleet-metrics.ts'
import type { FromWorker, StartCommand, ToWorker } from './fleet-protocol.ts'
import { LeanVehicle } from './lean-vehicle.ts'
import { SimulatedVehicle, type FleetVehicle } from './simulated-vehicle.ts'

const send = (m: FromWorker): void => { process.send?.(m) }
const counters = zeroCounters()
let connectHist = newHistogram()
let uplinkHist = newHistogram()
let received: Array<[string, number]> = []
let errors: Record<string, number> = {}
const vehicles: FleetVehicle[] = []
const byVin = new Map<string, FleetVehicle>()
let startedAt = 0
let start: StartCommand | null = null
let budgetReached = false
let ticker: NodeJS.Timeout | null = null

function rateMultiplier (): number {
  if (start?.scenario !== 'rush-hour') return 1
  // Rates ramp from 20% up to 100% at mid-run and back down.
  const progress = Math.min(1, (Date.now() - startedAt) / start.durationMs)
  return 0.2 + 0.8 * Math.sin(Math.PI * progress)
}

function tick (): void {
  if (start?.uplinkBudget !== null && start?.uplinkBudget !== undefined && !budgetReached &&
    counters.uplinkSent - counters.acksSent >= start.uplinkBudget) {
    budgetReached = true
    for (const v of vehicles) v.stopUplinks()
  }
  send({ type: 'tick', counters: { ...counters }, connect: encodeHistogram(connectHist), uplink: encodeHistogram(uplinkHist), received, errors, budgetReached })
  connectHist = newHistogram()
  uplinkHist = newHistogram()
  received = []
  errors = {}
}

function flaky (share: number): void {
  // Each second, `share` of the vehicles have a bad moment: half a dead socket, half a stalled read.
  for (const v of vehicles) {
    const r = Math.random()
    if (r < share / 2) v.killSocket()
    else if (r < share) v.stallReads(500 + Math.random() * 2000)
  }
}

async function run (cmd: StartCommand): Promise<void> {
  start = cmd
  const t0 = performance.now()
  const certs = await FleetCertificates.open(cmd.certDir)
  const ca = fs.readFileSync(path.join(cmd.certDir, 'ca.crt'), 'utf8')
  const creds = await Promise.all(cmd.vehicles.map((v) => certs.get(v.vin, v.market)))
  send({ type: 'ready', certSeconds: (performance.now() - t0) / 1000 })
  startedAt = Date.now()
  const sinks = {
    counters,
    get connectHist () { return connectHist },
    get uplinkHist () { return uplinkHist },
    received: (id: string, at: number) => { received.push([id, at]) },
    errorCode: (code: string) => { errors[code] = (errors[code] ?? 0) + 1 },
    rateMultiplier
  }
  cmd.vehicles.forEach((v, i) => {
    const sim = new (cmd.lean ? LeanVehicle : SimulatedVehicle)(v.vin, v.market, creds[i] as { key: string, cert: string }, { ...cmd.behaviour, ca }, sinks)
    vehicles.push(sim)
    byVin.set(v.vin, sim)
  })
  ticker = setInterval(tick, 1000)
  ticker.unref()
  if (cmd.scenario === 'flaky-network') setInterval(() => flaky(cmd.flakyShare), 1000).unref()
  // Connect at the asked rate, in slices of 10 ms.
  const perSlice = Math.max(1, Math.round(cmd.connectRatePerSecond / 100))
  for (let i = 0; i < vehicles.length; i += perSlice) {
    for (const v of vehicles.slice(i, i + perSlice)) {
      v.goOnline()
      if (!cmd.holdUplinks) v.startUplinks()
    }
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
}

async function finish (drainMs: number, expect: Array<[string, string]>): Promise<void> {
  for (const v of vehicles) v.stopUplinks()
  const deadline = Date.now() + drainMs
  const waiting = (): boolean => vehicles.some((v) => v.connected && !v.idle) ||
    expect.some(([vin, id]) => byVin.get(vin)?.connected === true && byVin.get(vin)?.hasReceived(id) === false)
  while (Date.now() < deadline && waiting()) await new Promise((resolve) => setTimeout(resolve, 100))
  // The last report: nothing after it may overwrite these counters.
  if (ticker !== null) clearInterval(ticker)
  tick()
  const final: FromWorker = {
    type: 'final',
    vehicles: vehicles.map((v) => ({ vin: v.vin, connected: v.connected, acked: v.acked, answers: [...v.answers] })),
    cpuSeconds: (process.cpuUsage().user + process.cpuUsage().system) / 1e6
  }
  // Exit only once the report has left: it can be megabytes for a large fleet.
  process.send?.(final, () => {
    for (const v of vehicles) v.close()
    setTimeout(() => process.exit(0), 200).unref()
  })
}

process.on('message', (m: ToWorker) => {
  switch (m.type) {
    case 'start':
      run(m).catch((err: unknown) => { send({ type: 'failed', message: err instanceof Error ? err.message : String(err) }) })
      break
    case 'offline':
      for (const vin of m.vins) byVin.get(vin)?.goOffline()
      break
    case 'online':
      for (const vin of m.vins) byVin.get(vin)?.goOnline()
      break
    case 'storm':
      for (const v of vehicles) v.killSocket()
      break
    case 'start-uplinks':
      if (!budgetReached) for (const v of vehicles) v.startUplinks()
      break
    case 'stop-uplinks':
      for (const v of vehicles) v.stopUplinks()
      break
    case 'finish':
      void finish(m.drainMs, m.expect)
      break
  }
})
process.on('disconnect', () => process.exit(0))
