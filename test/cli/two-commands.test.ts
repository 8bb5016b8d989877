import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import t from 'tap'
import { ROOT, signalGroup, spawnGateway } from '../helpers/gateway-process.ts'

const SKIP = new Set(['node_modules', '.data', '.git', '.tap', 'coverage'])

/** A clean copy of the project: sources only, no data, no certificates, dependencies linked. */
function cleanCopy (): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vgw-fresh-'))
  fs.chmodSync(dir, 0o755)
  fs.cpSync(ROOT, dir, {
    recursive: true,
    filter: (src) => {
      const rel = path.relative(ROOT, src)
      return !SKIP.has(rel.split(path.sep)[0] ?? '') && rel !== path.join('certs', 'dev')
    }
  })
  fs.symlinkSync(path.join(ROOT, 'node_modules'), path.join(dir, 'node_modules'))
  return dir
}

async function waitFor (predicate: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!predicate() && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50))
}

t.test('npm start on a clean copy: embedded database, dev certificates, admin key, health, clean SIGTERM', async (t) => {
  const dir = cleanCopy()
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }))
  const env: NodeJS.ProcessEnv = { ...process.env, VGW_HOST: '127.0.0.1', VGW_MQTT_PORT: '0', VGW_HTTP_PORT: '0' }
  for (const k of Object.keys(env)) if (k === 'DATABASE_URL' || k.startsWith('VGW_TLS_') || k === 'VGW_DATA_DIR') delete env[k]

  const started = Date.now()
  const gw = await spawnGateway('npm', ['start'], env, dir, 90_000)
  t.teardown(() => signalGroup(gw, 'SIGKILL'))
  const health = await fetch(`http://127.0.0.1:${gw.httpPort}/health`)
  t.equal(health.status, 200)
  t.ok(Date.now() - started < 90_000, `healthy ${Date.now() - started} ms after npm start`)
  t.equal((await fetch(`http://127.0.0.1:${gw.httpPort}/ready`)).status, 200)

  const adminKey = fs.readFileSync(path.join(dir, '.data/admin.key'), 'utf8').trim()
  t.match(adminKey, /^vgw_/)
  t.notOk(gw.output.some((l) => l.includes(adminKey)), 'the admin key is not printed: stdout is not a terminal (a log pipeline)')
  t.ok(gw.output.some((l) => l.includes('admin key created in')), 'where to find it is')
  t.equal(fs.statSync(path.join(dir, '.data/admin.key')).mode & 0o777, 0o600, 'admin.key is readable by its owner only')
  for (const f of ['ca.crt', 'ca.key', 'server.crt', 'server.key', 'crl.pem']) t.ok(fs.existsSync(path.join(dir, 'certs/dev', f)), `certs/dev/${f}`)
  const vehicle = await fetch(`http://127.0.0.1:${gw.httpPort}/v1/vehicles/WVWZZZ1JZXW000001`, { headers: { authorization: `Bearer ${adminKey}` } })
  t.equal(vehicle.status, 404, 'the admin key works')

  const stopAsked = Date.now()
  signalGroup(gw, 'SIGTERM')
  await gw.exited
  await waitFor(() => gw.output.some((l) => l.includes('"msg":"stopped"')), 20_000)
  t.ok(gw.output.some((l) => l.includes('"msg":"stopped"')), `SIGTERM drained and stopped it in ${Date.now() - stopAsked} ms`)
  t.notOk(fs.existsSync(path.join(dir, '.data/pg/postmaster.pid')), 'the embedded PostgreSQL stopped')
  t.notOk(fs.existsSync(path.join(dir, '.data/vgw.pid')))

  const caBefore = fs.readFileSync(path.join(dir, 'certs/dev/ca.crt'), 'utf8')
  const again = await spawnGateway('npm', ['start'], env, dir, 90_000)
  t.notOk(again.output.some((l) => l.includes('Admin API key')), 'a second start creates no new key')
  const reused = await fetch(`http://127.0.0.1:${again.httpPort}/v1/vehicles/WVWZZZ1JZXW000001`, { headers: { authorization: `Bearer ${adminKey}` } })
  t.equal(reused.status, 404, 'and the first key still works')
  t.equal(fs.readFileSync(path.join(dir, 'certs/dev/ca.crt'), 'utf8'), caBefore, 'certificates reused')
  signalGroup(again, 'SIGTERM')
  await again.exited
  await waitFor(() => again.output.some((l) => l.includes('"msg":"stopped"')), 20_000)
  t.ok(again.output.some((l) => l.includes('"msg":"stopped"')))
})

t.test('a bad setting stops start-up with a message naming it', async (t) => {
  const dir = cleanCopy()
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }))
  const { spawnSync } = await import('node:child_process')
  const r = spawnSync(process.execPath, ['bin/vgw.js', 'start'], { cwd: dir, env: { ...process.env, VGW_MQTT_PORT: 'eighty' }, encoding: 'utf8' })
  t.equal(r.status, 2)
  t.match(r.stderr, /GW_ERR_CONFIG_INVALID: VGW_MQTT_PORT \(--mqtt-port\) = "eighty"/)
})

t.test('vgw start without VGW_TLS_* refuses to start unless --dev-pki is given, and says so', async (t) => {
  const dir = cleanCopy()
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }))
  const { spawnSync } = await import('node:child_process')
  const env: NodeJS.ProcessEnv = { ...process.env, VGW_HOST: '127.0.0.1', VGW_MQTT_PORT: '0', VGW_HTTP_PORT: '0' }
  for (const k of Object.keys(env)) if (k.startsWith('VGW_TLS_')) delete env[k]
  const r = spawnSync(process.execPath, ['bin/vgw.js', 'start'], { cwd: dir, env, encoding: 'utf8', timeout: 60_000 })
  t.equal(r.status, 2)
  t.match(r.stderr, /GW_ERR_CONFIG_INVALID: no TLS files configured: set VGW_TLS_CA, VGW_TLS_CERT, VGW_TLS_KEY and VGW_TLS_CRL.*or pass --dev-pki/)
  t.notOk(fs.existsSync(path.join(dir, 'certs/dev/ca.key')), 'no dev CA was made')
  t.notOk(fs.existsSync(path.join(dir, '.data')), 'nothing was started')
})
