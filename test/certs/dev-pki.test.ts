import { X509Certificate, createPrivateKey } from 'node:crypto'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import t, { type Test } from 'tap'
import { crlSerials, initDevPki, issueVehicleCertificate, revokeVehicle } from '../../certs/index.ts'

function tmp (t: Test): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vgw-pki-'))
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }))
  return dir
}

t.test('init creates CA, server certificate for localhost and 127.0.0.1, and an empty CRL; a second init keeps them', async (t) => {
  const dir = tmp(t)
  const first = await initDevPki(dir)
  t.equal(first.created.length, 3)
  const server = new X509Certificate(fs.readFileSync(first.paths.serverCert))
  const ca = new X509Certificate(fs.readFileSync(first.paths.caCert))
  t.ok(server.verify(ca.publicKey), 'signed by the CA')
  t.ok(server.checkHost('localhost'))
  t.ok(server.checkIP('127.0.0.1'))
  t.ok(ca.ca)
  const before = fs.readFileSync(first.paths.caCert, 'utf8')
  const second = await initDevPki(dir)
  t.same(second.created, [])
  t.equal(fs.readFileSync(first.paths.caCert, 'utf8'), before)
})

t.test('issue makes an ECDSA P-256 key and a certificate with CN=VIN and C=market', async (t) => {
  const dir = tmp(t)
  await initDevPki(dir)
  const out = path.join(dir, 'out')
  const issued = await issueVehicleCertificate(dir, { vin: 'WVWZZZ1JZXW000080', market: 'JP', outDir: out })
  t.equal(issued.keyFile, path.join(out, 'WVWZZZ1JZXW000080.key'))
  t.equal(issued.certFile, path.join(out, 'WVWZZZ1JZXW000080.crt'))
  const key = createPrivateKey(fs.readFileSync(issued.keyFile))
  t.equal(key.asymmetricKeyType, 'ec')
  t.equal(key.asymmetricKeyDetails?.namedCurve, 'prime256v1')
  const cert = new X509Certificate(fs.readFileSync(issued.certFile))
  t.match(cert.subject, /CN=WVWZZZ1JZXW000080/)
  t.match(cert.subject, /C=JP/)
  t.equal((fs.statSync(issued.keyFile).mode & 0o077), 0, 'the key is private to its owner')
})

t.test('issue refuses an invalid VIN or market with a clear message', async (t) => {
  const dir = tmp(t)
  await initDevPki(dir)
  await t.rejects(issueVehicleCertificate(dir, { vin: 'WVWZZZ1JZXW00000I', market: 'DE' }), { code: 'GW_ERR_INVALID_VIN', message: /not a valid VIN/ })
  await t.rejects(issueVehicleCertificate(dir, { vin: 'SHORT', market: 'DE' }), { code: 'GW_ERR_INVALID_VIN' })
  await t.rejects(issueVehicleCertificate(dir, { vin: 'WVWZZZ1JZXW000080', market: 'Germany' }), { code: 'GW_ERR_VALIDATION' })
})

t.test('revoke lists every certificate of the VIN in the CRL', async (t) => {
  const dir = tmp(t)
  const { paths } = await initDevPki(dir)
  const a = await issueVehicleCertificate(dir, { vin: 'WVWZZZ1JZXW000081', market: 'DE' })
  const b = await issueVehicleCertificate(dir, { vin: 'WVWZZZ1JZXW000081', market: 'DE' })
  const other = await issueVehicleCertificate(dir, { vin: 'WVWZZZ1JZXW000082', market: 'DE' })
  t.same((await revokeVehicle(dir, 'WVWZZZ1JZXW000081')).sort(), [a.serialNumber, b.serialNumber].sort())
  const listed = crlSerials(fs.readFileSync(paths.crl, 'utf8'))
  t.same(listed.sort(), [a.serialNumber, b.serialNumber].sort())
  t.notOk(listed.includes(other.serialNumber))
  await t.rejects(revokeVehicle(dir, 'WVWZZZ1JZXW000083'), { code: 'GW_ERR_VEHICLE_NOT_FOUND' })
})
