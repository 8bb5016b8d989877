import { execFile } from 'node:child_process'
import t from 'tap'
import { testStore } from '../helpers/database.ts'
import { ROOT } from '../helpers/gateway-process.ts'

function vgw (args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number, out: string, err: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, ['bin/vgw.js', ...args], { cwd: ROOT, env: { ...process.env, ...env }, encoding: 'utf8' }, (error, stdout, stderr) => {
      resolve({ code: error === null ? 0 : Number((error as { code?: number }).code), out: stdout, err: stderr })
    })
  })
}

t.test('retention and hold commands against a database, audited', async (t) => {
  const { store, url } = await testStore(t)
  const env = { DATABASE_URL: url }
  t.match(await vgw(['retention', 'set', 'DE', '10y'], env), { code: 0, out: /DE: 10y \(3650 days\)/ })
  t.match(await vgw(['retention', 'set', 'default', '7y'], env), { code: 0 })
  t.match(await vgw(['retention', 'list'], env), { code: 0, out: /default\s+7y[\s\S]*DE\s+10y/ })
  t.match(await vgw(['retention', 'set', 'DE', 'forever'], env), { code: 2, err: /period/ })
  t.match(await vgw(['hold', 'add', '--vin', 'WVWZZZ1JZXW000800', '--reason', 'case 123'], env), { code: 0, out: /hold .* on WVWZZZ1JZXW000800: case 123/ })
  t.match(await vgw(['hold', 'list'], env), { code: 0, out: /WVWZZZ1JZXW000800 .* case 123/ })
  t.match(await vgw(['hold', 'release', '--vin', 'WVWZZZ1JZXW000800'], env), { code: 0, out: /released 1 hold/ })
  t.match(await vgw(['hold', 'release', '--vin', 'WVWZZZ1JZXW000800'], env), { code: 1, err: /GW_ERR_HOLD_NOT_FOUND/ })
  t.match(await vgw(['hold', 'add', '--vin', 'BAD', '--reason', 'x'], env), { code: 2, err: /not a valid VIN/ })
  t.match(await vgw(['retention', 'run'], env), { code: 0, out: /"totalRemoved": 0/ })
  t.match(await vgw(['export', '--vin', 'WVWZZZ1JZXW000800', '--from', '2026-01-01'], env), { code: 2, err: /--to/ })
  const actions = (await store.lifecycle.auditTrail(20)).map((a) => a.action)
  t.same(actions.sort(), ['hold.add', 'hold.release', 'retention.run', 'retention.set', 'retention.set'])
})
