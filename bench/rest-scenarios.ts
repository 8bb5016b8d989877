// R1–R3: REST sends to registered vehicles that are offline (each send is committed as `queued`
// and waits), beside what the same PostgreSQL commits on its own from node-postgres.
import pg from 'pg'
import { defaultFleetOptions, fleetVin, marketFor } from '../simulators/index.ts'
import { cpuColumns, cpuMark, cpuSpent, type CpuMark, type CpuSpent, type Row } from './bench-row.ts'
import { closedLoop, openLoop, percentile, SendClient, type LoadTally } from './http-load.ts'
import { usage, type VgwTarget } from './targets.ts'

export interface RestSizes {
  /** Registered, never connected vehicles the sends go to. */
  vehicles: number
  seconds: number
  clients: number
  /** R2's offered rate. */
  rate: number
}

const WARMUP_MS = 3000
/**
 * Connections of the open-loop scenarios, at most: enough that an overload reaches the gateway
 * (which must shed it) instead of waiting in this process for a free connection (with 1,000, R3
 * queued 124,000 requests here and the gateway saw only 1,000 at a time), as Node's fetch, which
 * has no bound, would; under the usual limit of 20,000 open files on each side. What still waits
 * here counts in the latency, and the note says how many did.
 */
const OPEN_LOOP_CONNECTIONS = 8000
/** Above this share of one core, the HTTP client (one Node process) may be what limits a figure. */
const LOAD_GENERATOR_BOUND = 85

/** Registers the vehicles through the API, 32 at a time (as O1 does). */
async function registerOffline (vgw: VgwTarget, n: number, first: number): Promise<string[]> {
  const markets = defaultFleetOptions().markets
  const vins = Array.from({ length: n }, (_, i) => fleetVin(marketFor(i, n, markets), first + i))
  const headers = { authorization: `Bearer ${vgw.apiKey}`, 'content-type': 'application/json' }
  let next = 0
  await Promise.all(Array.from({ length: 32 }, async () => {
    while (next < vins.length) {
      const i = next++
      const res = await fetch(`${vgw.apiUrl}/v1/vehicles/${vins[i] as string}`, { method: 'PUT', headers, body: JSON.stringify({ market: marketFor(i, n, markets) }) })
      if (!res.ok) throw new Error(`registering a vehicle: HTTP ${res.status} ${await res.text()}`)
    }
  }))
  return vins
}

const ms = (x: number | null): number | null => x === null ? null : Math.round(x * 10) / 10

function statusText (t: LoadTally): string {
  const statuses = Object.entries(t.byStatus).map(([s, n]) => `${s} × ${n}`)
  const failed = Object.entries(t.failed).map(([c, n]) => `${c} × ${n}`)
  return `answers: ${statuses.join(', ') || 'none'}${failed.length > 0 ? `; no answer: ${failed.join(', ')}` : ''}`
}

const limitNote = (t: LoadTally): string => t.loadGeneratorCpuPercent >= LOAD_GENERATOR_BOUND
  ? `; the HTTP client (one Node process, ${t.loadGeneratorCpuPercent} % of a core) may be what limits this figure`
  : ''

/** A row for a REST window: rate of 202s, their latency, CPU per 202. */
function restRow (scenario: string, vgw: VgwTarget, t: LoadTally, cpu: CpuSpent, over: Partial<Row> & { goal: string }): Row {
  return {
    scenario,
    target: vgw.name,
    unit: 'REST send answered 202',
    msgPerSecond: Math.round(t.accepted / t.seconds),
    p50: ms(percentile(t.acceptedMs, 50)),
    p99: ms(percentile(t.acceptedMs, 99)),
    p999: ms(percentile(t.acceptedMs, 99.9)),
    ...cpuColumns(cpu),
    brokerRssMiB: usage(vgw.pids().slice(0, 1)).rssMiB,
    loadGeneratorCpuPercent: t.loadGeneratorCpuPercent,
    ...over
  }
}

/** Marks the target's CPU when a load window opens and closes. */
function cpuWindow (vgw: VgwTarget): { onOpen: () => void, onClose: () => void, spent: (messages: number) => CpuSpent } {
  let open: CpuMark = cpuMark(vgw)
  let closed: CpuMark | null = null
  return {
    onOpen: () => { open = cpuMark(vgw) },
    onClose: () => { closed = cpuMark(vgw) },
    spent: (messages) => cpuSpent(open, closed ?? cpuMark(vgw), messages)
  }
}

/**
 * PostgreSQL's own single-row commit rate: `clients` node-postgres connections, each committing
 * one `INSERT … RETURNING` (autocommit) after another into a table of a scratch schema, dropped after.
 */
