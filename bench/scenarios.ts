import { defaultFleetOptions, fleetVin, marketFor, runFleet } from '../simulators/index.ts'
import { cpuColumns, cpuMark, cpuSpent, fixed, fleetOptions, measureUplinks, type CpuMark, type Row } from './bench-row.ts'
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
  /** R1–R3: registered offline vehicles, seconds per scenario, R2's offered rate. */
  restVehicles: number
  restSeconds: number
  restRate: number
}

// C1 connects 2,000 vehicles as issue #14's goal table counts them (10,000 before).
export const FULL: Sizes = { seconds: 45, u1Vehicles: 2000, u2Rate: 10_000, u2Vehicles: 2000, c1Vehicles: 2000, d1Rate: 1000, d1Vehicles: 2000, o1Vehicles: 10_000, restVehicles: 2000, restSeconds: 30, restRate: 1000 }
export const QUICK: Sizes = { seconds: 15, u1Vehicles: 300, u2Rate: 3000, u2Vehicles: 300, c1Vehicles: 2000, d1Rate: 300, d1Vehicles: 300, o1Vehicles: 1000, restVehicles: 300, restSeconds: 10, restRate: 1000 }

/** The production peak: 10 million messages an hour. */
const PEAK_RATE = 2800

const errorText = (errors: Record<string, number>): string => {
  const list = Object.entries(errors).map(([code, n]) => `${code} × ${n}`)
  return list.length === 0 ? '' : ` (${list.join(', ')})`
}

