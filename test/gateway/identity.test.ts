import fs from 'node:fs'
import tls from 'node:tls'
import mqttPacket from 'mqtt-packet'
import t, { type Test } from 'tap'
import { revokeVehicle } from '../../certs/index.ts'
import type { TransactionRecord } from '../../store/index.ts'
import { logRowCount, startTestGateway, type TestGateway } from '../helpers/gateway.ts'
import type { VehicleCredentials } from '../helpers/pki.ts'
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


interface RawAttempt {
  /** The TLS handshake completed from the client's side. */
  handshake: boolean
  /** Every byte the gateway sent after the handshake. */
  received: Buffer
}

/**
 * A TLS connection that sends one MQTT CONNECT and records what comes back until the
 * gateway closes it: nothing at all for a refusal at TLS, a CONNACK for a refusal in MQTT.
 */
async function rawConnect (gw: TestGateway, creds: VehicleCredentials | null, clientId: string): Promise<RawAttempt> {
  return await new Promise((resolve, reject) => {
    const socket = tls.connect({ host: '127.0.0.1', port: gw.mqttPort, ca: gw.pki.ca, ...(creds !== null ? { key: creds.key, cert: creds.cert } : {}) })
    const chunks: Buffer[] = []
    let handshake = false
    const timer = setTimeout(() => {
      socket.destroy()
      reject(new Error(`the gateway kept the connection open (received ${Buffer.concat(chunks).toString('hex')})`))
    }, 5000)
    socket.on('secureConnect', () => {
      handshake = true
      socket.write(mqttPacket.generate({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: true, clientId, keepalive: 30 }))
    })
    socket.on('data', (d: Buffer) => chunks.push(d))
    socket.on('error', () => undefined) // a reset is how a refusal at TLS may look
    socket.on('close', () => {
      clearTimeout(timer)
      resolve({ handshake, received: Buffer.concat(chunks) })
    })
  })
}

/** The CONNACK return code in what the gateway sent, or null when it sent no CONNACK. */
function connackCode (bytes: Buffer): number | null {
  let code: number | null = null
  const parser = mqttPacket.parser({ protocolVersion: 4 })
  parser.on('packet', (p) => { if (p.cmd === 'connack') code = p.returnCode ?? null })
  parser.parse(bytes)
  return code
}

/** Refused at TLS: the connection is closed without a single MQTT byte, so no CONNACK at all. */
async function refusedAtTls (t: Test, gw: TestGateway, creds: VehicleCredentials | null, clientId: string): Promise<void> {
  const r = await rawConnect(gw, creds, clientId)
  t.equal(r.received.length, 0, `closed without any MQTT byte (got ${r.received.toString('hex')})`)
  t.equal(connackCode(r.received), null, 'no CONNACK')
}

async function logged (gw: TestGateway, code: string): Promise<boolean> {
  const deadline = Date.now() + 3000
  while (Date.now() < deadline) {
    if (gw.logs.some((l) => l.code === code)) return true
    await new Promise((resolve) => setTimeout(resolve, 25))
  }
  return false
}

t.test('no client certificate: refused at TLS (no CONNACK), nothing recorded', async (t) => {
  const gw = await startTestGateway(t)
  await refusedAtTls(t, gw, null, A)
  const r = await attemptConnect({ port: gw.mqttPort, ca: gw.pki.ca, creds: null, clientId: A })
  t.match(r, { connected: false, returnCode: null }, 'an MQTT client sees the connection closed, not a CONNACK')
  t.same(await allRows(gw, A), [])
  t.ok(await logged(gw, 'GW_ERR_CERT_MISSING'), 'logged with its code')
})

// Whether such a refusal also lands in the claimed VIN's log is the abuse suite's concern
// (#11 D: only peers that chain to our CA write rows); here: how it is refused.
t.test('a certificate from another CA: refused at TLS (no CONNACK), logged as untrusted', async (t) => {
  const gw = await startTestGateway(t)
  await refusedAtTls(t, gw, await gw.pki.foreignVehicle(A), A)
  t.ok(await logged(gw, 'GW_ERR_CERT_UNTRUSTED'), 'logged with its code')
  t.notOk(gw.gateway.edge.connections.isConnected(A))
})

