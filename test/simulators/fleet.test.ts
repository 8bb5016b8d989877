import { execFile, spawnSync } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import pg from 'pg'
import t from 'tap'
import { defaultFleetOptions, runFleet, SCENARIOS, type FleetOptions } from '../../simulators/index.ts'
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts'
import { ROOT } from '../helpers/gateway-process.ts'

function options (gw: TestGateway, over: Partial<FleetOptions> = {}): FleetOptions {
  return {
    ...defaultFleetOptions(),
    vehicles: 12,
    durationMs: 3000,
    mqttUrl: `mqtts://127.0.0.1:${gw.mqttPort}`,
    apiUrl: gw.baseUrl,
    apiKey: gw.adminKey,
    certDir: gw.pki.dir,
    uplinkRatePerVehicle: 3,
    downlinkRate: 8,
    ackDelayMs: [20, 200],
    rejectShare: 0.2,
    workers: 2,
    verify: true,
    ...over
  }
}

t.test('a short fleet run against a real gateway verifies clean', async (t) => {
  const gw = await startTestGateway(t)
  const report = await runFleet(options(gw, { vehicles: 30, durationMs: 9000, downlinkRate: 15, rejectShare: 0.5, markets: [{ market: 'DE', weight: 2 }, { market: 'US', weight: 1 }] }))
  t.equal(report.counters.connects, 30)
  t.ok(report.counters.uplinkAcked > 100, `${report.counters.uplinkAcked} uplinks acknowledged`)
  t.ok(report.downlinks.posted > 20, `${report.downlinks.posted} downlinks`)
  t.equal(report.downlinks.acknowledged, report.downlinks.posted, 'every downlink acknowledged over the stream')
  t.ok(report.counters.rejectsSent > 0, 'some answered REJECTED')
  t.match(report.verification, { ok: true, mismatches: [] })
  t.equal(report.verification?.uplinksChecked, report.counters.uplinkAcked)
  for (const h of ['connect', 'uplink', 'downlinkReceipt', 'downlinkDelivered', 'downlinkAcknowledged'] as const) {
    t.ok(report.latencyMs[h].count > 0 && report.latencyMs[h].p99 >= report.latencyMs[h].p50, `${h} percentiles`)
  }
  // VINs are valid with a check digit and spread over the markets as asked.
  const vins = Object.keys(report.verificationInput.uplinks)
  const de = await gw.api(`/v1/vehicles/${vins.find((v) => v.startsWith('WVW')) ?? ''}`)
  t.match(de.body, { market: 'DE' })
  t.equal(vins.filter((v) => v.startsWith('1FT')).length, 10, 'a third in US')
})

t.test('--verify fails, naming the message, when a recorded uplink disappears behind the fleet\'s back', async (t) => {
  const gw = await startTestGateway(t)
  let deleted = ''
  const report = await runFleet(options(gw, { downlinkRate: 0 }), {
    beforeVerify: async (input) => {
      const [vin, ids] = Object.entries(input.uplinks)[0] ?? ['', []]
      t.ok(vin !== '' && ids.length > 0)
      deleted = ids[0] as string
      const db = new pg.Client({ connectionString: gw.dbUrl })
      await db.connect()
      // The log is append-only; only the retention path (as the owner) can remove a row.
      await db.query('BEGIN')
      await db.query("SET LOCAL vgw.retention = 'on'")
      await db.query("DELETE FROM transactions WHERE message_id = $1 AND direction = 'up'", [deleted])
      await db.query('COMMIT')
      await db.end()
    }
  })
  t.equal(report.verification?.ok, false)
  t.match(report.verification?.mismatches, [{ kind: 'uplink-missing', messageId: deleted }])

  // The CLI says the same with exit code 1 when the saved report is verified again.
  const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'vgw-fleet-')), 'report.json')
  fs.writeFileSync(file, JSON.stringify(report))
  // Asynchronously: the gateway under test lives in this process and must keep answering.
  const r = await new Promise<{ status: number | null, stdout: string, stderr: string }>((resolve) => {
    execFile(process.execPath, ['bin/vgw.js', 'fleet', 'verify', file, '--api-key', gw.adminKey], { cwd: ROOT, encoding: 'utf8' }, (err, stdout, stderr) => {
      resolve({ status: err === null ? 0 : (err as { code?: number }).code ?? null, stdout, stderr })
    })
  })
  t.equal(r.status, 1, r.stderr)
  t.match(r.stdout, new RegExp(`uplink-missing \\S+ ${deleted}`), r.stderr)
})

