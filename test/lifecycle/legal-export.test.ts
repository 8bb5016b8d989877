import { execFile } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import pg from 'pg'
import t, { type Test } from 'tap'
import { writeExportFiles } from '../../gateway/lifecycle/legal-export.ts'
import { verifyExportDir } from '../../gateway/lifecycle/verify-export.ts'
import { register, send } from '../helpers/downlink.ts'
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts'
import { ROOT } from '../helpers/gateway-process.ts'
import { logRow } from '../helpers/records.ts'
import { connectVehicle, envelope, publishEnvelope } from '../helpers/vehicle.ts'

const VIN = 'WVWZZZ1JZXW000700'
const FROM = new Date(Date.now() - 3600_000)

async function populated (t: Test): Promise<TestGateway> {
  const gw = await startTestGateway(t)
  await register(gw, VIN)
  const car = await connectVehicle(t, { port: gw.mqttPort, ca: gw.pki.ca, creds: await gw.pki.vehicle(VIN) })
  await car.subscribeAsync(`vehicles/${VIN}/down`, { qos: 1 })
  for (let i = 0; i < 20; i++) await publishEnvelope(car, VIN, envelope({ payload: Buffer.from([i, 0, 255]) }))
  await car.publishAsync(`vehicles/${VIN}/up`, Buffer.from('not protobuf'), { qos: 1 })
  await send(gw, VIN, { type: 'service.reminder', payload: 'due' })
  await new Promise((resolve) => setTimeout(resolve, 300))
  // A row outside the range, which must not be exported.
  await gw.store.transactions.append([logRow(VIN, 'DE', new Date(Date.now() - 30 * 24 * 3600_000))])
  await gw.gateway.log.flush()
  await gw.gateway.transitions.flush()
  return gw
}

function tmp (t: Test): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vgw-export-'))
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }))
  return dir
}

function copyExport (t: Test, dir: string, edit: (lines: string[]) => string[]): string {
  const copy = tmp(t)
  fs.copyFileSync(path.join(dir, 'manifest.json'), path.join(copy, 'manifest.json'))
  const lines = fs.readFileSync(path.join(dir, 'transactions.ndjson'), 'utf8').split('\n').filter((l) => l !== '')
  fs.writeFileSync(path.join(copy, 'transactions.ndjson'), edit(lines).join('\n') + '\n')
  return copy
}

