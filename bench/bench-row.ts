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
  /** What one message of this row is (uplink, connect, REST send, delivered downlink, INSERT). */
  unit?: string
  /** CPU per message of the gateway process (peers: the broker process; the PostgreSQL probe: its client). */
  gatewayUsPerMessage?: number | null
  /** CPU per message of PostgreSQL: its postmaster and all its children (vgw and the PostgreSQL probe). */
  postgresUsPerMessage?: number | null
  /** The whole machine's busy CPU over the same window, % of one core: the broker, PostgreSQL, the load generator and anything else. */
  machineCpuPercent?: number | null
  /** The row this one is compared with (msg/s ÷ that row's msg/s), by scenario and target name prefix. */
  versus?: { scenario: string, target: string }
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

/** CPU seconds so far of a target's broker process, of its PostgreSQL (postmaster and children) and of the whole machine, at a moment. */
export interface CpuMark { at: number, gateway: number, postgres: number | null, machine: number | null, loadGenerator: number }

/** This process's children (fleet workers, and the targets it started), from /proc. */
function childPids (): number[] {
  const children: number[] = []
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue
    try {
      if (Number(/PPid:\s+(\d+)/.exec(fs.readFileSync(`/proc/${entry}/status`, 'utf8'))?.[1]) === process.pid) children.push(Number(entry))
    } catch {
      // gone
    }
  }
  return children
}

/** Busy CPU seconds of the whole machine (all cores; /proc/stat, Linux), or null elsewhere. */
function machineBusySeconds (): number | null {
  try {
    const fields = (fs.readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '').trim().split(/\s+/).slice(1).map(Number)
    // user nice system idle iowait irq softirq steal: busy is all but idle and iowait
    const [user = 0, nice = 0, system = 0, , , irq = 0, softirq = 0, steal = 0] = fields
    return (user + nice + system + irq + softirq + steal) / 100
  } catch {
    return null
  }
}

export function cpuMark (target: Target): CpuMark {
  const pids = target.pids()
  // The load generator: this process (the REST backend, the HTTP client) and its children but the target's (the fleet's workers).
  const generator = [process.pid, ...childPids().filter((pid) => !pids.includes(pid))]
  return {
    at: Date.now(),
    gateway: usage(pids.slice(0, 1)).cpuSeconds,
    postgres: pids.length < 2 ? null : usage(pids.slice(1)).cpuSeconds,
    machine: machineBusySeconds(),
    loadGenerator: usage(generator).cpuSeconds
  }
}

export interface CpuSpent {
  seconds: number
  /** Percent of one core over the window: broker process plus PostgreSQL, and PostgreSQL's share. */
  brokerCpuPercent: number
  postgresCpuPercent: number | null
  gatewayUsPerMessage: number | null
  postgresUsPerMessage: number | null
  /** The whole machine's busy CPU over the window, % of one core (its cores × 100 is full). */
  machineCpuPercent: number | null
  /** This process and its children but the target: the load generator, % of one core. */
  loadGeneratorCpuPercent: number
}

/** CPU between two marks, per second and per message (null per message when no message was counted). */
export function cpuSpent (from: CpuMark, to: CpuMark, messages: number): CpuSpent {
  const seconds = Math.max(0.001, (to.at - from.at) / 1000)
  const gateway = to.gateway - from.gateway
  const postgres = from.postgres === null || to.postgres === null ? null : to.postgres - from.postgres
  const per = (cpu: number | null): number | null => cpu === null || messages <= 0 ? null : Math.round(cpu / messages * 1e6)
  return {
    seconds,
    brokerCpuPercent: Math.round((gateway + (postgres ?? 0)) / seconds * 100),
    postgresCpuPercent: postgres === null ? null : Math.round(postgres / seconds * 100),
    gatewayUsPerMessage: per(gateway),
    postgresUsPerMessage: per(postgres),
    machineCpuPercent: from.machine === null || to.machine === null ? null : Math.round((to.machine - from.machine) / seconds * 100),
    loadGeneratorCpuPercent: Math.round((to.loadGenerator - from.loadGenerator) / seconds * 100)
  }
}

/** The Row fields that come from a CpuSpent. */
export const cpuColumns = (c: CpuSpent): Pick<Row, 'brokerCpuPercent' | 'postgresCpuPercent' | 'gatewayUsPerMessage' | 'postgresUsPerMessage' | 'machineCpuPercent'> =>
  ({ brokerCpuPercent: c.brokerCpuPercent, postgresCpuPercent: c.postgresCpuPercent, gatewayUsPerMessage: c.gatewayUsPerMessage, postgresUsPerMessage: c.postgresUsPerMessage, machineCpuPercent: c.machineCpuPercent })

interface Sample { acked: number, sent: number, cpu: CpuMark }

function sample (target: Target, acked: number, sent: number): Sample {
  return { acked, sent, cpu: cpuMark(target) }
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
    shouldStop: () => steady !== null && Date.now() - steady.cpu.at >= steadyMs
  })
  const end = sample(target, report.counters.uplinkAcked, report.counters.uplinkSent)
  const s = steady as Sample | null
  const cpu = s === null ? null : cpuSpent(s.cpu, end.cpu, end.acked - s.acked)
  const rate = (a: number, b: number): number => Math.round((a - b) / (cpu?.seconds ?? report.durationSeconds))
  return {
    report,
    row: {
      scenario,
      target: target.name,
      unit: 'acknowledged uplink',
      msgPerSecond: s === null ? null : rate(end.acked, s.acked),
      ...(s === null ? {} : { offeredPerSecond: rate(end.sent, s.sent) }),
      p50: report.latencyMs.uplink.p50,
      p99: report.latencyMs.uplink.p99,
      p999: report.latencyMs.uplink.p999,
      ...(cpu === null ? { brokerCpuPercent: null } : cpuColumns(cpu)),
      brokerRssMiB: usage(target.pids().slice(0, 1)).rssMiB,
      loadGeneratorCpuPercent: cpu?.loadGeneratorCpuPercent ?? report.loadGenerator.cpuPercentOfOneCore,
      goal,
      ...(s === null ? { note: `only ${report.counters.connected} of ${opts.vehicles} connected` } : {})
    }
  }
}

