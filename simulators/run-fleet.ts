import { fork, type ChildProcess } from 'node:child_process'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { BackendSimulator } from './backend-sim.ts'
import { HISTOGRAMS, mergeInto, newHistogram, percentiles, zeroCounters, type FleetCounters, type HistogramName, type Percentiles } from './fleet-metrics.ts'
import type { FleetOptions } from './fleet-options.ts'
import type { FromWorker, ToWorker, VehicleFinal } from './fleet-protocol.ts'
import { feedHead } from './fleet-feed-verify.ts'
import { verifyFleet, type VerificationInput, type VerificationResult } from './fleet-verify.ts'
import { fleetVin, marketFor } from './vin-factory.ts'

export interface FleetReport {
  scenario: string
  vehicles: number
  workers: number
  startedAt: string
  durationSeconds: number
  certSeconds: number
  registerSeconds: number
  counters: FleetCounters
  rates: { uplinkAckedPerSecond: number, downlinkPostedPerSecond: number }
  downlinks: { posted: number, postFailed: number, retried: number, received: number, delivered: number, acknowledged: number }
  errors: Record<string, number>
  latencyMs: Record<HistogramName, Percentiles>
  loadGenerator: { cpuSeconds: number, cpuPercentOfOneCore: number }
  verification: VerificationResult | null
  /** What a later `vgw fleet verify` needs. */
  verificationInput: VerificationInput
}

export interface Progress {
  elapsedSeconds: number
  target: number
  counters: FleetCounters
  downlinks: { posted: number, received: number, delivered: number, acknowledged: number, postFailed: number }
  errors: Record<string, number>
  latencyMs: { uplinkP50: number, uplinkP99: number, connectP99: number }
}

export interface FleetHooks {
  onProgress?: (p: Progress) => void
  /** Asked every 100 ms: true ends the run before its duration (benchmarks stop once what they measure is done). */
  shouldStop?: () => boolean
  /** Runs after the load and before verification (tests tamper here to prove verification fails). */
  beforeVerify?: (input: VerificationInput) => Promise<void>
}

const WORKER = path.join(path.dirname(fileURLToPath(import.meta.url)), 'fleet-worker.ts')

async function registerAll (opts: FleetOptions, vehicles: Array<{ vin: string, market: string }>): Promise<void> {
  let next = 0
  await Promise.all(Array.from({ length: Math.min(32, vehicles.length) }, async () => {
    while (next < vehicles.length) {
      const v = vehicles[next++] as { vin: string, market: string }
      const res = await fetch(`${opts.apiUrl}/v1/vehicles/${v.vin}`, {
        method: 'PUT',
        headers: { authorization: `Bearer ${opts.apiKey}`, 'content-type': 'application/json' },
        body: JSON.stringify({ market: v.market })
      })
      if (res.status !== 200 && res.status !== 201) {
        throw new Error(`registering ${v.vin} failed: HTTP ${res.status} ${await res.text()} (the API key needs the admin scope)`)
      }
    }
  }))
}

/**
 * Runs a simulated fleet against a gateway and returns the report. Vehicles are spread
 * over worker processes; this process plays the backend (REST sends, stream).
 */
