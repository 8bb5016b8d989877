import fs from 'node:fs'
import path from 'node:path'
import { GatewayError, isValidVin } from '../protocol/index.ts'
import { createAuthority, createCrl, issueLeaf, loadAuthority, type Authority } from './x509.ts'

/**
 * The development PKI under one directory (default `certs/dev/`):
 *   ca.crt, ca.key        the dev CA (ECDSA P-256)
 *   server.crt/.key       the gateway's certificate for localhost and 127.0.0.1
 *   crl.pem               the revocation list the gateway loads at start
 *   issued.json           VIN → serial numbers issued, so `revoke --vin` can find them
 *   vehicles/VIN.crt/.key vehicle certificates (default output of `certs issue`)
 */
export interface DevPkiPaths {
  dir: string
  caCert: string
  caKey: string
  serverCert: string
  serverKey: string
  crl: string
  issued: string
  vehicles: string
}

export function devPkiPaths (dir: string): DevPkiPaths {
  return {
    dir,
    caCert: path.join(dir, 'ca.crt'),
    caKey: path.join(dir, 'ca.key'),
    serverCert: path.join(dir, 'server.crt'),
    serverKey: path.join(dir, 'server.key'),
    crl: path.join(dir, 'crl.pem'),
    issued: path.join(dir, 'issued.json'),
    vehicles: path.join(dir, 'vehicles')
  }
}

interface IssuedIndex {
  vehicles: Record<string, string[]>
  revoked: string[]
}

function readIndex (p: DevPkiPaths): IssuedIndex {
  if (!fs.existsSync(p.issued)) return { vehicles: {}, revoked: [] }
  return JSON.parse(fs.readFileSync(p.issued, 'utf8')) as IssuedIndex
}

function writeIndex (p: DevPkiPaths, index: IssuedIndex): void {
  writeAtomic(p.issued, JSON.stringify(index, null, 2) + '\n', 0o644)
}

// Write-then-rename: a crash never leaves half a key or certificate behind.
function writeAtomic (file: string, content: string, mode: number): void {
  const tmp = `${file}.${process.pid}.tmp`
  fs.writeFileSync(tmp, content, { mode })
  fs.renameSync(tmp, file)
}

export async function loadDevAuthority (p: DevPkiPaths): Promise<Authority> {
  if (!fs.existsSync(p.caCert) || !fs.existsSync(p.caKey)) {
    throw new Error(`no dev CA in ${p.dir}: run "vgw certs init" first`)
  }
  return await loadAuthority({ certPem: fs.readFileSync(p.caCert, 'utf8'), keyPem: fs.readFileSync(p.caKey, 'utf8') })
}

/** Creates whatever of the dev PKI is missing; returns what it created. Existing files are kept. */
export async function initDevPki (dir: string): Promise<{ created: string[], paths: DevPkiPaths }> {
  const p = devPkiPaths(dir)
  const created: string[] = []
  fs.mkdirSync(p.dir, { recursive: true })
  if (!fs.existsSync(p.caCert) || !fs.existsSync(p.caKey)) {
    const ca = await createAuthority('vgw dev CA', 10)
    writeAtomic(p.caKey, ca.keyPem, 0o600)
    writeAtomic(p.caCert, ca.certPem, 0o644)
    created.push(p.caCert)
    for (const f of [p.serverCert, p.serverKey, p.crl, p.issued]) fs.rmSync(f, { force: true })
  }
  const ca = await loadDevAuthority(p)
  if (!fs.existsSync(p.serverCert) || !fs.existsSync(p.serverKey)) {
    const server = await issueLeaf(ca, {
      subject: 'CN=localhost',
      serverNames: { dns: ['localhost'], ips: ['127.0.0.1', '::1'] },
      clientAuth: false
    })
    writeAtomic(p.serverKey, server.keyPem, 0o600)
    writeAtomic(p.serverCert, server.certPem, 0o644)
    created.push(p.serverCert)
  }
  if (!fs.existsSync(p.crl)) {
    writeAtomic(p.crl, await createCrl(ca, readIndex(p).revoked), 0o644)
    created.push(p.crl)
  }
  return { created, paths: p }
}

export interface IssueVehicleOptions {
  vin: string
  /** ISO 3166-1 alpha-2 market, the certificate's subject C. */
  market: string
  outDir?: string
  notBefore?: Date
  notAfter?: Date
}

export interface IssuedVehicle {
  vin: string
  keyFile: string
  certFile: string
  keyPem: string
  certPem: string
  serialNumber: string
}

const MARKET_PATTERN = /^[A-Z]{2}$/

/** Issues a vehicle key (ECDSA P-256) and certificate (CN=VIN, C=market) signed by the dev CA. */
export async function issueVehicleCertificate (dir: string, opts: IssueVehicleOptions, authority?: Authority): Promise<IssuedVehicle> {
  if (!isValidVin(opts.vin)) throw new GatewayError('GW_ERR_INVALID_VIN', `"${opts.vin}" is not a valid VIN: 17 characters, digits and capital letters except I, O and Q`)
  if (!MARKET_PATTERN.test(opts.market)) throw new GatewayError('GW_ERR_VALIDATION', `"${opts.market}" is not a market: use an ISO 3166-1 alpha-2 code such as DE`)
  const p = devPkiPaths(dir)
  const ca = authority ?? await loadDevAuthority(p)
  const leaf = await issueLeaf(ca, {
    subject: `CN=${opts.vin}, C=${opts.market}`,
    clientAuth: true,
    ...(opts.notBefore !== undefined ? { notBefore: opts.notBefore } : {}),
    ...(opts.notAfter !== undefined ? { notAfter: opts.notAfter } : {})
  })
  const outDir = opts.outDir ?? p.vehicles
  fs.mkdirSync(outDir, { recursive: true })
  const keyFile = path.join(outDir, `${opts.vin}.key`)
  const certFile = path.join(outDir, `${opts.vin}.crt`)
  writeAtomic(keyFile, leaf.keyPem, 0o600)
  writeAtomic(certFile, leaf.certPem, 0o644)
  const index = readIndex(p)
  index.vehicles[opts.vin] = [...(index.vehicles[opts.vin] ?? []), leaf.serialNumber]
  writeIndex(p, index)
  return { vin: opts.vin, keyFile, certFile, keyPem: leaf.keyPem, certPem: leaf.certPem, serialNumber: leaf.serialNumber }
}

/** Adds every certificate issued for the VIN to the CRL. Returns the serials revoked. */
export async function revokeVehicle (dir: string, vin: string): Promise<string[]> {
  if (!isValidVin(vin)) throw new GatewayError('GW_ERR_INVALID_VIN', `"${vin}" is not a valid VIN`)
  const p = devPkiPaths(dir)
  const index = readIndex(p)
  const serials = index.vehicles[vin] ?? []
  if (serials.length === 0) throw new GatewayError('GW_ERR_VEHICLE_NOT_FOUND', `no certificate was issued for ${vin} by the CA in ${dir}`)
  index.revoked = [...new Set([...index.revoked, ...serials])]
  const ca = await loadDevAuthority(p)
  writeAtomic(p.crl, await createCrl(ca, index.revoked), 0o644)
  writeIndex(p, index)
  return serials
}
