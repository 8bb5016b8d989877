import t from 'tap'
import { runFleet, SCENARIOS } from '../../simulators/index.ts'
import { fleetOptions as options } from '../helpers/fleet.ts'
import { startTestGateway } from '../helpers/gateway.ts'

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
