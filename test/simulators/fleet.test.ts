import { execFile } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import pg from 'pg'
import t from 'tap'
import { runFleet } from '../../simulators/index.ts'
import { fleetOptions as options } from '../helpers/fleet.ts'
import { startTestGateway } from '../helpers/gateway.ts'
import { ROOT } from '../helpers/gateway-process.ts'

// The scenario and load runs are in fleet-scenarios.test.ts and fleet-load.test.ts, so that tap runs them beside each other.

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
  // In parallel: each is a Node start-up (about 2 s through tsx on Node 20), and they share nothing.
  const runs = await Promise.all(cases.map(async ([args]) => await new Promise<{ status: number | null, stderr: string }>((resolve) => {
    execFile(process.execPath, ['bin/vgw.js', 'fleet', ...args, '--api-key', 'x'], { cwd: ROOT, encoding: 'utf8' }, (err, _stdout, stderr) => {
      resolve({ status: err === null ? 0 : (err as { code?: number }).code ?? null, stderr })
    })
  })))
  cases.forEach(([args, message], i) => {
    t.equal(runs[i]?.status, 2, args.join(' '))
    t.match(runs[i]?.stderr, message)
  })
})