t.test('an export of a range matches the database exactly, and verifies', async (t) => {
  const gw = await populated(t)
  const dir = tmp(t)
  const to = new Date(Date.now() + 60_000)
  const manifest = await writeExportFiles(gw.store, { vin: VIN, from: FROM, to, actor: 'test', now: Date.now }, dir)
  const db = new pg.Client({ connectionString: gw.dbUrl })
  await db.connect()
  t.teardown(() => db.end())
  const expected = (await db.query<{ id: string, raw: Buffer | null }>(
    'SELECT id, raw FROM transactions WHERE vin = $1 AND occurred_at >= $2 AND occurred_at < $3 ORDER BY occurred_at, id', [VIN, FROM, to])).rows
  t.ok(expected.length >= 25, `${expected.length} rows in range`)
  const lines = fs.readFileSync(path.join(dir, 'transactions.ndjson'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { seq: number, record: { id: string, rawBase64: string | null } })
  t.equal(manifest.rowCount, expected.length)
  t.same(lines.map((l) => l.record.id), expected.map((r) => r.id), 'the same rows in the same order')
  t.same(lines.map((l) => l.record.rawBase64), expected.map((r) => r.raw === null ? null : r.raw.toString('base64')), 'raw bytes exactly')
  t.same(lines.map((l) => l.seq), expected.map((_, i) => i + 1))
  t.match(manifest, { format: 'vgw-legal-export/1', vin: VIN, file: 'transactions.ndjson', sha256: /^[0-9a-f]{64}$/, chainHead: /^[0-9a-f]{64}$/ })

  const verdict = await verifyExportDir(dir)
  t.equal(verdict.ok, true)
  t.same(verdict.findings, [])
  t.match((await gw.store.lifecycle.auditTrail(5, 'export'))[0], { actor: 'test', details: { vin: VIN, rowCount: expected.length, chainHead: manifest.chainHead } })

  const tampering: Array<[string, (lines: string[]) => string[], string, number]> = [
    ['an edited record', (l) => l.map((line, i) => i === 4 ? line.replace('"status":"accepted"', '"status":"rejected"') : line), 'edited', 5],
    ['a deleted record', (l) => l.filter((_, i) => i !== 6), 'deleted', 7],
    ['an inserted record', (l) => [...l.slice(0, 3), l[2] as string, ...l.slice(3)], 'inserted', 4],
    ['reordered records', (l) => [...l.slice(0, 8), l[9] as string, l[8] as string, ...l.slice(10)], 'reordered', 9]
  ]
  for (const [what, edit, problem, line] of tampering) {
    const v = await verifyExportDir(copyExport(t, dir, edit))
    t.equal(v.ok, false, `${what} is detected`)
    t.match(v.findings[0], { problem, line }, `${what} is named at line ${line}`)
  }

  // The CLI says the same: exit 0 untouched, 1 tampered with the record named.
  const run = (args: string[]): Promise<{ code: number, out: string }> => new Promise((resolve) => {
    execFile(process.execPath, ['bin/vgw.js', ...args], { cwd: ROOT, encoding: 'utf8' }, (err, stdout) => resolve({ code: err === null ? 0 : Number((err as { code?: number }).code), out: stdout }))
  })
  t.match(await run(['export', 'verify', dir]), { code: 0, out: /^OK: \d+ records/ })
  const edited = copyExport(t, dir, (l) => l.map((line, i) => i === 2 ? line.replace('"kind":"TELEMETRY"', '"kind":"EVENT"') : line))
  t.match(await run(['export', 'verify', edited]), { code: 1, out: /line 3 \(record 3\): edited/ })
})

t.test('the REST export streams the same records with the manifest last; holds and retention over REST', async (t) => {
  const gw = await populated(t)
  const legal = await gw.store.apiKeys.create('legal-team', ['legal'], 'test')
  const res = await fetch(`${gw.baseUrl}/v1/vehicles/${VIN}/export?from=${FROM.toISOString()}&to=${new Date(Date.now() + 60_000).toISOString()}`, { headers: { authorization: `Bearer ${legal.key}` } })
  t.equal(res.status, 200)
  t.match(res.headers.get('content-type'), /ndjson/)
  const lines = (await res.text()).trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>)
  const last = lines.pop() as { manifest: { rowCount: number, exportedBy: string } }
  t.equal(last.manifest.rowCount, lines.length)
  t.equal(last.manifest.exportedBy, `api-key:${legal.id} (legal-team)`, 'the exporting key by id (names are not unique)')
  t.equal((await gw.api(`/v1/vehicles/${VIN}/export?from=x&to=y`, { key: legal.key })).status, 400)
  const admin = await gw.store.apiKeys.create('admin-only', ['admin'], 'test')
  t.equal((await gw.api(`/v1/vehicles/${VIN}/export?from=2026-01-01&to=2026-02-01`, { key: admin.key })).status, 403, 'admin does not include legal')
  const reader = await gw.store.apiKeys.create('reader', ['transactions:read'], 'test')
  t.equal((await gw.api(`/v1/vehicles/${VIN}/export?from=2026-01-01&to=2026-02-01`, { key: reader.key })).status, 403)

  const json = { 'content-type': 'application/json' }
  t.match(await gw.api(`/v1/vehicles/${VIN}/holds`, { method: 'POST', key: legal.key, headers: json, body: '{"reason":"accident 2026-11-20"}' }), { status: 201, body: { vin: VIN, reason: 'accident 2026-11-20' } })
  t.match(await gw.api('/v1/holds', { key: legal.key }), { status: 200, body: { items: [{ vin: VIN }] } })
  t.match(await gw.api(`/v1/vehicles/${VIN}/holds?reason=closed`, { method: 'DELETE', key: legal.key }), { status: 200, body: { released: 1 } })
  t.match(await gw.api(`/v1/vehicles/${VIN}/holds`, { method: 'DELETE', key: legal.key }), { status: 404, body: { error: { code: 'GW_ERR_HOLD_NOT_FOUND' } } })
  t.match(await gw.api('/v1/retention/DE', { method: 'PUT', headers: json, body: '{"period":"10y"}' }), { status: 200, body: { market: 'DE', retentionDays: 3650 } })
  t.match(await gw.api('/v1/retention/US', { method: 'PUT', headers: json, body: '{"period":"7 years"}' }), { status: 400, body: { error: { code: 'GW_ERR_VALIDATION' } } })
  t.match(await gw.api('/v1/retention'), { body: { items: [{ market: '*', period: '10y' }, { market: 'DE', period: '10y' }] } })
  t.match(await gw.api('/v1/retention/run', { method: 'POST' }), { status: 200, body: { totalRemoved: 0 } })
  const audit = (await gw.api('/v1/audit', { key: legal.key })).body as { items: Array<{ action: string }> }
  // One export: the admin-only key's was refused. The vehicle's registration (populated) is audited
  // too, and so are the test's keys, made on the server (key.create, left out here).
  t.same(audit.items.map((a) => a.action).filter((a) => !a.startsWith('key.')).slice(0, 6).sort(), ['export', 'hold.add', 'hold.release', 'retention.run', 'retention.set', 'vehicle.register'])
})