t.test('an expired certificate: refused at TLS (no CONNACK) with GW_ERR_CERT_EXPIRED', async (t) => {
  const gw = await startTestGateway(t)
  const day = 24 * 3600_000
  const creds = await gw.pki.vehicle(A, 'DE', { notBefore: new Date(Date.now() - 30 * day), notAfter: new Date(Date.now() - day) })
  await refusedAtTls(t, gw, creds, A)
  const rows = await securityRows(gw, A)
  t.match(rows[0], { kind: 'SECURITY', type: 'certificate.refused', errorCode: 'GW_ERR_CERT_EXPIRED', status: 'denied' })
  t.equal((await allRows(gw, A)).length, 1, 'nothing else recorded')
})

t.test('a certificate that is not yet valid: refused at TLS (no CONNACK) with GW_ERR_CERT_EXPIRED', async (t) => {
  const gw = await startTestGateway(t)
  const day = 24 * 3600_000
  const creds = await gw.pki.vehicle(A, 'DE', { notBefore: new Date(Date.now() + day), notAfter: new Date(Date.now() + 365 * day) })
  await refusedAtTls(t, gw, creds, A)
  const rows = await securityRows(gw, A)
  t.match(rows[0], { type: 'certificate.refused', errorCode: 'GW_ERR_CERT_EXPIRED' })
  t.match(JSON.stringify(rows[0]?.details ?? {}), /NOT_YET_VALID/, 'the reason says not yet valid')
  t.equal((await allRows(gw, A)).length, 1, 'nothing else recorded')
  t.notOk(gw.gateway.edge.connections.isConnected(A))
})

t.test('a certificate from our CA whose CN is not a VIN: refused at TLS (no CONNACK), nothing recorded', async (t) => {
  const gw = await startTestGateway(t)
  const before = await logRowCount(gw)
  for (const cn of ['not-a-vin', 'WVWZZZ1JZXW00002O', 'WVWZZZ1JZXW00002']) {
    const creds = await gw.pki.anySubject(`CN=${cn}, C=DE`, cn)
    // The clientId equals the CN, so only the VIN check can refuse it.
    await refusedAtTls(t, gw, creds, cn)
  }
  t.ok(await logged(gw, 'GW_ERR_CERT_INVALID_VIN'), 'logged with its code')
  t.equal(await logRowCount(gw), before, 'no row in anyone\'s log')
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
  // The new gateway has its own PKI; this one is refused against the first gateway's CA files.
  await refusedAtTls(t, { ...gw, pki: gw0.pki }, creds, A)
  const rows = await securityRows(gw, A)
  t.match(rows[0], { errorCode: 'GW_ERR_CERT_REVOKED' })
  // A certificate of another vehicle from the same CA still works.
  const other = await gw0.pki.vehicle(B)
  const ok = await attemptConnect({ port: gw.mqttPort, ca: gw0.pki.ca, creds: other })
  t.equal(ok.connected, true)
})

t.test('certificate for A with clientId B: CONNACK 5 and a security event', async (t) => {
  const gw = await startTestGateway(t)
  const raw = await rawConnect(gw, await gw.pki.vehicle(A), B)
  t.equal(connackCode(raw.received), 5, 'refused in MQTT: a CONNACK with return code 5, after a completed handshake')
  t.ok(raw.handshake)
  const r = await attemptConnect({ port: gw.mqttPort, ca: gw.pki.ca, creds: await gw.pki.vehicle(A), clientId: B })
  t.equal(r.connected, false)
  t.equal(r.returnCode, 5)
  const rows = await securityRows(gw, A)
  t.match(rows[0], { type: 'client_id.mismatch', errorCode: 'GW_ERR_CLIENT_ID_MISMATCH' })
  t.same((await allRows(gw, A)).map((r) => r.kind), ['SECURITY', 'SECURITY'], 'one event per attempt, no connect recorded')
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
