// npm run bench:feed [-- --seconds=30 --rate=2800 --vehicles=1000 --batch-size=100 --no-docs]: the durable feed and
// webhooks (#15 D). vgw runs as a user runs it (bench/targets.ts); a lean fleet offers uplinks at the
// production peak; one webhook delivers them to a receiver on this machine. Measures the webhook's
// delivery lag (an uplink row's received_at to the receiver reading its POST) and, after the run,
// how fast the whole feed reads from the start. Appends the figures to docs/benchmarks.md.
import { createHmac, timingSafeEqual } from 'node:crypto'
import fs from 'node:fs'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { initDevPki } from '../certs/index.ts'
import { fixed, fleetOptions, machineDetails, measureUplinks, postgresVersion, writeDocBlock, type Row } from './bench-row.ts'
import { startVgw, type VgwTarget } from './targets.ts'

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const arg = (name: string, fallback: number): number => {
  const a = process.argv.find((x) => x.startsWith(`--${name}=`))
  return a === undefined ? fallback : Number(a.slice(name.length + 3))
}
const SECONDS = arg('seconds', 30)
const RATE = arg('rate', 2800)
const VEHICLES = arg('vehicles', 1000)
// The gateway reads its settings from the environment startVgw passes on.
const BATCH = arg('batch-size', 100)
process.env.VGW_WEBHOOK_BATCH_SIZE = String(BATCH)
// The receiver runs on this machine, which webhooks may reach only when allowed.
process.env.VGW_WEBHOOK_ALLOW = '127.0.0.1/32,::1/128'
const WRITE_DOCS = !process.argv.includes('--no-docs')
const SECRET = 'feed-bench-secret-0123456789'
const step = (text: string): void => { process.stderr.write(`${new Date().toISOString().slice(11, 19)} ${text}…\n`) }

interface Receipt {
  lags: number[]
  ids: Set<string>
  posts: number
  duplicates: number
  badSignatures: number
  /** Per second of arrival: events received and their largest lag (is delivery behind, or bursty?). */
  timeline: Map<number, { events: number, maxLagMs: number }>
}

function signed (headers: http.IncomingHttpHeaders, body: string): boolean {
  const expected = Buffer.from('v1=' + createHmac('sha256', SECRET).update(`${String(headers['vgw-timestamp'])}.${body}`).digest('hex'))
  const given = Buffer.from(String(headers['vgw-signature']))
  return given.length === expected.length && timingSafeEqual(given, expected)
}

/** A receiver as a backend would run one: verify the signature, note each event once, answer 204. */
async function startReceiver (): Promise<{ url: string, receipt: Receipt, close: () => Promise<void> }> {
  const receipt: Receipt = { lags: [], ids: new Set(), posts: 0, duplicates: 0, badSignatures: 0, timeline: new Map() }
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      const at = Date.now()
      const body = Buffer.concat(chunks).toString('utf8')
      receipt.posts++
      if (!signed(req.headers, body)) receipt.badSignatures++
      for (const e of (JSON.parse(body) as { events: Array<{ id: string, receivedAt?: string | null }> }).events) {
        if (receipt.ids.has(e.id)) { receipt.duplicates++; continue }
        receipt.ids.add(e.id)
        if (typeof e.receivedAt !== 'string') continue
        const lag = at - Date.parse(e.receivedAt)
        receipt.lags.push(lag)
        const second = receipt.timeline.get(Math.floor(at / 1000)) ?? { events: 0, maxLagMs: 0 }
        receipt.timeline.set(Math.floor(at / 1000), { events: second.events + 1, maxLagMs: Math.max(second.maxLagMs, lag) })
      }
      res.writeHead(204).end()
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`,
    receipt,
    close: async () => { server.closeAllConnections(); await new Promise((resolve) => server.close(resolve)) }
  }
}

async function api (vgw: VgwTarget, method: string, route: string, body?: unknown): Promise<unknown> {
  const res = await fetch(vgw.apiUrl + route, {
    method,
    headers: { authorization: `Bearer ${vgw.apiKey}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) })
  })
  if (res.status >= 300) throw new Error(`${method} ${route}: ${res.status} ${await res.text()}`)
  return await res.json() as unknown
}

/** Reads the whole feed from its start at the largest page, as a consumer catching up would. */
async function readWholeFeed (vgw: VgwTarget): Promise<{ events: number, seconds: number, pages: number }> {
  let after = ''
  let events = 0
  let pages = 0
  const t0 = performance.now()
  for (;;) {
    const page = await api(vgw, 'GET', `/v1/events?limit=1000${after === '' ? '' : `&after=${after}`}`) as { items: unknown[], nextCursor: string, more: boolean }
    events += page.items.length
    pages++
    after = page.nextCursor
    if (!page.more) break
  }
  return { events, seconds: (performance.now() - t0) / 1000, pages }
}

const percentile = (sorted: number[], p: number): number => sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p / 100))] ?? Number.NaN

async function waitFor (pred: () => boolean, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs
  while (!pred() && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 100))
  return pred()
}

