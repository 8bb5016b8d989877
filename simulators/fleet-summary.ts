import type { FleetReport, Progress } from './run-fleet.ts'

const n = (x: number): string => x.toLocaleString('en-US')

function errorsLine (errors: Record<string, number>): string {
  const entries = Object.entries(errors).sort((a, b) => b[1] - a[1])
  return entries.length === 0 ? 'none' : entries.map(([code, count]) => `${code} ${n(count)}`).join(', ')
}

/** The live progress block (redrawn in place on a terminal). */
export function progressText (p: Progress): string {
  const c = p.counters
  const rate = (x: number): string => n(Math.round(x / Math.max(1, p.elapsedSeconds)))
  return [
    `vgw fleet  ${p.elapsedSeconds.toFixed(0)} s`,
    `  vehicles   connected ${n(c.connected)}/${n(p.target)}   connects ${n(c.connects)} (${n(c.resumedConnects)} resumed)   drops ${n(c.disconnects)}   failed connects ${n(c.connectFailures)}`,
    `  uplinks    sent ${n(c.uplinkSent)}   acked ${n(c.uplinkAcked)} (${rate(c.uplinkAcked)}/s)   p50 ${p.latencyMs.uplinkP50.toFixed(1)} ms   p99 ${p.latencyMs.uplinkP99.toFixed(1)} ms`,
    `  downlinks  posted ${n(p.downlinks.posted)}   received ${n(p.downlinks.received)}   delivered ${n(p.downlinks.delivered)}   acked ${n(p.downlinks.acknowledged)}   POST failed ${n(p.downlinks.postFailed)}`,
    `  errors     ${errorsLine(p.errors)}`
  ].join('\n')
}

/** One line for logs when stdout is not a terminal. */
export function progressLine (p: Progress): string {
  return JSON.stringify({ elapsedSeconds: Math.round(p.elapsedSeconds), connected: p.counters.connected, uplinkAcked: p.counters.uplinkAcked, downlinksPosted: p.downlinks.posted, downlinksAcknowledged: p.downlinks.acknowledged, uplinkP99Ms: p.latencyMs.uplinkP99, errors: p.errors })
}

export function summaryText (r: FleetReport): string {
  const lines = [
    '',
    `Fleet run: scenario ${r.scenario}, ${n(r.vehicles)} vehicles on ${r.workers} worker(s), ${r.durationSeconds.toFixed(1)} s`,
    `  certificates ${r.certSeconds.toFixed(1)} s, registration ${r.registerSeconds.toFixed(1)} s, load generator CPU ${r.loadGenerator.cpuSeconds.toFixed(1)} s (${r.loadGenerator.cpuPercentOfOneCore}% of one core)`,
    `  connects ${n(r.counters.connects)} (${n(r.counters.resumedConnects)} resumed TLS sessions), drops ${n(r.counters.disconnects)}, failed connects ${n(r.counters.connectFailures)}, connected at the end ${n(r.counters.connected)}`,
    `  uplinks sent ${n(r.counters.uplinkSent)}, acknowledged ${n(r.counters.uplinkAcked)} (${n(r.rates.uplinkAckedPerSecond)}/s), ACKs sent ${n(r.counters.acksSent)} (${n(r.counters.rejectsSent)} REJECTED)`,
    `  downlinks posted ${n(r.downlinks.posted)} (${n(r.rates.downlinkPostedPerSecond)}/s), received ${n(r.downlinks.received)} (+${n(r.counters.downlinkDuplicates)} duplicates), delivered ${n(r.downlinks.delivered)}, acknowledged ${n(r.downlinks.acknowledged)}, POST failed ${n(r.downlinks.postFailed)}`,
    `  errors: ${errorsLine(r.errors)}`,
    '',
    '  latency (ms)                     count        p50        p90        p99      p99.9        max'
  ]
  const label: Record<string, string> = {
    connect: 'connect (TLS + CONNACK)',
    uplink: 'uplink PUBLISH → PUBACK',
    downlinkReceipt: 'downlink POST → vehicle',
    downlinkDelivered: 'downlink POST → delivered',
    downlinkAcknowledged: 'downlink POST → acknowledged'
  }
  for (const [name, p] of Object.entries(r.latencyMs)) {
    const f = (x: number): string => x.toFixed(1).padStart(10)
    lines.push(`  ${(label[name] ?? name).padEnd(30)} ${n(p.count).padStart(7)} ${f(p.p50)} ${f(p.p90)} ${f(p.p99)} ${f(p.p999)} ${f(p.max)}`)
  }
  if (r.verification !== null) {
    const v = r.verification
    lines.push('', v.ok
      ? `  verify: OK: ${n(v.uplinksChecked)} acknowledged uplinks each recorded once, ${n(v.downlinksChecked)} downlinks in a final or documented status, each delivered one with its sent row and bytes`
      : `  verify: FAILED: ${n(v.mismatches.length)} mismatch(es)`)
    if (v.feed !== null && v.feed !== undefined) {
      lines.push(`  verify (feed): ${n(v.feed.eventsRead)} events read from the cursor taken before the run; ${n(v.feed.uplinksChecked)} acknowledged uplinks each once, ${n(v.feed.downlinksChecked)} downlinks' statuses in order`)
    }
    for (const m of v.mismatches.slice(0, 50)) lines.push(`    ${m.kind} ${m.vin} ${m.messageId}: ${m.detail}`)
    if (v.mismatches.length > 50) lines.push(`    … and ${n(v.mismatches.length - 50)} more (see --json)`)
  }
  return lines.join('\n') + '\n'
}
