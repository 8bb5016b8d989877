// #11 D: nobody writes into a vehicle's log without a certificate from our CA, and a
// vehicle that repeats a denied action cannot fill another vehicle's (or its own) log.
import tls from 'node:tls'
import t from 'tap'
import { createAuthority, issueLeaf, loadAuthority } from '../../certs/index.ts'
import type { TransactionRecord } from '../../store/index.ts'
import { logRowCount, startTestGateway, type TestGateway } from '../helpers/gateway.ts'
import type { VehicleCredentials } from '../helpers/pki.ts'
import { attemptConnect, connectVehicle, envelope, publishEnvelope } from '../helpers/vehicle.ts'

const VICTIM = 'WVWZZZ1JZXW000040'
const ATTACKER = 'WVWZZZ1JZXW000041'
const DAY = 86_400_000

async function rowsOf (gw: TestGateway, vin: string): Promise<TransactionRecord[]> {
  await gw.gateway.log.flush()
  return (await gw.store.transactions.listForVehicle({ vin, limit: 1000 })).items
}


/** A TLS handshake with this certificate, waiting until the gateway closes the connection (it refuses the peer). */
async function handshakeUntilClosed (gw: TestGateway, creds: VehicleCredentials): Promise<void> {
  await new Promise<void>((resolve) => {
    const socket = tls.connect({ host: '127.0.0.1', port: gw.mqttPort, ca: gw.pki.ca, key: creds.key, cert: creds.cert })
    socket.setTimeout(5000, () => socket.destroy())
    socket.on('error', () => undefined)
    socket.on('close', () => resolve())
  })
}

/** The certificates an outsider can make for a VIN without our CA's key. */
async function outsiderCertificates (gw: TestGateway, vin: string): Promise<Record<string, VehicleCredentials>> {
  const selfSigned = await createAuthority(vin, 1)
  const foreign = await createAuthority('someone else\'s CA', 1)
  // Our CA certificate is public (every vehicle has it): an issuer name and key identifier
  // that match ours, signed with another key. Expired or not yet valid, OpenSSL reports the
  // date and not the bad signature.
  const forger = await loadAuthority({ certPem: gw.pki.ca, keyPem: foreign.keyPem })
  const expired = await issueLeaf(forger, { subject: `CN=${vin}, C=DE`, clientAuth: true, notBefore: new Date(Date.now() - 10 * DAY), notAfter: new Date(Date.now() - DAY) })
  const notYetValid = await issueLeaf(forger, { subject: `CN=${vin}, C=DE`, clientAuth: true, notBefore: new Date(Date.now() + DAY), notAfter: new Date(Date.now() + 10 * DAY) })
  return {
    'self-signed': { vin, key: selfSigned.keyPem, cert: selfSigned.certPem },
    'another CA': await gw.pki.foreignVehicle(vin),
    'forged issuer, expired': { vin, key: expired.keyPem, cert: expired.certPem },
    'forged issuer, not yet valid': { vin, key: notYetValid.keyPem, cert: notYetValid.certPem }
  }
}

t.test('handshakes with certificates not from our CA claiming a VIN leave that vehicle\'s log unchanged', async (t) => {
  const gw = await startTestGateway(t)
  const victim = await connectVehicle(t, { port: gw.mqttPort, ca: gw.pki.ca, creds: await gw.pki.vehicle(VICTIM) })
  await publishEnvelope(victim, VICTIM, envelope())
  const before = await rowsOf(gw, VICTIM)
  const total = await logRowCount(gw)
  t.ok(before.length >= 2, 'the victim has its connect and uplink rows')

  for (const [kind, creds] of Object.entries(await outsiderCertificates(gw, VICTIM))) {
    for (let i = 0; i < 15; i++) await handshakeUntilClosed(gw, creds)
    t.same((await rowsOf(gw, VICTIM)).map((r) => r.id), before.map((r) => r.id), `${kind}: 15 handshakes, the victim's log unchanged`)
  }
  t.equal(await logRowCount(gw), total, 'no row written anywhere')
  t.equal(gw.logs.filter((l) => l.msg === 'TLS peer refused').length, 1, 'the 60 refusals from one address: one sampled log line')
  t.equal(gw.logs.filter((l) => l.msg === 'TLS peer refused' && l.code !== 'GW_ERR_CERT_UNTRUSTED').length, 0, 'logged as untrusted, not as expired')
  t.ok(victim.connected, 'the victim stays connected')
})

