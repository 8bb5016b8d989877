import fs from 'node:fs'
import path from 'node:path'
import type { Command } from 'commander'
import logUpdate from 'log-update'
import { GatewayError } from '../protocol/index.ts'
import {
  defaultFleetOptions, parseDuration, parseMarkets, parseRange, parseScenario, positive, progressLine, progressText, runFleet, summaryText, verifyFleet,
  SCENARIOS, type FleetOptions, type FleetReport
} from '../simulators/index.ts'

interface FleetFlags {
  vehicles: string
  duration: string
  messages?: string
  markets: string
  connectRate: string
  uplinkRate?: string
  uplinkTotalRate?: string
  payloadBytes: string
  inFlight: string
  uplinksAfterConnect?: boolean
  lean?: boolean
  /** commander's --no-session-resumption: false when given. */
  sessionResumption?: boolean
  ackDelay: string
  rejectShare: string
  downlinkRate: string
  downlinkTtl: string
  scenario: string
  offlineShare: string
  flakyShare: string
  workers?: string
  firstVehicle: string
  verify?: boolean
  verifyFeed?: boolean
  json?: string
  api: string
  mqtt: string
  apiKey?: string
  certDir: string
  dataDir: string
}

function readKey (flags: { apiKey?: string, dataDir: string }): string {
  if (flags.apiKey !== undefined) return flags.apiKey
  const file = path.resolve(flags.dataDir, 'admin.key')
  try {
    return fs.readFileSync(file, 'utf8').trim()
  } catch {
    throw new GatewayError('GW_ERR_VALIDATION', `no --api-key given and no ${file}: start the gateway once (npm start) or pass --api-key`)
  }
}

export function fleetOptionsFrom (flags: FleetFlags): FleetOptions {
  const d = defaultFleetOptions()
  if (flags.uplinkRate !== undefined && flags.uplinkTotalRate !== undefined) throw new GatewayError('GW_ERR_VALIDATION', 'give --uplink-rate or --uplink-total-rate, not both')
  const vehicles = positive('vehicles', flags.vehicles, { integer: true, min: 1 })
  const perVehicle = flags.uplinkTotalRate !== undefined
    ? positive('uplink-total-rate', flags.uplinkTotalRate) / vehicles
    : flags.uplinkRate === 'max' ? Number.POSITIVE_INFINITY
      : flags.uplinkRate !== undefined ? positive('uplink-rate', flags.uplinkRate) : d.uplinkRatePerVehicle
  const rejectShare = positive('reject-share', flags.rejectShare)
  const offlineShare = positive('offline-share', flags.offlineShare)
  const flakyShare = positive('flaky-share', flags.flakyShare)
  if (rejectShare > 1 || offlineShare > 1 || flakyShare > 1) throw new GatewayError('GW_ERR_VALIDATION', '--reject-share, --offline-share and --flaky-share are shares from 0 to 1')
  for (const [name, url] of [['api', flags.api], ['mqtt', flags.mqtt]] as const) {
    try {
      new URL(url)
    } catch {
      throw new GatewayError('GW_ERR_VALIDATION', `--${name} ${JSON.stringify(url)} is not a URL`)
    }
  }
  return {
    ...d,
    vehicles,
    durationMs: parseDuration('duration', flags.duration),
    messages: flags.messages === undefined ? null : positive('messages', flags.messages, { integer: true, min: 1 }),
    markets: parseMarkets(flags.markets),
    mqttUrl: flags.mqtt,
    apiUrl: flags.api.replace(/\/$/, ''),
    apiKey: readKey(flags),
    certDir: path.resolve(flags.certDir),
    connectRatePerSecond: positive('connect-rate', flags.connectRate, { min: 1 }),
    uplinkRatePerVehicle: perVehicle,
    payloadBytes: positive('payload-bytes', flags.payloadBytes, { integer: true }),
    inFlight: positive('in-flight', flags.inFlight, { integer: true, min: 1 }),
    uplinksAfterConnect: flags.uplinksAfterConnect === true,
    lean: flags.lean === true,
    resumeSessions: flags.sessionResumption !== false,
    ackDelayMs: parseRange('ack-delay', flags.ackDelay),
    rejectShare,
    downlinkRate: positive('downlink-rate', flags.downlinkRate),
    downlinkTtlSeconds: Math.max(1, Math.round(parseDuration('downlink-ttl', flags.downlinkTtl) / 1000)),
    scenario: parseScenario(flags.scenario),
    offlineShare,
    flakyShare,
    workers: flags.workers === undefined ? d.workers : positive('workers', flags.workers, { integer: true, min: 1 }),
    verify: flags.verify === true || flags.verifyFeed === true,
    verifyFeed: flags.verifyFeed === true,
    firstVehicle: positive('first-vehicle', flags.firstVehicle, { integer: true }),
    progress: process.stdout.isTTY ? 'tty' : 'lines'
  }
}

