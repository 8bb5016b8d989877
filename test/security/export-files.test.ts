import { execFile } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import t, { type Test } from 'tap'
import { writeExportFiles } from '../../gateway/lifecycle/legal-export.ts'
import { verifyExportDir } from '../../gateway/lifecycle/verify-export.ts'
import type { Store } from '../../store/index.ts'
import { testStore } from '../helpers/database.ts'
import { ROOT } from '../helpers/gateway-process.ts'
import { logRow } from '../helpers/records.ts'

const VIN = 'WVWZZZ1JZXW000730'
const FROM = new Date(Date.now() - 3600_000)

function tmp (t: Test): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vgw-export-sec-'))
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }))
  return dir
}

async function exportTo (store: Store, dir: string): ReturnType<typeof writeExportFiles> {
  return await writeExportFiles(store, { vin: VIN, from: FROM, to: new Date(Date.now() + 60_000), actor: 'test', now: Date.now }, dir)
}

async function populated (t: Test): Promise<Store> {
  const { store } = await testStore(t)
  await store.transactions.append(Array.from({ length: 5 }, (_, i) => logRow(VIN, 'DE', new Date(Date.now() - 60_000 + i))))
  return store
}

t.test('export files: mode 0600, never over an existing file, never through a symlink', async (t) => {
  const store = await populated(t)
  const dir = tmp(t)
  await exportTo(store, dir)
  for (const f of ['transactions.ndjson', 'manifest.json']) t.equal(fs.statSync(path.join(dir, f)).mode & 0o777, 0o600, `${f} is readable by its owner only`)
  t.same(fs.readdirSync(dir).sort(), ['manifest.json', 'transactions.ndjson'])

  const before = fs.readFileSync(path.join(dir, 'transactions.ndjson'), 'utf8')
  await t.rejects(exportTo(store, dir), { code: 'GW_ERR_VALIDATION', message: /already holds manifest.json, transactions.ndjson|already holds transactions.ndjson, manifest.json/ }, 'a second export into the same directory is refused')
  t.equal(fs.readFileSync(path.join(dir, 'transactions.ndjson'), 'utf8'), before, 'the first export is untouched')

  // Someone who can write the directory plants a symlink where the export will write.
  const trap = tmp(t)
  const victim = path.join(tmp(t), 'victim.txt')
  fs.writeFileSync(victim, 'precious\n')
  fs.symlinkSync(victim, path.join(trap, 'transactions.ndjson.partial'))
  await t.rejects(exportTo(store, trap), { code: 'GW_ERR_VALIDATION', message: /transactions.ndjson.partial/ })
  t.equal(fs.readFileSync(victim, 'utf8'), 'precious\n', 'nothing was written through the symlink')
  t.ok(fs.lstatSync(path.join(trap, 'transactions.ndjson.partial')).isSymbolicLink(), 'and the symlink was left as it was')
})

t.test('vgw export verify accepts only a plain file name in the manifest: a tampered manifest is refused', async (t) => {
  const store = await populated(t)
  const dir = tmp(t)
  await exportTo(store, dir)
  t.equal((await verifyExportDir(dir)).ok, true, 'the export verifies')

  // A valid export elsewhere that a tampered manifest points at instead of its own file.
  const elsewhere = tmp(t)
  fs.copyFileSync(path.join(dir, 'transactions.ndjson'), path.join(elsewhere, 'forged.ndjson'))
  const manifest = JSON.parse(fs.readFileSync(path.join(dir, 'manifest.json'), 'utf8')) as Record<string, unknown>
  const names = [path.join(elsewhere, 'forged.ndjson'), path.relative(dir, path.join(elsewhere, 'forged.ndjson')), '../x/../' + path.basename(elsewhere) + '/forged.ndjson', '.', '']
  for (const name of names) {
    fs.writeFileSync(path.join(dir, 'manifest.json'), JSON.stringify({ ...manifest, file: name }))
    const v = await verifyExportDir(dir)
    t.equal(v.ok, false, `file ${JSON.stringify(name)} is refused`)
    t.match(v.findings[0], { line: 0, problem: 'unreadable', detail: /only a plain file name/ })
  }

  // A plain name, but the file is a symlink to the forged copy.
  fs.rmSync(path.join(dir, 'transactions.ndjson'))
  fs.symlinkSync(path.join(elsewhere, 'forged.ndjson'), path.join(dir, 'transactions.ndjson'))
  fs.writeFileSync(path.join(dir, 'manifest.json'), JSON.stringify(manifest))
  t.match((await verifyExportDir(dir)).findings[0], { problem: 'unreadable', detail: /not a plain file \(a symlink\)/ })

  fs.writeFileSync(path.join(dir, 'manifest.json'), JSON.stringify({ ...manifest, file: '/etc/passwd' }))
  const cli = await new Promise<{ code: number, out: string }>((resolve) => {
    execFile(process.execPath, ['bin/vgw.js', 'export', 'verify', dir], { cwd: ROOT, encoding: 'utf8' }, (err, stdout) => resolve({ code: err === null ? 0 : Number((err as { code?: number }).code), out: stdout }))
  })
  t.match(cli, { code: 1, out: /TAMPERED[\s\S]*file: unreadable: the manifest names "\/etc\/passwd"/ }, 'the CLI says so and exits 1')
})
