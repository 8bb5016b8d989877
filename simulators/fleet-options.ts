import os from 'node:os'
import { GatewayError } from '../protocol/index.ts'

export const SCENARIOS = ['steady', 'rush-hour', 'reconnect-storm', 'flaky-network', 'offline-fleet'] as const
export type Scenario = typeof SCENARIOS[number]

/** Everything a fleet run needs; `parseFleetArgs` builds it from CLI flags, tests build it directly. */
export interface FleetOptions {
  vehicles: number
  durationMs: number
  /** Stop once this many uplinks were sent (over all vehicles); null: run for the duration. */
  messages: number | null
  markets: Array<{ market: string, weight: number }>
  mqttUrl: string
  /** The gateway's REST API; empty: no backend (no registration, downlinks or stream), for plain brokers in benchmarks. */
  apiUrl: string
  apiKey: string
  /** Where the dev CA lives (its ca.crt also verifies the gateway). */
  certDir: string
  connectRatePerSecond: number
  /** Uplinks per vehicle per second (Poisson arrivals); Infinity: as fast as acknowledged, `inFlight` always outstanding. */
  uplinkRatePerVehicle: number
  payloadBytes: number
  inFlight: number
  /** Uplinks start once every vehicle is connected (or the connect ramp is over): benchmarks measure the steady state, not a ramp that starves handshakes. */
  uplinksAfterConnect: boolean
  /** Publish-only vehicles on raw MQTT packets (LeanVehicle): a lighter load generator for throughput benchmarks; no downlinks. */
  lean: boolean
  /** Vehicles reconnect with their last TLS session ticket (resumed handshakes, as a real unit would); false: a full handshake every time. */
  resumeSessions: boolean
  ackDelayMs: [number, number]
  rejectShare: number
  /** Downlinks per second sent through the REST API to random vehicles. */
  downlinkRate: number
  downlinkTtlSeconds: number
  scenario: Scenario
  /** offline-fleet: the share of vehicles that go offline for a while. */
  offlineShare: number
  /** flaky-network: the share of vehicles that have a bad moment each second (half a dropped socket, half stalled reads). */
  flakyShare: number
  workers: number
  verify: boolean
  /** With verify: also check through the durable feed, read from its head taken before the run. */
  verifyFeed: boolean
  /** Vehicle index offset: lets several fleets use distinct VINs against one gateway. */
  firstVehicle: number
  /** Redraw progress in place (TTY) or log a line every few seconds; null: silent. */
  progress: 'tty' | 'lines' | null
}

export const defaultFleetOptions = (): FleetOptions => ({
  vehicles: 100,
  durationMs: 60_000,
  messages: null,
  markets: [{ market: 'DE', weight: 50 }, { market: 'US', weight: 30 }, { market: 'CN', weight: 20 }],
  mqttUrl: 'mqtts://localhost:8883',
  apiUrl: 'http://localhost:8080',
  apiKey: '',
  certDir: 'certs/dev',
  connectRatePerSecond: 500,
  uplinkRatePerVehicle: 0.2,
  payloadBytes: 200,
  inFlight: 1,
  uplinksAfterConnect: false,
  lean: false,
  resumeSessions: true,
  ackDelayMs: [50, 2000],
  rejectShare: 0.05,
  downlinkRate: 5,
  downlinkTtlSeconds: 3600,
  scenario: 'steady',
  offlineShare: 0.3,
  flakyShare: 0.1,
  workers: Math.max(1, os.availableParallelism()),
  verify: false,
  verifyFeed: false,
  firstVehicle: 0,
  progress: null
})

function usage (message: string): GatewayError {
  return new GatewayError('GW_ERR_VALIDATION', message)
}

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }

/** `500ms`, `60s`, `5m`, `1h`; a bare number is seconds. */
export function parseDuration (name: string, text: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(text.trim())
  if (m === null) throw usage(`--${name} ${JSON.stringify(text)}: expected a duration such as 500ms, 60s, 5m`)
  return Math.round(Number(m[1]) * (UNITS[m[2] ?? 's'] ?? 1000))
}

/** `50ms..2s`, or one duration for a fixed delay. */
export function parseRange (name: string, text: string): [number, number] {
  const [a, b] = text.split('..')
  const lo = parseDuration(name, a ?? '')
  const hi = b === undefined ? lo : parseDuration(name, b)
  if (hi < lo) throw usage(`--${name} ${JSON.stringify(text)}: the upper bound is below the lower`)
  return [lo, hi]
}

/** `DE:50,US:30,CN:20` */
export function parseMarkets (text: string): Array<{ market: string, weight: number }> {
  const out = text.split(',').map((part) => {
    const m = /^([A-Z]{2})(?::(\d+(?:\.\d+)?))?$/.exec(part.trim())
    if (m === null) throw usage(`--markets ${JSON.stringify(text)}: expected CC:weight pairs such as DE:50,US:30`)
    return { market: m[1] as string, weight: Number(m[2] ?? 1) }
  })
  if (out.reduce((s, m) => s + m.weight, 0) <= 0) throw usage('--markets: the weights add up to zero')
  return out
}

export function positive (name: string, text: string, { integer = false, min = 0 } = {}): number {
  const n = Number(text)
  if (!Number.isFinite(n) || n < min || (integer && !Number.isInteger(n))) {
    throw usage(`--${name} ${JSON.stringify(text)}: expected ${integer ? 'a whole number' : 'a number'} of at least ${min}`)
  }
  return n
}

export function parseScenario (text: string): Scenario {
  if (!(SCENARIOS as readonly string[]).includes(text)) throw usage(`--scenario ${JSON.stringify(text)}: one of ${SCENARIOS.join(', ')}`)
  return text as Scenario
}
