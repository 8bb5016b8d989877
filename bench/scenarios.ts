import { defaultFleetOptions, fleetVin, marketFor, runFleet } from '../simulators/index.ts'
import { fixed, fleetOptions, measureUplinks, type Row } from './bench-row.ts'
import { usage, type Target, type VgwTarget } from './targets.ts'

export interface Sizes {
  seconds: number
  u1Vehicles: number
  u2Rate: number
  u2Vehicles: number
  c1Vehicles: number
  d1Rate: number
  d1Vehicles: number
  o1Vehicles: number
}

export const FULL: Sizes = { seconds: 45, u1Vehicles: 2000, u2Rate: 10_000, u2Vehicles: 2000, c1Vehicles: 10_000, d1Rate: 1000, d1Vehicles: 2000, o1Vehicles: 10_000 }
export const QUICK: Sizes = { seconds: 15, u1Vehicles: 300, u2Rate: 3000, u2Vehicles: 300, c1Vehicles: 2000, d1Rate: 300, d1Vehicles: 300, o1Vehicles: 1000 }

/** The production peak: 10 million messages an hour. */
const PEAK_RATE = 2800

/** U1: every vehicle keeps one uplink in flight, as fast as acknowledged; lean vehicles, so the fleet costs little per message. */
export async function u1 (target: Target, certDir: string, size: Sizes): Promise<Row> {
  const { row } = await measureUplinks('U1', target, fleetOptions(target, certDir, {
    vehicles: size.u1Vehicles, uplinkRatePerVehicle: Number.POSITIVE_INFINITY, lean: true, firstVehicle: 100_000
  }), size.seconds * 1000, target.name.startsWith('vgw') ? '≥ 0.9 × bare Aedes mTLS and ≥ 20,000' : 'peer')
  return row
}

/** U2: a fixed offered rate (Poisson per vehicle, up to 10 in flight); the latency is PUBLISH→PUBACK. */
export async function u2 (vgw: Target, certDir: string, size: Sizes, rate: number): Promise<Row> {
  const { row } = await measureUplinks(rate === PEAK_RATE ? 'U2 (peak)' : 'U2', vgw, fleetOptions(vgw, certDir, {
    vehicles: size.u2Vehicles, uplinkRatePerVehicle: rate / size.u2Vehicles, inFlight: 10, lean: true, firstVehicle: 200_000
  }), size.seconds * 1000, 'p99 ≤ 50 ms')
  return row
}

export const u2Rates = (size: Sizes): number[] => [size.u2Rate, PEAK_RATE]

/** C1: vehicles (mqtt.js, subscribed to their down topic) connect at 2,000/s and stay idle. */
export async function c1 (vgw: Target, certDir: string, size: Sizes): Promise<Row> {
  const before = usage(vgw.pids().slice(0, 1)).rssMiB
  let allAt: number | null = null
  let started = Date.now()
  // The run's clock starts before the workers issue certificates (13–33 s for 10,000 new ones
  // on 2 cores), so it is long, and ends 5 s after the last vehicle connected.
  const report = await runFleet(fleetOptions(vgw, certDir, { vehicles: size.c1Vehicles, durationMs: 240_000, uplinkRatePerVehicle: 0, firstVehicle: 300_000 }), {
    onProgress: (p) => {
      if (p.counters.connects === 0) started = Date.now()
      if (allAt === null && p.counters.connected >= size.c1Vehicles) allAt = Date.now()
    },
    shouldStop: () => allAt !== null && Date.now() - allAt > 5000
  })
  const after = usage(vgw.pids().slice(0, 1)).rssMiB
  const perConnection = Math.round((after - before) * 1024 / Math.max(1, report.counters.connected))
  const at = allAt as number | null
  return {
    scenario: 'C1',
    target: vgw.name,
    msgPerSecond: null,
    p50: report.latencyMs.connect.p50,
    p99: report.latencyMs.connect.p99,
    p999: report.latencyMs.connect.p999,
    brokerCpuPercent: null,
    brokerRssMiB: after,
    loadGeneratorCpuPercent: report.loadGenerator.cpuPercentOfOneCore,
    goal: '≤ 64 KB per connection; all connected ≤ 20 s',
    note: `${report.counters.connected} of ${size.c1Vehicles} connected${at === null ? ' (not all by the end of the run)' : ` ${((at - started) / 1000).toFixed(1)} s after the first connect attempt`} (certificates issued before: ${report.certSeconds.toFixed(1)} s; ${report.counters.connectFailures} attempts retried); gateway RSS ${before} → ${after} MiB = ${perConnection} KB per connection; latencies are CONNECT→CONNACK`
  }
}