function writeJson (file: string, report: FleetReport): void {
  fs.writeFileSync(file, JSON.stringify(report, null, 2) + '\n')
}

export function addFleetCommand (program: Command): void {
  const d = defaultFleetOptions()
  const fleet = program.command('fleet')
    .enablePositionalOptions()
    .description('launch a simulated fleet against a running gateway; exit 0 on success, 1 on a failed --verify, 2 on usage errors')
    .option('--vehicles <n>', 'simulated vehicles', String(d.vehicles))
    .option('--duration <time>', 'how long to run (500ms, 60s, 5m)', '60s')
    .option('--messages <n>', 'stop after this many uplinks (over all vehicles)')
    .option('--markets <list>', 'markets and weights', 'DE:50,US:30,CN:20')
    .option('--connect-rate <n>', 'connections opened per second', String(d.connectRatePerSecond))
    .option('--uplink-rate <r>', `uplinks per vehicle per second, Poisson, or max: as fast as acknowledged (default ${d.uplinkRatePerVehicle})`)
    .option('--uplink-total-rate <r>', 'uplinks per second over the whole fleet, instead of --uplink-rate')
    .option('--payload-bytes <n>', 'payload bytes per uplink', String(d.payloadBytes))
    .option('--in-flight <n>', 'unacknowledged uplinks per vehicle at most', String(d.inFlight))
    .option('--lean', 'publish-only vehicles on raw MQTT packets, lighter per message; no downlinks (throughput benchmarks)')
    .option('--no-session-resumption', 'reconnect with a full TLS handshake every time instead of resuming with the last session ticket')
    .option('--uplinks-after-connect', 'hold uplinks until every vehicle is connected (up to 60 s past the connect ramp): measures the steady state')
    .option('--ack-delay <range>', 'think time before a vehicle ACKs a message', '50ms..2s')
    .option('--reject-share <share>', 'share of messages answered REJECTED', String(d.rejectShare))
    .option('--downlink-rate <r>', 'messages per second sent through the REST API to random vehicles', String(d.downlinkRate))
    .option('--downlink-ttl <time>', 'ttl of those messages', '1h')
    .option('--scenario <name>', SCENARIOS.join(', '), 'steady')
    .option('--offline-share <share>', 'offline-fleet: the share of vehicles that go offline', String(d.offlineShare))
    .option('--flaky-share <share>', 'flaky-network: the share of vehicles with a bad moment each second', String(d.flakyShare))
    .option('--workers <n>', 'worker processes (default: the core count)')
    .option('--first-vehicle <n>', 'first vehicle serial (fleets with distinct VINs)', '0')
    .option('--verify', 'check end to end that nothing was lost or duplicated')
    .option('--verify-feed', '--verify, and check through the durable feed (GET /v1/events) from its head before the run: each acknowledged uplink once, each downlink\'s statuses in order')
    .option('--json <file>', 'write the machine-readable report')
    .option('--api <url>', 'the gateway\'s REST API', 'http://localhost:8080')
    .option('--mqtt <url>', 'the gateway\'s MQTT listener', 'mqtts://localhost:8883')
    .option('--api-key <key>', 'an API key with admin, messages:send, transactions:read and stream:read (default: .data/admin.key)')
    .option('--cert-dir <dir>', 'the dev PKI; certificates are cached under <dir>/fleet', 'certs/dev')
    .option('--data-dir <dir>', 'where admin.key is', '.data')
    .action(async (flags: FleetFlags) => {
      const opts = fleetOptionsFrom(flags)
      let last = 0
      const report = await runFleet(opts, {
        onProgress: (p) => {
          if (opts.progress === 'tty') logUpdate(progressText(p))
          else if (Date.now() - last >= 5000) {
            last = Date.now()
            process.stderr.write(progressLine(p) + '\n')
          }
        }
      })
      if (opts.progress === 'tty') logUpdate.done()
      process.stdout.write(summaryText(report))
      if (flags.json !== undefined) writeJson(path.resolve(flags.json), report)
      if (report.verification !== null && !report.verification.ok) process.exitCode = 1
    })
  fleet.command('verify <report>')
    .description('verify a saved fleet report (--json) again against the gateway')
    .option('--api-key <key>', 'API key (default: .data/admin.key)')
    .option('--data-dir <dir>', 'where admin.key is', '.data')
    .action(async (file: string, flags: { apiKey?: string, dataDir: string }) => {
      const report = JSON.parse(fs.readFileSync(path.resolve(file), 'utf8')) as FleetReport
      const result = await verifyFleet(report.verificationInput, readKey(flags))
      process.stdout.write(summaryText({ ...report, verification: result }))
      if (!result.ok) process.exitCode = 1
    })
}
