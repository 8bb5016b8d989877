import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import t from 'tap'
import { createAuthority, createCrl, createIntermediate, issueLeaf, loadAuthority, loadDevAuthority } from '../../certs/index.ts'
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts'
import { revokeWithCli } from './revoke-cli.ts'
import { attemptConnect, closed, connectVehicle, envelope, publishEnvelope } from '../helpers/vehicle.ts'

const A = 'WVWZZZ1JZXW000201'
const B = 'WVWZZZ1JZXW000202'

async function until (what: string, check: () => Promise<boolean> | boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!await check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
}

async function securityRows (gw: TestGateway, vin: string): Promise<Array<{ errorCode: string, type: string }>> {
  const res = await gw.api(`/v1/vehicles/${vin}/transactions?kind=SECURITY`)
  return (res.body as { items: Array<{ errorCode: string, type: string }> }).items
}

t.test('a vehicle revoked with the CLI is disconnected without a restart and cannot come back; another stays', async (t) => {
  const gw = await startTestGateway(t)
  const credsA = await gw.pki.vehicle(A)
  const credsB = await gw.pki.vehicle(B)
  const carA = await connectVehicle(t, { port: gw.mqttPort, ca: gw.pki.ca, creds: credsA })
  const carB = await connectVehicle(t, { port: gw.mqttPort, ca: gw.pki.ca, creds: credsB })
  const started = performance.now()
  const gone = closed(carA, 10_000)
  const cliMs = await revokeWithCli(gw.pki.dir, A)
  await gone
  const totalMs = performance.now() - started
  t.comment(`revocation: vgw certs revoke took ${Math.round(cliMs)} ms; revoke command start to disconnect ${Math.round(totalMs)} ms; CRL written to disconnect ${Math.round(totalMs - cliMs)} ms`)
  t.ok(totalMs < 10_000, 'closed within 10 s of the command')
  t.ok(carB.connected, 'the other vehicle is untouched')
  await publishEnvelope(carB, B, envelope())
  t.pass('and its uplinks are still acknowledged')
  const again = await attemptConnect({ port: gw.mqttPort, ca: gw.pki.ca, creds: credsA })
  t.equal(again.connected, false, 'the revoked vehicle cannot reconnect')
  await until('the security event', async () => (await securityRows(gw, A)).some((r) => r.type === 'certificate.revoked' && r.errorCode === 'GW_ERR_CERT_REVOKED'))
  t.pass('a GW_ERR_CERT_REVOKED security event is in the vehicle\'s log')
})

t.test('a connected vehicle is disconnected when its certificate expires', async (t) => {
  const gw = await startTestGateway(t)
  const creds = await gw.pki.vehicle(A, 'DE', { notBefore: new Date(Date.now() - 60_000), notAfter: new Date(Date.now() + 2500) })
  const car = await connectVehicle(t, { port: gw.mqttPort, ca: gw.pki.ca, creds })
  await closed(car, 8000)
  t.pass('closed at expiry')
  await until('the security event', async () => (await securityRows(gw, A)).some((r) => r.type === 'certificate.expired' && r.errorCode === 'GW_ERR_CERT_EXPIRED'))
  t.pass('with a GW_ERR_CERT_EXPIRED security event')
})

t.test('an intermediate CA: CRLs of both CAs in one file, revoking the intermediate closes its vehicles', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vgw-test-chain-'))
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }))
  const rootPem = await createAuthority('vgw test root', 1, 1)
  const root = await loadAuthority(rootPem)
  const mid = await createIntermediate(root, 'vgw test intermediate', 1)
  const midAuthority = await loadAuthority(mid)
  const server = await issueLeaf(root, { subject: 'CN=localhost', serverNames: { dns: ['localhost'], ips: ['127.0.0.1'] }, clientAuth: false })
  const underMid = await issueLeaf(midAuthority, { subject: `CN=${A}, C=DE`, clientAuth: true })
  const underRoot = await issueLeaf(root, { subject: `CN=${B}, C=DE`, clientAuth: true })
  const file = (name: string, content: string): string => { fs.writeFileSync(path.join(dir, name), content); return path.join(dir, name) }
  const crlFile = path.join(dir, 'crl.pem')
  const writeCrls = async (rootRevoked: string[], midRevoked: string[]): Promise<void> => {
    fs.writeFileSync(crlFile + '.tmp', await createCrl(root, rootRevoked) + '\n' + await createCrl(midAuthority, midRevoked) + '\n')
    fs.renameSync(crlFile + '.tmp', crlFile)
  }
  await writeCrls([], [])
  const gw = await startTestGateway(t, {
    VGW_TLS_CA: file('ca.crt', rootPem.certPem + '\n' + mid.certPem + '\n'),
    VGW_TLS_CRL: crlFile,
    VGW_TLS_CERT: file('server.crt', server.certPem),
    VGW_TLS_KEY: file('server.key', server.keyPem)
  })
  const credsA = { vin: A, key: underMid.keyPem, cert: underMid.certPem }
  const car = await connectVehicle(t, { port: gw.mqttPort, ca: rootPem.certPem, creds: credsA })
  const other = await connectVehicle(t, { port: gw.mqttPort, ca: rootPem.certPem, creds: { vin: B, key: underRoot.keyPem, cert: underRoot.certPem } })
  const gone = closed(car, 10_000)
  await writeCrls([mid.serialNumber], [])
  await gone
  t.pass('the vehicle under the revoked intermediate was closed')
  t.ok(other.connected, 'a vehicle of the root CA stays')
  const again = await attemptConnect({ port: gw.mqttPort, ca: rootPem.certPem, creds: credsA })
  t.equal(again.connected, false, 'and cannot reconnect')
})

t.test('a CRL past its nextUpdate is reported by /ready and in the log', async (t) => {
  const gw = await startTestGateway(t)
  t.equal((await gw.api('/ready', { key: null })).status, 200)
  const ca = await loadDevAuthority(gw.pki.paths)
  fs.writeFileSync(gw.pki.paths.crl + '.tmp', await createCrl(ca, [], new Date(Date.now() - 60_000)))
  fs.renameSync(gw.pki.paths.crl + '.tmp', gw.pki.paths.crl)
  await until('/ready to report the CRL', async () => (await gw.api('/ready', { key: null })).status === 503)
  const ready = await gw.api('/ready', { key: null })
  t.match(JSON.stringify(ready.body), /nextUpdate/, '/ready names the stale revocation list')
  t.ok(gw.logs.some((l) => l.level >= 50 && /nextUpdate/.test(l.msg)), 'an error line in the log')
})

t.test('SIGHUP-style reload re-reads the file even when fs.watch said nothing', async (t) => {
  const gw = await startTestGateway(t)
  const creds = await gw.pki.vehicle(A)
  const car = await connectVehicle(t, { port: gw.mqttPort, ca: gw.pki.ca, creds })
  const gone = closed(car, 10_000)
  await revokeWithCli(gw.pki.dir, A)
  await gw.gateway.edge.revocation.reload('signal')
  await gone
  t.pass('closed')
})
