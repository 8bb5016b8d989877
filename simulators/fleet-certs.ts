import { createHash } from 'node:crypto'
import fs from 'node:fs'
import path from 'node:path'
import { devPkiPaths, issueLeaf, loadDevAuthority, type Authority } from '../certs/index.ts'

export interface FleetCredentials {
  key: string
  cert: string
}

/**
 * Certificates of simulated vehicles, issued by the dev CA and cached under
 * `certs/dev/fleet/<CA tag>/`: a new CA gets a new folder, so a cache never holds
 * certificates the gateway would refuse.
 */
export class FleetCertificates {
  readonly #dir: string
  readonly #ca: Authority

  private constructor (dir: string, ca: Authority) {
    this.#dir = dir
    this.#ca = ca
  }

  static async open (certDir: string): Promise<FleetCertificates> {
    const paths = devPkiPaths(certDir)
    const ca = await loadDevAuthority(paths)
    const tag = createHash('sha256').update(fs.readFileSync(paths.caCert)).digest('hex').slice(0, 12)
    const dir = path.join(certDir, 'fleet', tag)
    fs.mkdirSync(dir, { recursive: true })
    return new FleetCertificates(dir, ca)
  }

  async get (vin: string, market: string): Promise<FleetCredentials> {
    const keyFile = path.join(this.#dir, `${vin}.key`)
    const certFile = path.join(this.#dir, `${vin}.crt`)
    try {
      return { key: fs.readFileSync(keyFile, 'utf8'), cert: fs.readFileSync(certFile, 'utf8') }
    } catch {
      const leaf = await issueLeaf(this.#ca, { subject: `CN=${vin}, C=${market}`, clientAuth: true })
      // Certificate last: a reader that finds it also finds the key.
      fs.writeFileSync(keyFile, leaf.keyPem, { mode: 0o600 })
      fs.writeFileSync(`${certFile}.${process.pid}.tmp`, leaf.certPem)
      fs.renameSync(`${certFile}.${process.pid}.tmp`, certFile)
      return { key: leaf.keyPem, cert: leaf.certPem }
    }
  }
}
