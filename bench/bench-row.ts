import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import pg from 'pg'
import { defaultFleetOptions, runFleet, type FleetOptions, type FleetReport } from '../simulators/index.ts'
import { usage, type Target } from './targets.ts'

/** One line of the harness' table. */
export interface Row {
  scenario: string
  target: string
  msgPerSecond: number | null
  offeredPerSecond?: number
  p50: number | null
  p99: number | null
  p999: number | null
  /** The broker's processes (vgw: the gateway and its PostgreSQL), over the steady part. */
  brokerCpuPercent: number | null
  /** Of that, PostgreSQL's (vgw only). */
  postgresCpuPercent?: number | null
  /** The broker process alone (not PostgreSQL's shared memory). */
  brokerRssMiB: number | null
  loadGeneratorCpuPercent: number | null
  goal: string
  note?: string
}

export const fixed = (x: number | null | undefined, digits = 1): string => x === null || x === undefined ? '–' : x.toFixed(digits)

/** The fleet as every throughput scenario drives it: the benchmark's certificates, no backend unless asked. */
export function fleetOptions (target: Target, certDir: string, over: Partial<FleetOptions>): FleetOptions {
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

interface Sample { at: number, acked: number, sent: number, cpu: number, pgCpu: number }

function sample (target: Target, acked: number, sent: number): Sample {
  return { at: Date.now(), acked, sent, cpu: usage(target.pids()).cpuSeconds, pgCpu: usage(target.pids().slice(1)).cpuSeconds }
}

/**
 * Runs a fleet with uplinks held until every vehicle is connected and measures the steady
 * part: rates and CPU over `steadyMs` from the moment the last vehicle connected.
 */
export async function measureUplinks (scenario: string, target: Target, opts: FleetOptions, steadyMs: number, goal: string): Promise<{ row: Row, report: FleetReport }> {
  let steady: Sample | null = null
  // The cap leaves room for issuing certificates and connecting before the steady part.
  const report = await runFleet({ ...opts, durationMs: steadyMs + 180_000, uplinksAfterConnect: true }, {
    onProgress: (p) => {
      if (steady === null && p.counters.connected >= opts.vehicles) steady = sample(target, p.counters.uplinkAcked, p.counters.uplinkSent)
    },
    shouldStop: () => steady !== null && Date.now() - steady.at >= steadyMs
  })
  const end = sample(target, report.counters.uplinkAcked, report.counters.uplinkSent)
  const s = steady as Sample | null
  const seconds = s === null ? report.durationSeconds : (end.at - s.at) / 1000
  const rate = (a: number, b: number): number => Math.round((a - b) / seconds)
  return {
    report,
    row: {
      scenario,
      target: target.name,
      msgPerSecond: s === null ? null : rate(end.acked, s.acked),
      ...(s === null ? {} : { offeredPerSecond: rate(end.sent, s.sent) }),
      p50: report.latencyMs.uplink.p50,
      p99: report.latencyMs.uplink.p99,
      p999: report.latencyMs.uplink.p999,
      brokerCpuPercent: s === null ? null : Math.round((end.cpu - s.cpu) / seconds * 100),
      postgresCpuPercent: s === null || target.pids().length < 2 ? null : Math.round((end.pgCpu - s.pgCpu) / seconds * 100),
      brokerRssMiB: usage(target.pids().slice(0, 1)).rssMiB,
      loadGeneratorCpuPercent: report.loadGenerator.cpuPercentOfOneCore,
      goal,
      ...(s === null ? { note: `only ${report.counters.connected} of ${opts.vehicles} connected` } : {})
    }
  }
}

export interface Machine { cpu: string, cores: number, memoryGiB: number, node: string, postgres: string }

/** The server's version, asked while vgw runs; 'unknown' when it cannot be asked. */
export async function postgresVersion (databaseUrl: string | null): Promise<string> {
  if (databaseUrl === null) return 'unknown'
  const c = new pg.Client({ connectionString: databaseUrl })
  try {
    await c.connect()
    return (await c.query<{ v: string }>('SHOW server_version')).rows[0]?.v ?? 'unknown'
  } catch {
    return 'unknown'
  } finally {
    await c.end().catch(() => undefined)
  }
}

export function machineDetails (postgres: string): Machine {
  return { cpu: os.cpus()[0]?.model ?? 'unknown', cores: os.availableParallelism(), memoryGiB: Math.round(os.totalmem() / 2 ** 30), node: process.version, postgres }
}

export function markdownTable (rows: Row[]): string {
  const bare = rows.find((r) => r.scenario === 'U1' && r.target.startsWith('bare Aedes, mTLS'))?.msgPerSecond ?? null
  return [
    '| scenario | target | msg/s | offered/s | p50 ms | p99 ms | p99.9 ms | broker CPU % (PostgreSQL) | broker RSS MiB | load generator CPU % | vs bare Aedes mTLS | goal | note |',
    '|---|---|---|---|---|---|---|---|---|---|---|---|---|',
    ...rows.map((r) => {
      const ratio = r.scenario === 'U1' && r.msgPerSecond !== null && bare !== null ? `${(r.msgPerSecond / bare).toFixed(2)}×` : '–'
      const cpu = r.brokerCpuPercent === null ? '–' : `${r.brokerCpuPercent}${r.postgresCpuPercent !== undefined && r.postgresCpuPercent !== null ? ` (${r.postgresCpuPercent})` : ''}`
      return `| ${r.scenario} | ${r.target} | ${r.msgPerSecond ?? '–'} | ${r.offeredPerSecond ?? '–'} | ${fixed(r.p50)} | ${fixed(r.p99)} | ${fixed(r.p999)} | ${cpu} | ${r.brokerRssMiB ?? '–'} | ${r.loadGeneratorCpuPercent ?? '–'} | ${ratio} | ${r.goal} | ${r.note ?? ''} |`
    })
  ].join('\n')
}

/** Replaces the block between `<!-- NAME:start -->` and `<!-- NAME:end -->` in a Markdown file, or appends it under a heading. */
export function writeDocBlock (file: string, name: string, heading: string, body: string): void {
  const text = fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : ''
  const block = `<!-- ${name}:start -->\n${body}\n<!-- ${name}:end -->`
  const pattern = new RegExp(`<!-- ${name}:start -->[\\s\\S]*<!-- ${name}:end -->`)
  fs.mkdirSync(path.dirname(file), { recursive: true })
  fs.writeFileSync(file, pattern.test(text) ? text.replace(pattern, block) : `${text}\n## ${heading}\n\n${block}\n`)
}