const workDir = fs.mkdtempSync(path.join(os.tmpdir(), 'vgw-feed-bench-'))
fs.chmodSync(workDir, 0o755) // the embedded PostgreSQL runs as its own user and must reach its data directory
const certDir = path.join(workDir, 'certs')
await initDevPki(certDir)
step('starting vgw')
fs.mkdirSync(path.join(workDir, 'vgw'))
const vgw = await startVgw(path.join(workDir, 'vgw'), certDir)
const receiver = await startReceiver()
try {
  const postgres = await postgresVersion(vgw.databaseUrl())
  await api(vgw, 'POST', '/v1/webhooks', { url: receiver.url, events: ['uplink'], secret: SECRET })
  step(`${VEHICLES} lean vehicles offering ${RATE} uplinks/s for ${SECONDS} s, one webhook to ${receiver.url}`)
  const { row, report } = await measureUplinks('F1', vgw, fleetOptions(vgw, certDir, {
    vehicles: VEHICLES, uplinkRatePerVehicle: RATE / VEHICLES, inFlight: 10, lean: true, firstVehicle: 500_000
  }), SECONDS * 1000, 'webhook lag p99 ≤ 1 s')
  const acked = report.counters.uplinkAcked
  const loadEnd = { at: Date.now(), delivered: receiver.receipt.ids.size }
  step(`waiting for the webhook to deliver all ${acked} acknowledged uplinks`)
  const caughtUp = await waitFor(() => receiver.receipt.ids.size >= acked, 120_000)
  const catchUpSeconds = (Date.now() - loadEnd.at) / 1000
  const lags = [...receiver.receipt.lags].sort((a, b) => a - b)
  step('reading the whole feed from the start')
  const read = await readWholeFeed(vgw)
  const result = {
    scenario: 'F1',
    at: new Date().toISOString(),
    machine: machineDetails(postgres),
    offeredPerSecond: RATE,
    webhookBatchSize: BATCH,
    uplinks: row,
    webhook: {
      events: receiver.receipt.ids.size,
      posts: receiver.receipt.posts,
      duplicates: receiver.receipt.duplicates,
      badSignatures: receiver.receipt.badSignatures,
      caughtUp,
      deliveredDuringLoad: loadEnd.delivered,
      catchUpSeconds,
      catchUpPerSecond: Math.round((receiver.receipt.ids.size - loadEnd.delivered) / catchUpSeconds),
      lagMs: { p50: percentile(lags, 50), p90: percentile(lags, 90), p99: percentile(lags, 99), max: lags.at(-1) ?? Number.NaN },
      timeline: [...receiver.receipt.timeline].sort((a, b) => a[0] - b[0]).map(([second, v]) => ({ at: new Date(second * 1000).toISOString().slice(11, 19), ...v }))
    },
    feedRead: { ...read, eventsPerSecond: Math.round(read.events / read.seconds) }
  }
  console.log(JSON.stringify(result, null, 2))
  fs.mkdirSync(path.join(ROOT, 'bench/results'), { recursive: true })
  fs.writeFileSync(path.join(ROOT, `bench/results/${result.at.replace(/[:.]/g, '-')}-feed.json`), JSON.stringify(result, null, 2) + '\n')
  if (WRITE_DOCS) writeDocBlock(path.join(ROOT, 'docs/benchmarks.md'), 'feed', 'Feed and webhooks (`npm run bench:feed`)', describe(result.machine, row, result.webhook, result.feedRead, result.at))
} finally {
  await receiver.close()
  await vgw.stop()
}

interface WebhookFigures { events: number, posts: number, duplicates: number, badSignatures: number, caughtUp: boolean, deliveredDuringLoad: number, catchUpSeconds: number, catchUpPerSecond: number, lagMs: Record<string, number> }

function describe (m: ReturnType<typeof machineDetails>, row: Row, w: WebhookFigures, read: { events: number, seconds: number, pages: number, eventsPerSecond: number }, at: string): string {
  return [
    `Run ${at} on ${m.cpu}, ${m.cores} cores, ${m.memoryGiB} GiB, Node ${m.node}, PostgreSQL ${m.postgres} (embedded); vgw, its PostgreSQL, the fleet and the receiver share the cores.`,
    '',
    `F1: ${VEHICLES} lean vehicles offer ${RATE} uplinks/s (Poisson, up to 10 in flight) for ${SECONDS} s once all are connected; one webhook (\`events: ["uplink"]\`, \`VGW_WEBHOOK_BATCH_SIZE\` ${BATCH}) POSTs them to a node:http receiver on 127.0.0.1 that checks each signature and answers 204. Webhook lag: from the uplink row's \`received_at\` (the gateway took the PUBLISH; the commit and PUBACK follow) to the receiver reading the POST, per event, first arrival. Feed read: after the run, one consumer reads \`GET /v1/events?limit=1000\` from the start to the head, one request after another.`,
    '',
    '| measure | value |',
    '|---|---|',
    `| uplinks acknowledged, steady part | ${row.msgPerSecond ?? '–'}/s (offered ${row.offeredPerSecond ?? '–'}/s), PUBLISH→PUBACK p50 ${fixed(row.p50)} ms, p99 ${fixed(row.p99)} ms |`,
    `| gateway + PostgreSQL CPU | ${row.brokerCpuPercent ?? '–'} % of one core (PostgreSQL ${row.postgresCpuPercent ?? '–'} %) |`,
    `| webhook delivery lag | p50 ${fixed(w.lagMs.p50, 0)} ms, p90 ${fixed(w.lagMs.p90, 0)} ms, p99 ${fixed(w.lagMs.p99, 0)} ms, max ${fixed(w.lagMs.max, 0)} ms |`,
    `| webhook delivered | ${w.events} events in ${w.posts} POSTs, ${w.duplicates} duplicates, ${w.badSignatures} bad signatures; ${w.caughtUp ? 'every acknowledged uplink arrived' : 'NOT every acknowledged uplink arrived within 2 min'} |`,
    `| webhook during the load, and after | ${w.deliveredDuringLoad} events had arrived when the fleet stopped; the rest (${w.events - w.deliveredDuringLoad}) in the ${w.catchUpSeconds.toFixed(1)} s after, ${w.catchUpPerSecond} events/s |`,
    `| feed read from the start | ${read.eventsPerSecond} events/s (${read.events} events in ${read.pages} pages, ${read.seconds.toFixed(1)} s) |`
  ].join('\n')
}