t.test('an expired certificate from our CA still writes its row (the bound above is not a blanket ban)', async (t) => {
  const gw = await startTestGateway(t)
  const expired = await gw.pki.vehicle(VICTIM, 'DE', { notBefore: new Date(Date.now() - 10 * DAY), notAfter: new Date(Date.now() - DAY) })
  await handshakeUntilClosed(gw, expired)
  const deadline = Date.now() + 3000
  let rows: TransactionRecord[] = []
  while (rows.length === 0 && Date.now() < deadline) rows = (await rowsOf(gw, VICTIM)).filter((r) => r.kind === 'SECURITY')
  t.match(rows, [{ type: 'certificate.refused', errorCode: 'GW_ERR_CERT_EXPIRED' }])
})

t.test('a takeover loop adds a bounded number of rows, then one summary row per vehicle', async (t) => {
  let offset = 0
  const gw = await startTestGateway(t, { VGW_SECURITY_EVENTS_PER_MINUTE: '5' }, { now: () => Date.now() + offset })
  await connectVehicle(t, { port: gw.mqttPort, ca: gw.pki.ca, creds: await gw.pki.vehicle(VICTIM) })
  const attacker = await gw.pki.vehicle(ATTACKER)
  const victimBefore = (await rowsOf(gw, VICTIM)).length

  for (let i = 0; i < 40; i++) {
    const r = await attemptConnect({ port: gw.mqttPort, ca: gw.pki.ca, creds: attacker, clientId: VICTIM })
    if (r.returnCode !== 5) t.fail(`attempt ${i}: expected CONNACK 5, got ${JSON.stringify(r)}`)
  }
  const security = async (vin: string): Promise<TransactionRecord[]> => (await rowsOf(gw, vin)).filter((r) => r.kind === 'SECURITY')
  t.equal((await security(VICTIM)).length, 5, '40 takeover attempts: 5 rows in the victim\'s log')
  t.equal((await security(ATTACKER)).length, 5, 'and 5 in the attacker\'s')
  t.equal((await rowsOf(gw, VICTIM)).length, victimBefore + 5)
  const lines = gw.logs.filter((l) => l.vin === VICTIM && typeof l.msg === 'string' && l.msg.startsWith('security event'))
  t.ok(lines.length <= 6, `log lines about the victim are bounded too (${lines.length})`)

  offset = 61_000 // the minute is over
  const deadline = Date.now() + 5000
  let summary: TransactionRecord | undefined
  while (summary === undefined && Date.now() < deadline) {
    summary = (await security(VICTIM)).find((r) => r.type === 'security.suppressed')
    if (summary === undefined) await new Promise((resolve) => setTimeout(resolve, 100))
  }
  t.match(summary, { errorCode: 'GW_ERR_CLIENT_ID_MISMATCH', details: { suppressed: 35, byCode: { GW_ERR_CLIENT_ID_MISMATCH: 35 }, byType: { 'takeover.denied': 35 }, limitPerMinute: 5 } })
  t.match((await security(ATTACKER)).filter((r) => r.type === 'security.suppressed'), [{ details: { suppressed: 35 } }])
  t.match(gw.logs.filter((l) => l.msg === 'security events suppressed' && l.vin === VICTIM), [{ suppressed: 35 }])

  // A new window: the next event is written again.
  await attemptConnect({ port: gw.mqttPort, ca: gw.pki.ca, creds: attacker, clientId: VICTIM })
  t.equal((await security(VICTIM)).length, 7, 'the next minute writes rows again (5 + summary + 1)')
})
