import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import type { Test } from 'tap'
import { createAuthority, devPkiPaths, initDevPki, issueLeaf, issueVehicleCertificate, loadAuthority, loadDevAuthority, type DevPkiPaths } from '../../certs/index.ts'

export interface VehicleCredentials {
  vin: string
  key: string
  cert: string
}

export interface TestPki {
  dir: string
  paths: DevPkiPaths
  ca: string
  /** A vehicle certificate from the dev CA. */
  vehicle(vin: string, market?: string, validity?: { notBefore: Date, notAfter: Date }): Promise<VehicleCredentials>
  /** A certificate with the same subject from a CA the gateway does not trust. */
  foreignVehicle(vin: string): Promise<VehicleCredentials>
  /** A client certificate from the dev CA with any subject (e.g. a CN that is not a VIN); `vin` is the CN as given. */
  anySubject(subject: string, cn: string): Promise<VehicleCredentials>
}

/** A dev PKI of its own in a temporary directory, removed at teardown. */
export async function testPki (t: Test): Promise<TestPki> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vgw-test-pki-'))
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }))
  const { paths } = await initDevPki(dir)
  let foreign: Awaited<ReturnType<typeof loadAuthority>> | null = null
  return {
    dir,
    paths,
    ca: fs.readFileSync(paths.caCert, 'utf8'),
    async vehicle (vin, market = 'DE', validity) {
      const issued = await issueVehicleCertificate(dir, { vin, market, ...(validity ?? {}) })
      return { vin, key: issued.keyPem, cert: issued.certPem }
    },
    async foreignVehicle (vin) {
      foreign ??= await loadAuthority(await createAuthority('someone else\'s CA', 1))
      const leaf = await issueLeaf(foreign, { subject: `CN=${vin}, C=DE`, clientAuth: true })
      return { vin, key: leaf.keyPem, cert: leaf.certPem }
    },
    async anySubject (subject, cn) {
      const leaf = await issueLeaf(await loadDevAuthority(paths), { subject, clientAuth: true })
      return { vin: cn, key: leaf.keyPem, cert: leaf.certPem }
    }
  }
}

export { devPkiPaths }