export async function runFleet (opts: FleetOptions, hooks: FleetHooks = {}): Promise<FleetReport> {
  const startedAt = Date.now()
  const cpuStart = process.cpuUsage()
  const vehicles = Array.from({ length: opts.vehicles }, (_, i) => {
    const market = marketFor(i, opts.vehicles, opts.markets)
    return { vin: fleetVin(market, opts.firstVehicle + i), market }
  })
  const t0 = performance.now()
  const withBackend = opts.apiUrl !== ''
  // Taken before anything of the run is logged, so that all of it comes after this cursor.
  const feedAfter = opts.verify && opts.verifyFeed && withBackend ? await feedHead(opts.apiUrl, opts.apiKey) : null
  if (withBackend) await registerAll(opts, vehicles)
  const registerSeconds = (performance.now() - t0) / 1000

  const backend = new BackendSimulator(opts.apiUrl, opts.apiKey, vehicles.map((v) => v.vin), opts.downlinkTtlSeconds)
  if (withBackend) await backend.openStream()

  const workerCount = Math.max(1, Math.min(opts.workers, opts.vehicles))
  const slices: Array<Array<{ vin: string, market: string }>> = Array.from({ length: workerCount }, () => [])
  vehicles.forEach((v, i) => slices[i % workerCount]?.push(v))
  const latest = new Map<ChildProcess, FleetCounters>()
  const finals = new Map<ChildProcess, VehicleFinal[]>()
  let workerCpuSeconds = 0
  const hists = Object.fromEntries(HISTOGRAMS.map((h) => [h, newHistogram()])) as Record<HistogramName, ReturnType<typeof newHistogram>>
  const errors: Record<string, number> = {}
  let certSeconds = 0
  let budgetsReached = 0
  let readyWorkers = 0
  const workers: ChildProcess[] = []
  const failures: string[] = []

  for (const slice of slices) {
    const child = fork(WORKER, [], { execArgv: ['--import', import.meta.resolve('tsx')], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
    workers.push(child)
    child.on('message', (m: FromWorker) => {
      if (m.type === 'ready') {
        certSeconds = Math.max(certSeconds, m.certSeconds)
        readyWorkers++
      }
      if (m.type === 'tick') {
        latest.set(child, m.counters)
        mergeInto(hists.connect, m.connect)
        mergeInto(hists.uplink, m.uplink)
        for (const [id, at] of m.received) backend.received(id, at)
        for (const [code, n] of Object.entries(m.errors)) errors[code] = (errors[code] ?? 0) + n
        if (m.budgetReached) budgetsReached++
      }
      if (m.type === 'final') {
        finals.set(child, m.vehicles)
        workerCpuSeconds += m.cpuSeconds
      }
      if (m.type === 'failed') failures.push(m.message)
    })
    child.on('exit', (code, signal) => {
      if (!finals.has(child) && (code !== 0 || signal !== null)) failures.push(`worker ${child.pid ?? '?'} exited (${code ?? signal ?? '?'}) before reporting`)
    })
    const cmd: ToWorker = {
      type: 'start',
      behaviour: {
        mqttUrl: opts.mqttUrl,
        // Infinity does not survive IPC (JSON): it travels as closedLoop.
        uplinkRatePerVehicle: Number.isFinite(opts.uplinkRatePerVehicle) ? opts.uplinkRatePerVehicle : 0,
        closedLoop: opts.uplinkRatePerVehicle === Number.POSITIVE_INFINITY,
        payloadBytes: opts.payloadBytes,
        inFlight: opts.inFlight,
        ackDelayMs: opts.ackDelayMs,
        rejectShare: opts.rejectShare,
        resumeSessions: opts.resumeSessions
      },
      certDir: opts.certDir,
      vehicles: slice,
      connectRatePerSecond: opts.connectRatePerSecond / workerCount,
      uplinkBudget: opts.messages === null ? null : Math.ceil(opts.messages * slice.length / opts.vehicles),
      scenario: opts.scenario,
      durationMs: opts.durationMs,
      holdUplinks: opts.uplinksAfterConnect,
      lean: opts.lean,
      flakyShare: opts.flakyShare
    }
    child.send(cmd)
  }
  const tell = (m: ToWorker): void => { for (const w of workers) if (w.connected) w.send(m) }
  const sum = (): FleetCounters => {
    const total = zeroCounters()
    for (const c of latest.values()) for (const k of Object.keys(total) as Array<keyof FleetCounters>) total[k] += c[k]
    return total
  }
  const runStart = Date.now()
  // The run's duration counts from the moment the fleet is connected: certificates and the
  // connect ramp take what the machine gives them, and a short run must not lose its load to them.
  let loadStart = runStart
  const multiplier = (): number => opts.scenario === 'rush-hour' ? 0.2 + 0.8 * Math.sin(Math.PI * Math.min(1, (Date.now() - loadStart) / opts.durationMs)) : 1
  // Scenario events, over the run once the fleet is connected.
  const timers: NodeJS.Timeout[] = []
  const offlineVins = vehicles.filter((_, i) => i < Math.round(opts.vehicles * opts.offlineShare)).map((v) => v.vin)
  const scheduleScenario = (durationMs: number): void => {
    if (opts.scenario === 'reconnect-storm') {
      const every = Math.max(1000, durationMs / 3)
      for (let t = every; t < durationMs; t += every) timers.push(setTimeout(() => tell({ type: 'storm' }), t))
    }
    if (opts.scenario === 'offline-fleet') {
      timers.push(setTimeout(() => tell({ type: 'offline', vins: offlineVins }), durationMs * 0.2))
      timers.push(setTimeout(() => tell({ type: 'online', vins: offlineVins }), durationMs * 0.6))
    }
  }
  const going = (): boolean => failures.length === 0 && hooks.shouldStop?.() !== true
  // Waits for the certificates, then for every vehicle to connect (or the connect ramp to be
  // over); then starts the clock, the held uplinks, the downlinks and the scenario, so that
  // downlink latency measures the gateway, not the ramp.
  const connectFleet = async (): Promise<void> => {
    while (readyWorkers < workerCount && going()) await new Promise((resolve) => setTimeout(resolve, 50))
    const rampStart = Date.now()
    const rampMs = opts.vehicles / opts.connectRatePerSecond * 1000 + (opts.uplinksAfterConnect ? 60_000 : 5000)
    while (Date.now() - rampStart < rampMs && sum().connected < opts.vehicles && going()) {
      await new Promise((resolve) => setTimeout(resolve, 50))
    }
    loadStart = Date.now()
    if (!going()) return
    if (opts.uplinksAfterConnect) tell({ type: 'start-uplinks' })
    if (withBackend) backend.start(opts.downlinkRate, multiplier)
    scheduleScenario(opts.durationMs)
  }

  const progress = (): Progress => {
    const uplink = hists.uplink
    return {
      elapsedSeconds: (Date.now() - runStart) / 1000,
      target: opts.vehicles,
      counters: sum(),
      downlinks: { posted: backend.sent.size, received: backend.receiptHist.totalCount, delivered: backend.delivered, acknowledged: backend.acknowledged, postFailed: backend.postFailures },
      errors: { ...errors, ...backend.errors },
      latencyMs: { uplinkP50: uplink.getValueAtPercentile(50) / 1000, uplinkP99: uplink.getValueAtPercentile(99) / 1000, connectP99: hists.connect.getValueAtPercentile(99) / 1000 }
    }
  }
  const progressTimer = setInterval(() => hooks.onProgress?.(progress()), 500)

  try {
    await connectFleet()
    while (Date.now() - loadStart < opts.durationMs && budgetsReached < workerCount && failures.length === 0 && hooks.shouldStop?.() !== true) {
      await new Promise((resolve) => setTimeout(resolve, 100))
    }
    if (failures.length > 0) throw new Error(`a fleet worker failed: ${failures.join('; ')}`)
    for (const t of timers) clearTimeout(t)
    backend.stop()
    tell({ type: 'stop-uplinks' })
    await backend.idle(10_000)
    // Each worker waits until its connected vehicles got every downlink sent to them and answered it.
    const workerOf = new Map<string, ChildProcess>()
    slices.forEach((slice, i) => { for (const v of slice) workerOf.set(v.vin, workers[i] as ChildProcess) })
    for (const w of workers) {
      const expect = [...backend.sent.entries()].filter(([, s]) => workerOf.get(s.vin) === w).map(([id, s]): [string, string] => [s.vin, id])
      if (w.connected) w.send({ type: 'finish', drainMs: opts.ackDelayMs[1] + 30_000, expect } satisfies ToWorker)
    }
    while (finals.size < workers.length && workers.some((w) => w.exitCode === null)) await new Promise((resolve) => setTimeout(resolve, 50))
    if (finals.size < workers.length) failures.push(`${workers.length - finals.size} worker(s) ended without their final report`)
    if (failures.length > 0) throw new Error(`a fleet worker failed: ${failures.join('; ')}`)
    // Statuses committed at the very end reach the stream a moment later.
    await new Promise((resolve) => setTimeout(resolve, 500))
  } finally {
    clearInterval(progressTimer)
    for (const t of timers) clearTimeout(t)
    backend.close()
    for (const w of workers) if (w.exitCode === null) w.kill()
  }
  hooks.onProgress?.(progress())
  // Rates are over the load, not over the verification that follows.
  const durationSeconds = (Date.now() - loadStart) / 1000

  const allFinals = [...finals.values()].flat()
  const online = new Map(allFinals.map((v) => [v.vin, v.connected]))
  const answers = new Map(allFinals.flatMap((v) => v.answers))
  const verificationInput: VerificationInput = {
    apiUrl: opts.apiUrl,
    fromMs: startedAt,
    uplinks: Object.fromEntries(allFinals.filter((v) => v.acked.length > 0).map((v) => [v.vin, v.acked])),
    downlinks: [...backend.sent.entries()].map(([id, s]) => ({ id, vin: s.vin, vehicleOnline: online.get(s.vin) === true, answer: answers.get(id) ?? null })),
    feedAfter
  }
  let verification: VerificationResult | null = null
  if (opts.verify && withBackend) {
    await hooks.beforeVerify?.(verificationInput)
    verification = await verifyFleet(verificationInput, opts.apiKey)
  }
  hists.downlinkReceipt = backend.receiptHist
  hists.downlinkDelivered = backend.deliveredHist
  hists.downlinkAcknowledged = backend.acknowledgedHist
  const counters = sum()
  const cpu = process.cpuUsage(cpuStart)
  // The whole load generator: this process (backend) and the workers (vehicles).
  const cpuSeconds = (cpu.user + cpu.system) / 1e6 + workerCpuSeconds
  return {
    scenario: opts.scenario,
    vehicles: opts.vehicles,
    workers: workerCount,
    startedAt: new Date(startedAt).toISOString(),
    durationSeconds,
    certSeconds,
    registerSeconds,
    counters,
    rates: { uplinkAckedPerSecond: Math.round(counters.uplinkAcked / durationSeconds), downlinkPostedPerSecond: Math.round(backend.sent.size / durationSeconds) },
    downlinks: { posted: backend.sent.size, postFailed: backend.postFailures, retried: backend.retries, received: backend.receiptHist.totalCount, delivered: backend.delivered, acknowledged: backend.acknowledged },
    errors: { ...errors, ...backend.errors },
    latencyMs: Object.fromEntries(HISTOGRAMS.map((h) => [h, percentiles(hists[h])])) as Record<HistogramName, Percentiles>,
    loadGenerator: { cpuSeconds, cpuPercentOfOneCore: Math.round(cpuSeconds / durationSeconds * 100) },
    verification,
    verificationInput
  }
}