async function commitProbe (vgw: VgwTarget, size: RestSizes): Promise<Row> {
  const url = vgw.databaseUrl()
  if (url === null) throw new Error('no database URL for the PostgreSQL probe')
  const pool = new pg.Pool({ connectionString: url, max: size.clients })
  await pool.query('CREATE SCHEMA IF NOT EXISTS vgw_bench_probe')
  await pool.query('CREATE TABLE IF NOT EXISTS vgw_bench_probe.commit_probe (id bigserial PRIMARY KEY, vin text NOT NULL, payload bytea NOT NULL, created_at timestamptz NOT NULL DEFAULT now())')
  const payload = Buffer.alloc(200, 7)
  const latencies: number[] = []
  let open: { mark: CpuMark, at: number, cpu: NodeJS.CpuUsage } | null = null
  const end = performance.now() + WARMUP_MS + size.seconds * 1000
  const opener = setTimeout(() => { open = { mark: cpuMark(vgw), at: performance.now(), cpu: process.cpuUsage() } }, WARMUP_MS)
  try {
    await Promise.all(Array.from({ length: size.clients }, async (_, c) => {
      const client = await pool.connect()
      try {
        for (let i = c; performance.now() < end; i += size.clients) {
          const sentAt = performance.now()
          await client.query('INSERT INTO vgw_bench_probe.commit_probe (vin, payload) VALUES ($1, $2) RETURNING id', [`PROBE${i}`, payload])
          if (open !== null) latencies.push(performance.now() - sentAt)
        }
      } finally {
        client.release()
      }
    }))
  } finally {
    clearTimeout(opener)
    await pool.query('DROP SCHEMA vgw_bench_probe CASCADE').catch(() => undefined)
    await pool.end()
  }
  const o = open as { mark: CpuMark, at: number, cpu: NodeJS.CpuUsage } | null
  if (o === null) throw new Error('the PostgreSQL probe ended before its window opened')
  const cpu = cpuSpent(o.mark, cpuMark(vgw), latencies.length)
  const client = process.cpuUsage(o.cpu)
  const clientSeconds = (client.user + client.system) / 1e6
  latencies.sort((a, b) => a - b)
  return {
    scenario: 'R1',
    target: `PostgreSQL alone: INSERT … RETURNING from node-postgres, ${size.clients} connections`,
    unit: 'single-row INSERT committed',
    msgPerSecond: Math.round(latencies.length / cpu.seconds),
    p50: ms(percentile(latencies, 50)),
    p99: ms(percentile(latencies, 99)),
    p999: ms(percentile(latencies, 99.9)),
    brokerCpuPercent: cpu.postgresCpuPercent,
    postgresCpuPercent: cpu.postgresCpuPercent,
    gatewayUsPerMessage: null,
    postgresUsPerMessage: cpu.postgresUsPerMessage,
    machineCpuPercent: cpu.machineCpuPercent,
    brokerRssMiB: null,
    loadGeneratorCpuPercent: Math.round(clientSeconds / cpu.seconds * 100),
    goal: 'reference',
    note: `same PostgreSQL as vgw's R1, same run (the gateway idle); autocommit, one row of 200 bytes per statement into a table with a bigserial key; node-postgres client ${Math.round(clientSeconds / Math.max(1, latencies.length) * 1e6)} µs CPU per INSERT (the load generator column)`
  }
}

/** R1 (with the PostgreSQL probe), R2 and R3 against one gateway; R3's rate is 3 × what R1 answered. */
export async function restScenarios (vgw: VgwTarget, size: RestSizes, step: (text: string) => void): Promise<Row[]> {
  step(`R: registering ${size.vehicles} offline vehicles`)
  const vins = await registerOffline(vgw, size.vehicles, 700_000)
  const rows: Row[] = []
  step(`R1: ${size.clients} clients against vgw`)
  const closed = new SendClient(vgw.apiUrl, vgw.apiKey, size.clients)
  const w1 = cpuWindow(vgw)
  const r1 = await closedLoop(closed, vins, size.clients, WARMUP_MS, size.seconds * 1000, w1)
  closed.close()
  rows.push(restRow('R1', vgw, r1, w1.spent(r1.accepted), {
    versus: { scenario: 'R1', target: 'PostgreSQL alone' },
    goal: '≥ 2,500/s and ≥ 0.5 × PostgreSQL alone',
    note: `${size.clients} clients, each sending its next POST when the last is answered (closed loop), ${size.seconds} s after ${WARMUP_MS / 1000} s of warm-up; ${statusText(r1)}${limitNote(r1)}`
  }))
  step(`R1: PostgreSQL alone, ${size.clients} connections`)
  rows.push(await commitProbe(vgw, size))
  step(`R2: ${size.rate}/s offered against vgw`)
  rows.push(await openRow('R2', vgw, vins, size.rate, size, 'p99 ≤ 100 ms'))
  const r3Rate = Math.max(100, 3 * (rows[0]?.msgPerSecond ?? 0))
  step(`R3: ${r3Rate}/s offered (3 × R1) against vgw`)
  rows.push(await openRow('R3', vgw, vins, r3Rate, size, 'accepted p99 ≤ 1 s; the rest 503 GW_ERR_OVERLOADED with Retry-After'))
  return rows
}

async function openRow (scenario: string, vgw: VgwTarget, vins: string[], rate: number, size: RestSizes, goal: string): Promise<Row> {
  const client = new SendClient(vgw.apiUrl, vgw.apiKey, OPEN_LOOP_CONNECTIONS)
  const w = cpuWindow(vgw)
  const drainMs = 60_000
  const t = await openLoop(client, vins, rate, size.seconds * 1000, drainMs, OPEN_LOOP_CONNECTIONS, w)
  client.close()
  const shed = t.shed.count === 0
    ? 'no 503'
    : `${t.shed.count} × 503 (${t.shed.withRetryAfter} with Retry-After, ${t.shed.withOverloadedCode} with GW_ERR_OVERLOADED; p99 ${ms(percentile(t.shedMs, 99)) ?? '–'} ms)`
  const offered = Math.round(t.sent / t.loadSeconds)
  const short = offered < rate * 0.9 ? `; the HTTP client offered only ${offered}/s of the ${rate}/s asked: the load generator limits this figure` : ''
  return restRow(scenario, vgw, t, w.spent(t.accepted), {
    offeredPerSecond: offered,
    goal,
    note: `${t.sent} POSTs at ${rate}/s for ${size.seconds} s over ${OPEN_LOOP_CONNECTIONS} keep-alive connections (open loop), latency from when each was due (at most ${t.peakWaiting} waited in the client for a free connection at once); answers awaited up to ${drainMs / 1000} s after the last; msg/s and CPU over the load and that wait (${t.seconds.toFixed(1)} s); ${shed}; ${statusText(t)}${limitNote(t)}${short}`
  })
}