for (const scenario of SCENARIOS) {
  t.test(`scenario ${scenario} runs briefly without errors and verifies clean`, async (t) => {
    const gw = await startTestGateway(t)
    const report = await runFleet(options(gw, { scenario, durationMs: scenario === 'reconnect-storm' ? 8000 : 6000, offlineShare: 0.5 }))
    t.same(report.errors, {}, 'no errors')
    t.equal(report.downlinks.postFailed, 0)
    t.match(report.verification, { ok: true })
    if (scenario === 'reconnect-storm') {
      t.ok(report.counters.connects >= 24, `every vehicle reconnected (${report.counters.connects} connects)`)
      t.equal(report.counters.resumedConnects, report.counters.connects - 12, 'every reconnection resumed its TLS session, none the first')
    }
    if (scenario === 'offline-fleet') t.ok(report.counters.disconnects >= 6, `half went offline (${report.counters.disconnects} drops)`)
  })
}

// The benchmarks' load: lean vehicles, as fast as acknowledged, once all are connected.
for (const lean of [true, false]) {
  t.test(`${lean ? 'lean' : 'mqtt.js'} vehicles at --uplink-rate max keep their window full and every PUBACKed uplink is stored`, async (t) => {
    const gw = await startTestGateway(t)
    const report = await runFleet(options(gw, {
      vehicles: 8, durationMs: 5000, uplinkRatePerVehicle: Number.POSITIVE_INFINITY, inFlight: 3, downlinkRate: 0, lean, uplinksAfterConnect: true
    }))
    t.same(report.errors, {}, 'no errors')
    t.equal(report.counters.connects, 8)
    // At a Poisson rate of 3/s the 8 would send about 120 in 5 s; a closed loop sends as fast as the gateway acknowledges.
    t.ok(report.counters.uplinkAcked > 300, `${report.counters.uplinkAcked} acknowledged`)
    t.equal(report.counters.uplinkQueued, 0, 'nothing piles up in a closed loop')
    t.match(report.verification, { ok: true, mismatches: [] })
    t.equal(report.verification?.uplinksChecked, report.counters.uplinkAcked)
  })
}

t.test('a lean fleet under flaky-network sends again what a dropped socket lost, and verifies clean', async (t) => {
  const gw = await startTestGateway(t)
  const report = await runFleet(options(gw, {
    vehicles: 10, durationMs: 4000, uplinkRatePerVehicle: 20, inFlight: 5, downlinkRate: 0, lean: true, scenario: 'flaky-network', flakyShare: 0.4
  }))
  t.ok(report.counters.disconnects > 0, `${report.counters.disconnects} sockets dropped`)
  t.ok(report.counters.resumedConnects > 0, `lean vehicles resume their TLS sessions when they reconnect (${report.counters.resumedConnects} of ${report.counters.connects})`)
  t.match(report.verification, { ok: true, mismatches: [] })
})

t.test('--no-session-resumption: a reconnect storm makes full handshakes only', async (t) => {
  const gw = await startTestGateway(t)
  const report = await runFleet(options(gw, { scenario: 'reconnect-storm', durationMs: 4000, resumeSessions: false, downlinkRate: 0 }))
  t.ok(report.counters.connects >= 24, `every vehicle reconnected (${report.counters.connects} connects)`)
  t.equal(report.counters.resumedConnects, 0, 'none resumed')
})

t.test('usage errors exit with 2 and say what is wrong', async (t) => {
  const cases: Array<[string[], RegExp]> = [
    [['--vehicles', '0'], /--vehicles/],
    [['--duration', 'soon'], /--duration/],
    [['--markets', 'Germany'], /--markets/],
    [['--scenario', 'chaos'], /--scenario/],
    [['--ack-delay', '2s..1s'], /--ack-delay/],
    [['--reject-share', '3'], /share/],
    [['--flaky-share', '2'], /share/],
    [['--uplink-rate', 'fast'], /--uplink-rate/],
    [['--uplink-rate', '1', '--uplink-total-rate', '5'], /not both/]
  ]
  for (const [args, message] of cases) {
    const r = spawnSync(process.execPath, ['bin/vgw.js', 'fleet', ...args, '--api-key', 'x'], { cwd: ROOT, encoding: 'utf8' })
    t.equal(r.status, 2, args.join(' '))
    t.match(r.stderr, message)
  }
})