/** U1: every vehicle keeps one uplink in flight, as fast as acknowledged; lean vehicles, so the fleet costs little per message. */
export async function u1 (target: Target, certDir: string, size: Sizes): Promise<Row> {
  const { row } = await measureUplinks('U1', target, fleetOptions(target, certDir, {
    vehicles: size.u1Vehicles, uplinkRatePerVehicle: Number.POSITIVE_INFINITY, lean: true, firstVehicle: 100_000
  }), size.seconds * 1000, target.name.startsWith('vgw') ? '≥ 0.75 × bare Aedes mTLS; gateway ≤ 90 µs, PostgreSQL ≤ 20 µs per uplink' : 'peer')
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

/** C1: vehicles (mqtt.js, subscribed to their down topic) connect at up to 2,000/s and stay idle; against vgw and bare Aedes over mTLS. */
export async function c1 (target: Target, certDir: string, size: Sizes): Promise<Row> {
  const before = usage(target.pids().slice(0, 1)).rssMiB
  let first: CpuMark = cpuMark(target)
  let all: CpuMark | null = null
  let connectedAtEnd = 0
  // The run's clock starts before the workers issue certificates (cached in the cert directory
  // after a first run), so it is long, and ends 5 s after the last vehicle connected. The
  // window measured runs from the last progress tick before the first CONNECT to all connected.
  const report = await runFleet(fleetOptions(target, certDir, { vehicles: size.c1Vehicles, durationMs: 240_000, uplinkRatePerVehicle: 0, firstVehicle: 300_000 }), {
    onProgress: (p) => {
      if (p.counters.connects === 0) first = cpuMark(target)
      if (all === null && p.counters.connected >= size.c1Vehicles) {
        all = cpuMark(target)
        connectedAtEnd = p.counters.connected
      }
    },
    shouldStop: () => all !== null && Date.now() - all.at > 5000
  })
  const after = usage(target.pids().slice(0, 1)).rssMiB
  const perConnection = Math.round((after - before) * 1024 / Math.max(1, report.counters.connected))
  const end = all as CpuMark | null
  const cpu = end === null ? null : cpuSpent(first, end, connectedAtEnd)
  return {
    scenario: 'C1',
    target: target.name,
    unit: 'connect (CONNACK)',
    msgPerSecond: cpu === null ? null : Math.round(connectedAtEnd / cpu.seconds),
    offeredPerSecond: 2000,
    p50: report.latencyMs.connect.p50,
    p99: report.latencyMs.connect.p99,
    p999: report.latencyMs.connect.p999,
    ...(cpu === null ? { brokerCpuPercent: null } : cpuColumns(cpu)),
    brokerRssMiB: after,
    loadGeneratorCpuPercent: cpu?.loadGeneratorCpuPercent ?? report.loadGenerator.cpuPercentOfOneCore,
    ...(target.name.startsWith('vgw') ? { versus: { scenario: 'C1', target: 'bare Aedes, mTLS' } } : {}),
    goal: target.name.startsWith('vgw') ? '≥ 0.8 × bare Aedes mTLS; ≤ 64 KB per connection' : 'peer',
    note: `${report.counters.connected} of ${size.c1Vehicles} connected${cpu === null ? ' (not all by the end of the run)' : ` ${cpu.seconds.toFixed(1)} s after the first connect attempt`} (certificates ready before: ${report.certSeconds.toFixed(1)} s; ${report.counters.connectFailures} attempts retried); RSS ${before} → ${after} MiB = ${perConnection} KB per connection; latencies are CONNECT→CONNACK; msg/s is vehicles connected ÷ that time`
  }
}

/** D1: the backend sends through REST to connected vehicles; latency POST → `delivered` on the stream. */
export async function d1 (vgw: VgwTarget, certDir: string, size: Sizes): Promise<Row> {
  // Sends start once the fleet is connected; the run ends `seconds` after the first.
  let sendingSince: CpuMark | null = null
  const report = await runFleet(fleetOptions(vgw, certDir, {
    apiUrl: vgw.apiUrl, apiKey: vgw.apiKey, vehicles: size.d1Vehicles, durationMs: size.seconds * 1000 + 180_000, uplinkRatePerVehicle: 0.01,
    downlinkRate: size.d1Rate, ackDelayMs: [10, 50], firstVehicle: 500_000
  }), {
    onProgress: (p) => { if (sendingSince === null && p.downlinks.posted > 0) sendingSince = cpuMark(vgw) },
    shouldStop: () => sendingSince !== null && Date.now() - sendingSince.at >= size.seconds * 1000
  })
  // CPU from the first POST to the end of the run, which waits for what was sent to be delivered and answered.
  const since = sendingSince as CpuMark | null
  const end = cpuMark(vgw)
  // Per send answered 202, the delivery of those delivered included: per delivered downlink
  // would charge a backlog's sends to the few delivered before the end.
  const cpu = since === null ? null : cpuSpent(since, end, report.downlinks.posted)
  const perDelivered = since === null ? null : cpuSpent(since, end, report.downlinks.delivered)
  const sentPerSecond = Math.round((report.downlinks.posted + report.downlinks.postFailed) / size.seconds)
  const short = sentPerSecond < size.d1Rate * 0.9 ? `; the backend (in the harness process) sent only ${sentPerSecond}/s of the ${size.d1Rate}/s asked: the load generator limits this figure` : ''
  return {
    scenario: 'D1',
    target: vgw.name,
    unit: 'REST send answered 202 (with its delivery, where delivered)',
    msgPerSecond: Math.round(report.downlinks.posted / size.seconds),
    offeredPerSecond: size.d1Rate,
    p50: report.latencyMs.downlinkDelivered.p50,
    p99: report.latencyMs.downlinkDelivered.p99,
    p999: report.latencyMs.downlinkDelivered.p999,
    ...(cpu === null ? { brokerCpuPercent: null } : cpuColumns(cpu)),
    brokerRssMiB: usage(vgw.pids().slice(0, 1)).rssMiB,
    loadGeneratorCpuPercent: cpu?.loadGeneratorCpuPercent ?? report.loadGenerator.cpuPercentOfOneCore,
    goal: 'p99 POST→delivered ≤ 250 ms',
    note: `POST → delivered; msg/s: sends answered 202 over the ${size.seconds} s of sending, which start once the fleet is connected; ${report.downlinks.delivered} of ${report.downlinks.posted} delivered, ${report.downlinks.postFailed} POST failed${errorText(report.errors)}; POST → vehicle p99 ${fixed(report.latencyMs.downlinkReceipt.p99)} ms; CPU from the first POST to the end of the run (the drain included), per send answered (per delivered downlink: gateway ${perDelivered?.gatewayUsPerMessage ?? '–'} µs, PostgreSQL ${perDelivered?.postgresUsPerMessage ?? '–'} µs); the backend retries a 503 up to 5 times with the same Idempotency-Key${short}`
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
  let started = cpuMark(vgw)
  let doneAt: CpuMark | null = null
  const report = await runFleet(fleetOptions(vgw, certDir, { vehicles: size.o1Vehicles, durationMs: 240_000, uplinkRatePerVehicle: 0, ackDelayMs: [0, 10], firstVehicle: 600_000 }), {
    onProgress: (p) => {
      if (p.counters.connects === 0) started = cpuMark(vgw)
      if (doneAt === null && p.counters.downlinkReceived >= total) doneAt = cpuMark(vgw)
    },
    shouldStop: () => doneAt !== null
  })
  const done = doneAt as CpuMark | null
  const cpu = done === null ? null : cpuSpent(started, done, total)
  return {
    scenario: 'O1',
    target: vgw.name,
    unit: 'delivered queued downlink (the vehicles\' connects included)',
    msgPerSecond: cpu === null ? null : Math.round(total / cpu.seconds),
    p50: null,
    p99: null,
    p999: null,
    ...(cpu === null ? { brokerCpuPercent: null } : cpuColumns(cpu)),
    brokerRssMiB: usage(vgw.pids().slice(0, 1)).rssMiB,
    loadGeneratorCpuPercent: cpu?.loadGeneratorCpuPercent ?? report.loadGenerator.cpuPercentOfOneCore,
    goal: 'last delivered ≤ 60 s after the first connect',
    note: `${total} messages queued for ${size.o1Vehicles} offline vehicles in ${queueSeconds.toFixed(1)} s; ${report.counters.downlinkReceived} received${cpu === null ? ' by the end of the run (not all)' : `, the last ${cpu.seconds.toFixed(1)} s after the first connect attempt`} (certificates ready before: ${report.certSeconds.toFixed(1)} s)`
  }
}
