import fs from 'node:fs'
import t from 'tap'
import { revokeVehicle } from '../../certs/index.ts'
import type { TransactionRecord } from '../../store/index.ts'
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts'
import { attemptConnect, connectVehicle, envelope, publishEnvelope } from '../helpers/vehicle.ts'

const A = 'WVWZZZ1JZXW000020'
const B = 'WVWZZZ1JZXW000021'

async function securityRows (gw: TestGateway, vin: string, atLeast = 1): Promise<TransactionRecord[]> {
  // Security events go through the commit batcher; give it a moment.
  for (let i = 0; i < 50; i++) {
    const page = await gw.store.transactions.listForVehicle({ vin, kind: 'SECURITY', limit: 100 })
    if (page.items.length >= atLeast) return page.items
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  return []
}

async function allRows (gw: TestGateway, vin: string): Promise<TransactionRecord[]> {
  await gw.gateway.log.flush()
  return (await gw.store.transactions.listForVehicle({ vin, limit: 100 })).items
}

t.test('no client certificate: refused at TLS, nothing recorded', async (t) => {
  const gw = await startTestGateway(t)
  const r = await attemptConnect({ port: gw.mqttPort, ca: gw.pki.ca, creds: null, clientId: A })
  t.equal(r.connected, false)
  t.same(await allRows(gw, A), [])
  t.ok(gw.logs.some((l) => l.code === 'GW_ERR_CERT_MISSING'), 'logged with its code')
})

t.test('a certificate from another CA: refused, security event for the claimed VIN', async (t) => {
  const gw = await startTestGateway(t)
  const r = await attemptConnect({ port: gw.mqttPort, ca: gw.pki.ca, creds: await gw.pki.foreignVehicle(A) })
  t.equal(r.connected, false)
  const rows = await securityRows(gw, A)
  t.equal(rows.length, 1)
  t.match(rows[0], { kind: 'SECURITY', type: 'certificate.refused', errorCode: 'GW_ERR_CERT_UNTRUSTED', status: 'denied' })
  t.equal((await allRows(gw, A)).length, 1, 'nothing else recorded')
})

t.test('an expired certificate: refused with GW_ERR_CERT_EXPIRED', async (t) => {
  const gw = await startTestGateway(t)
  const day = 24 * 3600_000
  const creds = await gw.pki.vehicle(A, 'DE', { notBefore: new Date(Date.now() - 30 * day), notAfter: new Date(Date.now() - day) })
  const r = await attemptConnect({ port: gw.mqttPort, ca: gw.pki.ca, creds })
  t.equal(r.connected, false)
  const rows = await securityRows(gw, A)
  t.match(rows[0], { errorCode: 'GW_ERR_CERT_EXPIRED' })
  t.equal((await allRows(gw, A)).length, 1, 'nothing else recorded')
})

t.test('a revoked certificate: refused with GW_ERR_CERT_REVOKED', async (t) => {
  const gw0 = await startTestGateway(t)
  const creds = await gw0.pki.vehicle(A)
  await revokeVehicle(gw0.pki.dir, A)
  // The CRL is read at start: a gateway started after the revocation refuses the certificate.
  await gw0.gateway.close()
  const gw = await startTestGateway(t, {
    VGW_TLS_CA: gw0.pki.paths.caCert, VGW_TLS_CERT: gw0.pki.paths.serverCert, VGW_TLS_KEY: gw0.pki.paths.serverKey, VGW_TLS_CRL: gw0.pki.paths.crl
  })
  t.ok(fs.readFileSync(gw0.pki.paths.crl, 'utf8').includes('X509 CRL'))
  const r = await attemptConnect({ port: gw.mqttPort, ca: gw0.pki.ca, creds })
  t.equal(r.connected, false)
  const rows = await securityRows(gw, A)
  t.match(rows[0], { errorCode: 'GW_ERR_CERT_REVOKED' })
  // A certificate of another vehicle from the same CA still works.
  const other = await gw0.pki.vehicle(B)
  const ok = await attemptConnect({ port: gw.mqttPort, ca: gw0.pki.ca, creds: other })
  t.equal(ok.connected, true)
})

t.test('certificate for A with clientId B: CONNACK 5 and a security event', async (t) => {
  const gw = await startTestGateway(t)
  const r = await attemptConnect({ port: gw.mqttPort, ca: gw.pki.ca, creds: await gw.pki.vehicle(A), clientId: B })
  t.equal(r.connected, false)
  t.equal(r.returnCode, 5)
  const rows = await securityRows(gw, A)
  t.match(rows[0], { type: 'client_id.mismatch', errorCode: 'GW_ERR_CLIENT_ID_MISMATCH' })
  t.same((await allRows(gw, A)).map((r) => r.kind), ['SECURITY'], 'no connect recorded')
})

t.test('B\'s certificate with clientId A while A is connected: refused, A stays connected', async (t) => {
  const gw = await startTestGateway(t)
  const carA = await connectVehicle(t, { port: gw.mqttPort, ca: gw.pki.ca, creds: await gw.pki.vehicle(A) })
  let aClosed = false
  carA.on('close', () => { aClosed = true })
  const r = await attemptConnect({ port: gw.mqttPort, ca: gw.pki.ca, creds: await gw.pki.vehicle(B), clientId: A })
  t.equal(r.connected, false)
  t.equal(r.returnCode, 5)
  await publishEnvelope(carA, A, envelope())
  t.equal(aClosed, false, 'A was not kicked')
  t.equal(carA.connected, true)
  t.match((await securityRows(gw, B))[0], { type: 'takeover.denied', errorCode: 'GW_ERR_CLIENT_ID_MISMATCH' })
  t.match((await securityRows(gw, A))[0], { type: 'takeover.denied' })
})

t.test('a second connection with A\'s own certificate takes the session over', async (t) => {
  const gw = await startTestGateway(t)
  const creds = await gw.pki.vehicle(A)
  const first = await connectVehicle(t, { port: gw.mqttPort, ca: gw.pki.ca, creds })
  const firstClosed = new Promise<void>((resolve) => first.once('close', () => resolve()))
  const second = await connectVehicle(t, { port: gw.mqttPort, ca: gw.pki.ca, creds })
  await firstClosed
  await publishEnvelope(second, A, envelope())
  t.equal(gw.gateway.edge.connections.isConnected(A), true)
})

t.test('a will message is refused with CONNACK 5 and recorded', async (t) => {
  const gw = await startTestGateway(t)
  const r = await attemptConnect({
    port: gw.mqttPort,
    ca: gw.pki.ca,
    creds: await gw.pki.vehicle(A),
    extra: { will: { topic: `vehicles/${A}/up`, payload: Buffer.from('bye'), qos: 1, retain: false } }
  })
  t.equal(r.connected, false)
  t.equal(r.returnCode, 5)
  t.match((await securityRows(gw, A))[0], { type: 'will.denied', errorCode: 'GW_ERR_WILL_DENIED' })
})
