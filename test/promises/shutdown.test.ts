import { execFile } from 'node:child_process'
import net from 'node:net'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import pg from 'pg'
import t, { type Test } from 'tap'
import { gatewayEnv, ROOT, signalGroup, startVgw, type GatewayProcess } from '../helpers/gateway-process.ts'
import { startTestGateway } from '../helpers/gateway.ts'
import { sharedDeployment } from '../helpers/shared-database.ts'
import { connectVehicle, envelope } from '../helpers/vehicle.ts'
import { encodeEnvelope } from '../../protocol/index.ts'

const VIN = 'WVWZZZ1JZXW002000'
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

async function waitFor (predicate: () => boolean, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs
  while (!predicate() && Date.now() < deadline) await sleep(25)
  return predicate()
}

/** A session that holds the log's table locked, so every commit waits: a drain that cannot finish on its own. */
async function lockTheLog (t: Test, url: string): Promise<() => Promise<void>> {
  const locker = new pg.Client({ connectionString: url })
  await locker.connect()
  await locker.query('BEGIN')
  await locker.query('LOCK TABLE transactions IN ACCESS EXCLUSIVE MODE')
  let released = false
  const release = async (): Promise<void> => {
    if (released) return
    released = true
    await locker.query('ROLLBACK')
    await locker.end()
  }
  t.teardown(release)
  return release
}

const lines = (gw: GatewayProcess, msg: string): string[] => gw.output.filter((l) => l.includes(`"msg":"${msg}"`))

t.test('/ready answers 503 while the gateway drains', async (t) => {
  const gw = await startTestGateway(t, { VGW_SHUTDOWN_TIMEOUT_MS: '30000' })
  t.equal((await gw.api('/ready')).status, 200)
  const car = await connectVehicle(t, { port: gw.mqttPort, ca: gw.pki.ca, creds: await gw.pki.vehicle(VIN) })
  const release = await lockTheLog(t, gw.dbUrl)
  car.publish(`vehicles/${VIN}/up`, Buffer.from(encodeEnvelope(envelope())), { qos: 1 })
  await waitFor(() => gw.gateway.log.pending > 0, 5000)
  // The database answers (only the log is locked): what makes the gateway not ready is the drain alone.
  const closing = gw.gateway.close()
  const during: Array<number | 'refused'> = []
  for (let i = 0; i < 10; i++) {
    try {
      during.push((await gw.api('/ready')).status)
    } catch {
      during.push('refused') // a listener already closed is as good a "no" for a balancer
    }
    await sleep(50)
  }
  t.same(during.filter((s) => s !== 503 && s !== 'refused'), [], `never ready while draining: ${during.join(', ')}`)
  const answered = await gw.api('/ready').catch(() => null)
  if (answered !== null) t.match(answered.body, { error: { code: 'GW_ERR_NOT_READY', message: /shutting down/ } }, 'and says why')
  await release()
  await closing
})

t.test('a second signal exits at once: no drain, no second shutdown', async (t) => {
  const { url, pki } = await sharedDeployment(t)
  // A drain bound far longer than the test, so only the second signal can end it quickly.
  const gw = await startVgw(gatewayEnv(pki.paths, { DATABASE_URL: url, VGW_SHUTDOWN_TIMEOUT_MS: '120000', VGW_DB_STATEMENT_TIMEOUT_MS: '120000' }))
  t.teardown(() => signalGroup(gw, 'SIGKILL'))
  const car = await connectVehicle(t, { port: gw.mqttPort, ca: pki.ca, creds: await pki.vehicle(VIN) })
  await lockTheLog(t, url)
  car.publish(`vehicles/${VIN}/up`, Buffer.from(encodeEnvelope(envelope())), { qos: 1 })
  await sleep(300)

  signalGroup(gw, 'SIGTERM')
  t.ok(await waitFor(() => lines(gw, 'draining').length > 0, 5000), 'the first signal starts the drain')
  await sleep(1000)
  t.equal(gw.child.exitCode, null, 'the drain waits for the commit it cannot make')
  const secondAt = Date.now()
  signalGroup(gw, 'SIGTERM')
  const exit = await Promise.race([gw.exited, sleep(5000).then(() => null)])
  t.not(exit, null, `exited ${Date.now() - secondAt} ms after the second signal`)
  t.equal(exit?.code, 1, 'with exit code 1')
  await sleep(200) // its last lines may still be in the pipe
  t.equal(lines(gw, 'second signal: exiting without drain').length, 1)
  t.equal(lines(gw, 'draining').length, 1, 'the shutdown ran once')
  t.same([...lines(gw, 'stopped'), ...lines(gw, 'gateway closed')], [], 'and did not finish a drain')
})

t.test('a second vgw start on the same data directory is refused with a clear message', async (t) => {
  const { pki } = await sharedDeployment(t)
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'vgw-datadir-'))
  fs.chmodSync(dataDir, 0o755)
  t.teardown(() => fs.rmSync(dataDir, { recursive: true, force: true }))
  const env = gatewayEnv(pki.paths, { VGW_DATA_DIR: dataDir })
  delete env.DATABASE_URL
  const first = await startVgw(env)
  t.teardown(async () => {
    signalGroup(first, 'SIGTERM')
    await first.exited
  })

  const second = await new Promise<{ code: number | null, stderr: string }>((resolve) => {
    execFile(process.execPath, [path.join(ROOT, 'bin/vgw.js'), 'start'], { cwd: ROOT, env, encoding: 'utf8', timeout: 60_000 }, (err, _stdout, stderr) => {
      resolve({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : null, stderr })
    })
  })
  t.equal(second.code, 2, 'exit code 2')
  t.match(second.stderr, new RegExp(`GW_ERR_CONFIG_INVALID: another vgw \\(pid ${first.child.pid ?? 0}\\) is using ${dataDir}`), 'names the running gateway and the directory')
  const ready = await fetch(`http://127.0.0.1:${first.httpPort}/ready`)
  t.equal(ready.status, 200, 'the first gateway and its database are untouched')

  signalGroup(first, 'SIGTERM')
  t.equal((await first.exited).code, 0)
  t.notOk(fs.existsSync(path.join(dataDir, 'vgw.pid')), 'the lock is released on a clean stop')
})

t.test('an idle keep-alive HTTP connection does not hold the drain', async (t) => {
  const gw = await startTestGateway(t)
  // A client that opened a connection and never sent a request: before, close() waited for the 72 s keep-alive timeout.
  const idle = net.connect(gw.httpPort, '127.0.0.1')
  idle.on('error', () => undefined)
  t.teardown(() => { idle.destroy() })
  await new Promise<void>((resolve) => idle.once('connect', () => resolve()))
  const started = Date.now()
  const closed = await Promise.race([gw.gateway.close().then(() => true), sleep(20_000).then(() => false)])
  t.ok(closed, `the gateway closed in ${Date.now() - started} ms with an idle connection open (bound 20 s, keep-alive 72 s)`)
})