/** D1: the backend sends through REST to connected vehicles; latency POST → `delivered` on the stream. */
export async function d1 (vgw: VgwTarget, certDir: string, size: Sizes): Promise<Row> {
  // Sends start once the fleet is connected; the run ends `seconds` after the first.
  let sendingSince: number | null = null
  const report = await runFleet(fleetOptions(vgw, certDir, {
    apiUrl: vgw.apiUrl, apiKey: vgw.apiKey, vehicles: size.d1Vehicles, durationMs: size.seconds * 1000 + 180_000, uplinkRatePerVehicle: 0.01,
    downlinkRate: size.d1Rate, ackDelayMs: [10, 50], firstVehicle: 500_000
  }), {
    onProgress: (p) => { if (sendingSince === null && p.downlinks.posted > 0) sendingSince = Date.now() },
    shouldStop: () => sendingSince !== null && Date.now() - sendingSince >= size.seconds * 1000
  })
  return {
    scenario: 'D1',
    target: vgw.name,
    msgPerSecond: Math.round(report.downlinks.posted / size.seconds),
    offeredPerSecond: size.d1Rate,
    p50: report.latencyMs.downlinkDelivered.p50,
    p99: report.latencyMs.downlinkDelivered.p99,
    p999: report.latencyMs.downlinkDelivered.p999,
    brokerCpuPercent: null,
    brokerRssMiB: usage(vgw.pids().slice(0, 1)).rssMiB,
    loadGeneratorCpuPercent: report.loadGenerator.cpuPercentOfOneCore,
    goal: 'p99 ≤ 100 ms',
    note: `POST → delivered; msg/s: sends answered 202 over the ${size.seconds} s of sending, which start once the fleet is connected; ${report.downlinks.delivered} of ${report.downlinks.posted} delivered, ${report.downlinks.postFailed} POST failed; POST → vehicle p99 ${fixed(report.latencyMs.downlinkReceipt.p99)} ms`
  }
}

/** O1: ten campaign messages each for vehicles that are offline, which then all connect. */
export async function o1 (vgw: VgwTarget, certDir: string, size: Sizes): Promise<Row> {
  const markets = defaultFleetOptions().markets
  const vins = Array.from({ length: size.o1Vehicles }, (_, i) => fleetVin(marketFor(i, size.o1Vehicles, markets), 600_000 + i))
  const headers = { authorization: `Bearer ${vgw.apiKey}`, 'content-type': 'application/json' }
  let next = 0
  await Promise.all(Array.from({ length: 32 }, async () => {
    while (next < vins.length) {
      const i = next++
      const res = await fetch(`${vgw.apiUrl}/v1/vehicles/${vins[i] as string}`, { method: 'PUT', headers, body: JSON.stringify({ market: marketFor(i, size.o1Vehicles, markets) }) })
      if (!res.ok) throw new Error(`registering a vehicle: HTTP ${res.status} ${await res.text()}`)
    }
  }))
  const queuedAt = Date.now()
  for (let k = 0; k < 10; k++) {
    const res = await fetch(`${vgw.apiUrl}/v1/campaigns`, { method: 'POST', headers, body: JSON.stringify({ vins, type: 'service.reminder', payload: `reminder ${k}` }) })
    if (!res.ok) throw new Error(`queueing a campaign: HTTP ${res.status} ${await res.text()}`)
  }
  const queueSeconds = (Date.now() - queuedAt) / 1000
  const total = size.o1Vehicles * 10
  let started = Date.now()
  let doneAt: number | null = null
  const report = await runFleet(fleetOptions(vgw, certDir, { vehicles: size.o1Vehicles, durationMs: 240_000, uplinkRatePerVehicle: 0, ackDelayMs: [0, 10], firstVehicle: 600_000 }), {
    onProgress: (p) => {
      if (p.counters.connects === 0) started = Date.now()
      if (doneAt === null && p.counters.downlinkReceived >= total) doneAt = Date.now()
    },
    shouldStop: () => doneAt !== null
  })
  const done = doneAt as number | null
  return {
    scenario: 'O1',
    target: vgw.name,
    msgPerSecond: done === null ? null : Math.round(total / ((done - started) / 1000)),
    p50: null,
    p99: null,
    p999: null,
    brokerCpuPercent: null,
    brokerRssMiB: usage(vgw.pids().slice(0, 1)).rssMiB,
    loadGeneratorCpuPercent: report.loadGenerator.cpuPercentOfOneCore,
    goal: 'all delivered ≤ 30 s',
    note: `${total} messages queued for ${size.o1Vehicles} offline vehicles in ${queueSeconds.toFixed(1)} s; ${report.counters.downlinkReceived} received${done === null ? ' by the end of the run (not all)' : `, the last ${((done - started) / 1000).toFixed(1)} s after the first connect attempt`} (certificates issued before: ${report.certSeconds.toFixed(1)} s)`
  }
}