export interface Machine {
  cpu: string
  cores: number
  memoryGiB: number
  /** The harness's Node, which also runs the gateway and the fleet (spawned with process.execPath). */
  node: string
  /** Its OpenSSL: the TLS handshake's cost differs between Node 20 (3.0) and 24 (3.5). */
  openssl: string
  postgres: string
}

/** The server's version, asked while vgw runs; 'unknown' when it cannot be asked. */
export async function postgresVersion (databaseUrl: string | null): Promise<string> {
  if (databaseUrl === null) return 'unknown'
  const c = new pg.Client({ connectionString: databaseUrl })
  try {
    await c.connect()
    return (await c.query<{ v: string }>("SELECT current_setting('server_version') AS v")).rows[0]?.v ?? 'unknown'
  } catch {
    return 'unknown'
  } finally {
    await c.end().catch(() => undefined)
  }
}

export function machineDetails (postgres: string): Machine {
  return { cpu: os.cpus()[0]?.model ?? 'unknown', cores: os.availableParallelism(), memoryGiB: Math.round(os.totalmem() / 2 ** 30), node: process.version, openssl: process.versions.openssl, postgres }
}

/** The row a row's ratio is taken against: its own `versus`, or for U1 the bare Aedes over mTLS of the same run. */
function reference (rows: Row[], r: Row): Row | undefined {
  const versus = r.versus ?? (r.scenario === 'U1' ? { scenario: 'U1', target: 'bare Aedes, mTLS' } : undefined)
  if (versus === undefined) return undefined
  return rows.find((o) => o.scenario === versus.scenario && o.target.startsWith(versus.target))
}

function ratioText (rows: Row[], r: Row): string {
  const ref = reference(rows, r)
  if (ref === undefined || r.msgPerSecond === null || ref.msgPerSecond === null || ref.msgPerSecond === 0) return '–'
  return `${(r.msgPerSecond / ref.msgPerSecond).toFixed(2)}× ${ref.scenario === r.scenario ? '' : `${ref.scenario} `}${ref.target}`
}

export function markdownTable (rows: Row[]): string {
  return [
    '| scenario | target | one message is | msg/s | offered/s | p50 ms | p99 ms | p99.9 ms | gateway (broker) µs CPU per message | PostgreSQL µs CPU per message | broker CPU % (PostgreSQL) | machine CPU % | broker RSS MiB | load generator CPU % | vs | goal | note |',
    '|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|',
    ...rows.map((r) => {
      const cpu = r.brokerCpuPercent === null ? '–' : `${r.brokerCpuPercent}${r.postgresCpuPercent !== undefined && r.postgresCpuPercent !== null ? ` (${r.postgresCpuPercent})` : ''}`
      return `| ${r.scenario} | ${r.target} | ${r.unit ?? '–'} | ${r.msgPerSecond ?? '–'} | ${r.offeredPerSecond ?? '–'} | ${fixed(r.p50)} | ${fixed(r.p99)} | ${fixed(r.p999)} | ${r.gatewayUsPerMessage ?? '–'} | ${r.postgresUsPerMessage ?? '–'} | ${cpu} | ${r.machineCpuPercent ?? '–'} | ${r.brokerRssMiB ?? '–'} | ${r.loadGeneratorCpuPercent ?? '–'} | ${ratioText(rows, r)} | ${r.goal} | ${r.note ?? ''} |`
    })
  ].join('\n')
}

/**
 * Says where the machine is what bounds a figure: its cores were at least 90 % busy over the
 * window, so the broker could not get more CPU than it had; names who else had them (the load
 * generator and any other process, such as other work sharing the machine).
 */
export function withLimitNote (r: Row, cores: number): Row {
  const machine = r.machineCpuPercent
  if (machine === null || machine === undefined || machine < cores * 90) return r
  const broker = r.brokerCpuPercent ?? 0
  const generator = r.loadGeneratorCpuPercent ?? 0
  const other = Math.max(0, machine - broker - generator)
  const limit = `the machine's ${cores} cores were full (${machine} % of ${cores * 100} %: broker and PostgreSQL ${broker} %, load generator ${generator} %, other processes about ${other} %), so the machine, not the broker alone, bounds this figure`
  return { ...r, note: r.note === undefined || r.note === '' ? limit : `${r.note}; ${limit}` }
}

/** Replaces the block between `<!-- NAME:start -->` and `<!-- NAME:end -->` in a Markdown file, or appends it under a heading. */
export function writeDocBlock (file: string, name: string, heading: string, body: string): void {
  const text = fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : ''
  const block = `<!-- ${name}:start -->\n${body}\n<!-- ${name}:end -->`
  const pattern = new RegExp(`<!-- ${name}:start -->[\\s\\S]*<!-- ${name}:end -->`)
  fs.mkdirSync(path.dirname(file), { recursive: true })
  fs.writeFileSync(file, pattern.test(text) ? text.replace(pattern, block) : `${text}\n## ${heading}\n\n${block}\n`)
}
