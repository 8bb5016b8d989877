import { runFleet } from '../simulators/index.ts'
import { fleetOptions, type Row } from './bench-row.ts'
import { usage, type VgwTarget } from './targets.ts'

export interface SoakResult {
  row: Row
  /** Gateway RSS every 10 s: [seconds since the fleet started, MiB]. */
  rss: Array<[number, number]>
}

const SOAK_RATE = 5000
const SOAK_VEHICLES = 1000

/**
 * M1: `durationMs` at 5,000 uplinks/s offered by 1,000 lean vehicles (Poisson, up to 10
 * in flight) with churn (each second 1% of them drop their socket or stall), registered
 * through the API so that --verify can check every acknowledged uplink afterwards.
 * Flat memory: the gateway's mean RSS over the last third of the run is within 5% of
 * its mean over the middle third (the first third is warm-up: pools, caches, JIT).
 */
export async function m1 (vgw: VgwTarget, certDir: string, durationMs: number): Promise<SoakResult> {
  const rss: Array<[number, number]> = []
  const started = Date.now()
  const sampler = setInterval(() => rss.push([Math.round((Date.now() - started) / 1000), usage(vgw.pids().slice(0, 1)).rssMiB]), 10_000)
  const cpuBefore = usage(vgw.pids()).cpuSeconds
  let report
  try {
    report = await runFleet(fleetOptions(vgw, certDir, {
      apiUrl: vgw.apiUrl,
      apiKey: vgw.apiKey,
      vehicles: SOAK_VEHICLES,
      durationMs,
      uplinkRatePerVehicle: SOAK_RATE / SOAK_VEHICLES,
      inFlight: 10,
      lean: true,
      uplinksAfterConnect: true,
      scenario: 'flaky-network',
      flakyShare: 0.01,
      verify: true,
      firstVehicle: 800_000
    }))
  } finally {
    clearInterval(sampler)
  }
  const seconds = report.durationSeconds
  // Thirds of the load itself; the samples taken while --verify reads the log back are kept apart.
  const loadSeconds = durationMs / 1000
  const third = (k: number): number[] => rss.filter(([t]) => t >= loadSeconds * k / 3 && t < loadSeconds * (k + 1) / 3).map(([, m]) => m)
  const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length)
  const middle = mean(third(1))
  const last = mean(third(2))
  const growth = middle === 0 ? 0 : (last - middle) / middle
  const errors = Object.values(report.errors).reduce((a, b) => a + b, 0)
  const mismatches = report.verification?.mismatches.length ?? -1
  return {
    rss,
    row: {
      scenario: 'M1',
      target: vgw.name,
      msgPerSecond: report.rates.uplinkAckedPerSecond,
      offeredPerSecond: SOAK_RATE,
      p50: report.latencyMs.uplink.p50,
      p99: report.latencyMs.uplink.p99,
      p999: report.latencyMs.uplink.p999,
      brokerCpuPercent: Math.round((usage(vgw.pids()).cpuSeconds - cpuBefore) / seconds * 100),
      brokerRssMiB: usage(vgw.pids().slice(0, 1)).rssMiB,
      loadGeneratorCpuPercent: report.loadGenerator.cpuPercentOfOneCore,
      goal: 'RSS flat, 0 errors, --verify clean',
      note: `${(seconds / 60).toFixed(1)} min of load, ${report.counters.disconnects} sockets dropped and reconnected; gateway RSS mean ${middle.toFixed(0)} MiB over the middle third, ${last.toFixed(0)} MiB over the last (${(growth * 100).toFixed(1)}%: ${Math.abs(growth) <= 0.05 ? 'flat' : 'NOT flat'}); ${errors} errors${errors > 0 ? ` ${JSON.stringify(report.errors)}` : ''}; --verify ${report.verification?.ok === true ? `clean over ${report.verification.uplinksChecked} uplinks` : `FAILED with ${mismatches} mismatches`}`
    }
  }
}
