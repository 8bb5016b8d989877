// A legal export of any size completes, whatever the statement timeout; one that fails
// part-way leaves nothing that looks like an export (issue #11, A).
import { execFile } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import pg from 'pg'
import t, { type Test } from 'tap'
import { v7 as uuidv7 } from 'uuid'
import { produceExport } from '../../gateway/lifecycle/legal-export.ts'
import { openStore } from '../../store/index.ts'
import { fillVehicleRows } from '../helpers/bulk-rows.ts'
import { testStore } from '../helpers/database.ts'
import { ROOT } from '../helpers/gateway-process.ts'

const VIN = 'WVWZZZ1JZXW000831'
const TO = new Date(Date.now() - 24 * 3600_000)
const FROM = new Date(TO.getTime() - 24 * 3600_000)
const ROWS = 100_000

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

async function history (t: Test): Promise<string> {
  const { url } = await testStore(t)
  await fillVehicleRows(url, VIN, ROWS, FROM, TO)
  return url
}

t.test('an export that outlasts the statement timeout and the client-side query timeout completes', async (t) => {
  const url = await history(t)
  // 300 ms per statement, and pg's query_timeout 2.3 s: each fetch stays bounded, the export as a whole is not.
  const store = openStore({ url, newId: uuidv7, statementTimeoutMs: 300 })
  t.teardown(() => store.close())
  const started = Date.now()
  let lines = 0
  const manifest = await produceExport(store, { vin: VIN, from: FROM, to: TO, actor: 'test', now: Date.now }, async () => {
    // A slow reader: the export takes at least 4 s.
    if (++lines % 5000 === 0) await sleep(200)
  }, 'transactions.ndjson')
  t.ok(Date.now() - started > 2300, 'the export ran longer than both timeouts')
  t.equal(manifest.rowCount, ROWS, 'every row')
  t.equal(lines, ROWS)
})

t.test('vgw export that fails part-way exits 1 with GW_ERR_EXPORT_FAILED and leaves no export behind', async (t) => {
  const url = await history(t)
  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'vgw-export-fail-'))
  t.teardown(() => fs.rmSync(out, { recursive: true, force: true }))
  const partial = path.join(out, 'transactions.ndjson.partial')
  const run = new Promise<{ code: number, stderr: string }>((resolve) => {
    execFile(process.execPath, ['bin/vgw.js', 'export', '--vin', VIN, '--from', FROM.toISOString(), '--to', TO.toISOString(), '--out', out],
      { cwd: ROOT, env: { ...process.env, DATABASE_URL: url }, encoding: 'utf8' },
      (err, _stdout, stderr) => resolve({ code: err === null ? 0 : Number((err as { code?: number }).code), stderr }))
  })
  let finished = false
  void run.then(() => { finished = true })
  // Once the export is under way, its database session dies.
  while (!finished && !(fs.existsSync(partial) && fs.statSync(partial).size > 200_000)) await sleep(10)
  t.notOk(finished, 'the export was still running')
  const db = new pg.Client({ connectionString: url })
  await db.connect()
  t.teardown(() => db.end())
  const killed = await db.query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND application_name = 'vgw-export'")
  t.equal(killed.rowCount, 1, 'the export\'s session is terminated mid-export')

  const { code, stderr } = await run
  t.equal(code, 1, 'exit code 1')
  t.match(stderr, /GW_ERR_EXPORT_FAILED: the export of WVWZZZ1JZXW000831 stopped after \d+ records/, 'the error names the failure')
  t.same(fs.readdirSync(out), [], 'no manifest, no NDJSON, no partial file')
})
