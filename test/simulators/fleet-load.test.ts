import t from 'tap'
import { runFleet } from '../../simulators/index.ts'
import { fleetOptions as options } from '../helpers/fleet.ts'
import { startTestGateway } from '../helpers/gateway.ts'

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
