import { execFile } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import pg from 'pg'
import t from 'tap'
import { defaultFleetOptions, runFleet, type FleetOptions } from '../../simulators/index.ts'
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts'
import { ROOT } from '../helpers/gateway-process.ts'

function options (gw: TestGateway, over: Partial<FleetOptions> = {}): FleetOptions {
  return {
    ...defaultFleetOptions(),
    vehicles: 10,
    durationMs: 3000,
    mqttUrl: `mqtts://127.0.0.1:${gw.mqttPort}`,
    apiUrl: gw.baseUrl,
    apiKey: gw.adminKey,
    certDir: gw.pki.dir,
    uplinkRatePerVehicle: 4,
    downlinkRate: 8,
    ackDelayMs: [20, 200],
    rejectShare: 0.3,
    workers: 2,
    verify: true,
    verifyFeed: true,
    ...over
  }
}

/** Runs SQL as the database owner, in one transaction (the log is append-only for the gateway's role). */
async function asOwner (gw: TestGateway, sql: string, params: unknown[]): Promise<void> {
  const db = new pg.Client({ connectionString: gw.dbUrl })
  await db.connect()
  try {
    await db.query('BEGIN')
    await db.query(sql, params)
    await db.query('COMMIT')
  } finally {
    await db.end()
  }
}

/**
 * A copy of a message's log row, committed now: a new id and the current transaction id, so it lands at
 * the feed's end (a millisecond later, past the uplinks' deduplication key).
 */
const COPY_ROW = `INSERT INTO transactions
  SELECT (r).* FROM (
    SELECT jsonb_populate_record(t, jsonb_build_object('id', gen_random_uuid(), 'xid', pg_current_xact_id()::text,
      'occurred_at', t.occurred_at + interval '1 millisecond')) AS r
    FROM transactions t WHERE message_id = $1 AND direction = $2 AND (direction = 'up' OR status = 'queued') LIMIT 1
  ) c`

t.test('--verify-feed: a fleet run read back through the feed from a cursor taken before it verifies clean', async (t) => {
  const gw = await startTestGateway(t)
  // Events from before the run must not count: an earlier fleet's uplinks and messages are in the log already.
  await runFleet(options(gw, { vehicles: 4, durationMs: 1000, downlinkRate: 4, verify: false, verifyFeed: false }))
  const report = await runFleet(options(gw))
  t.ok(report.counters.uplinkAcked > 50, `${report.counters.uplinkAcked} uplinks acknowledged`)
  t.ok(report.downlinks.posted > 5, `${report.downlinks.posted} downlinks`)
  t.ok(report.counters.rejectsSent > 0, 'some answered REJECTED (checked against the feed\'s ackStatus)')
  t.match(report.verification, { ok: true, mismatches: [] })
  t.equal(report.verification?.feed?.uplinksChecked, report.counters.uplinkAcked, 'every acknowledged uplink checked in the feed')
  t.equal(report.verification?.feed?.downlinksChecked, report.downlinks.posted)
  // Each uplink and each status is one event, plus the connections: the feed held the run and not much more.
  const minimum = report.counters.uplinkAcked + 3 * report.downlinks.posted
  t.ok((report.verification?.feed?.eventsRead ?? 0) >= minimum, `${report.verification?.feed?.eventsRead ?? 0} events read`)
  t.type(report.verificationInput.feedAfter, 'string', 'the cursor is saved for vgw fleet verify')
})

t.test('--verify-feed fails, naming the message, on a duplicate uplink and on a status out of order in the feed', async (t) => {
  const gw = await startTestGateway(t)
  let uplink = ''
  let message = ''
  const report = await runFleet(options(gw, { downlinkRate: 5 }), {
    beforeVerify: async (input) => {
      uplink = Object.values(input.uplinks)[0]?.[0] ?? ''
      message = input.downlinks.find((d) => d.vehicleOnline)?.id ?? ''
      t.ok(uplink !== '' && message !== '', 'an uplink and an acknowledged downlink to tamper with')
      await asOwner(gw, COPY_ROW, [uplink, 'up'])
      // A stale `queued` after the message was acknowledged: the messages table (which REST reads) still says acknowledged.
      await asOwner(gw, COPY_ROW, [message, 'down'])
    }
  })
  t.equal(report.verification?.ok, false)
  const kinds = report.verification?.mismatches.map((m) => `${m.kind} ${m.messageId}`) ?? []
  t.ok(kinds.includes(`feed-uplink-duplicate ${uplink}`), kinds.join('; '))
  t.ok(kinds.includes(`feed-status-order ${message}`), kinds.join('; '))
  t.notOk(kinds.includes(`downlink-status ${message}`), 'REST alone does not see the status out of order')

  // vgw fleet verify reads the feed again from the saved cursor, and exits 1 naming them.
  const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'vgw-fleet-feed-')), 'report.json')
  fs.writeFileSync(file, JSON.stringify(report))
  const r = await new Promise<{ status: number | null, stdout: string, stderr: string }>((resolve) => {
    execFile(process.execPath, ['bin/vgw.js', 'fleet', 'verify', file, '--api-key', gw.adminKey], { cwd: ROOT, encoding: 'utf8' }, (err, stdout, stderr) => {
      resolve({ status: err === null ? 0 : (err as { code?: number }).code ?? null, stdout, stderr })
    })
  })
  t.equal(r.status, 1, r.stderr)
  t.match(r.stdout, new RegExp(`feed-status-order \\S+ ${message}: queued after acknowledged`), r.stderr)
  t.match(r.stdout, new RegExp(`feed-uplink-duplicate \\S+ ${uplink}`), r.stderr)
})
