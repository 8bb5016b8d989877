// Issue #20, 6: a CRL past its nextUpdate refuses every certificate of its CA (fail closed);
// a TLS session resumed from a ticket, which OpenSSL does not verify again, must be refused too.
import fs from 'node:fs'
import t from 'tap'
import { createCrl, loadDevAuthority } from '../../certs/index.ts'
import { logRowCount, startTestGateway, type TestGateway } from '../helpers/gateway.ts'
import { attempt } from '../helpers/tls-attempt.ts'

const A = 'WVWZZZ1JZXW002301'

async function securityCodes (gw: TestGateway, vin: string): Promise<string[]> {
  await logRowCount(gw)
  const res = await gw.api(`/v1/vehicles/${vin}/transactions?kind=SECURITY`)
  return (res.body as { items: Array<{ errorCode: string }> }).items.map((r) => r.errorCode)
}

t.test('a CRL past its nextUpdate refuses resumed sessions too, not only full handshakes (issue #20)', async (t) => {
  const gw = await startTestGateway(t)
  const { pki } = gw
  const creds = await pki.vehicle(A)
  const first = await attempt(gw.mqttPort, pki, creds)
  t.equal(first.connack, 0, 'accepted while the CRL is current')
  t.ok(first.session, 'with a session ticket')
  // The CA publishes no fresh CRL: the one installed is past its nextUpdate.
  const ca = await loadDevAuthority(pki.paths)
  fs.writeFileSync(pki.paths.crl + '.tmp', await createCrl(ca, [], new Date(Date.now() - 60_000)))
  fs.renameSync(pki.paths.crl + '.tmp', pki.paths.crl)
  const deadline = Date.now() + 10_000
  while ((await attempt(gw.mqttPort, pki, creds)).connack === 0) {
    if (Date.now() > deadline) throw new Error('the stale CRL was not loaded')
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
  t.pass('a full handshake is refused (fail closed)')
  const resumed = await attempt(gw.mqttPort, pki, creds, first.session as Buffer)
  t.equal(resumed.reused, true, 'TLS resumes the session (OpenSSL does not look at the CRL again)')
  t.equal(resumed.connack, null, 'but the gateway closes it before any MQTT answer')
  const codes = await securityCodes(gw, A)
  t.ok(codes.includes('GW_ERR_CERT_UNTRUSTED'), `with a GW_ERR_CERT_UNTRUSTED security event (${codes.join(', ')})`)
})
