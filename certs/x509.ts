import 'reflect-metadata'
import { X509Certificate as NodeCert, randomBytes, webcrypto } from 'node:crypto'
import * as x509 from '@peculiar/x509'

type CryptoKey = webcrypto.CryptoKey
type CryptoKeyPair = webcrypto.CryptoKeyPair

x509.cryptoProvider.set(webcrypto)

export const EC_ALGORITHM = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const
const SIGNING = { name: 'ECDSA', hash: 'SHA-256' } as const

export interface KeyAndCert {
  keyPem: string
  certPem: string
}

export interface Authority {
  cert: x509.X509Certificate
  key: CryptoKey
}

function serial (): string {
  const bytes = randomBytes(16)
  bytes[0] = (bytes[0] ?? 0) & 0x7f // positive INTEGER
  return bytes.toString('hex')
}

async function exportKeyPem (key: CryptoKey): Promise<string> {
  const pkcs8 = await webcrypto.subtle.exportKey('pkcs8', key)
  return x509.PemConverter.encode(pkcs8, 'PRIVATE KEY')
}

async function generateKeys (): Promise<CryptoKeyPair> {
  return await webcrypto.subtle.generateKey(EC_ALGORITHM, true, ['sign', 'verify'])
}

export async function loadAuthority (material: KeyAndCert): Promise<Authority> {
  const cert = new x509.X509Certificate(material.certPem)
  const der = x509.PemConverter.decodeFirst(material.keyPem)
  const key = await webcrypto.subtle.importKey('pkcs8', der, EC_ALGORITHM, false, ['sign'])
  return { cert, key }
}

/** A self-signed CA; `pathLength` 0 (the dev CA) signs only leaves, 1 also intermediates. */
export async function createAuthority (commonName: string, years: number, pathLength = 0): Promise<KeyAndCert> {
  const keys = await generateKeys()
  const notBefore = new Date(Date.now() - 3600_000)
  const notAfter = new Date(notBefore.getTime() + years * 365 * 24 * 3600_000)
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serial(),
    name: `CN=${commonName}`,
    notBefore,
    notAfter,
    keys,
    signingAlgorithm: SIGNING,
    extensions: [
      new x509.BasicConstraintsExtension(true, pathLength, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey)
    ]
  })
  return { keyPem: await exportKeyPem(keys.privateKey), certPem: cert.toString('pem') }
}

/** A CA below `ca` (an intermediate), for chains of more than one authority. */
export async function createIntermediate (ca: Authority, commonName: string, years: number): Promise<KeyAndCert & { serialNumber: string }> {
  const keys = await generateKeys()
  const notBefore = new Date(Date.now() - 3600_000)
  const serialNumber = serial()
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber,
    subject: `CN=${commonName}`,
    issuer: ca.cert.subject,
    notBefore,
    notAfter: new Date(notBefore.getTime() + years * 365 * 24 * 3600_000),
    publicKey: keys.publicKey,
    signingKey: ca.key,
    signingAlgorithm: SIGNING,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
      await x509.AuthorityKeyIdentifierExtension.create(ca.cert)
    ]
  })
  return { keyPem: await exportKeyPem(keys.privateKey), certPem: cert.toString('pem'), serialNumber }
}

export interface LeafOptions {
  subject: string
  serverNames?: { dns: string[], ips: string[] }
  clientAuth: boolean
  notBefore?: Date
  notAfter?: Date
}

export async function issueLeaf (ca: Authority, opts: LeafOptions): Promise<KeyAndCert & { serialNumber: string }> {
  const keys = await generateKeys()
  const notBefore = opts.notBefore ?? new Date(Date.now() - 3600_000)
  const notAfter = opts.notAfter ?? new Date(notBefore.getTime() + 2 * 365 * 24 * 3600_000)
  const serialNumber = serial()
  const extensions: x509.Extension[] = [
    new x509.BasicConstraintsExtension(false, undefined, true),
    new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyAgreement, true),
    new x509.ExtendedKeyUsageExtension([opts.clientAuth ? x509.ExtendedKeyUsage.clientAuth : x509.ExtendedKeyUsage.serverAuth]),
    await x509.AuthorityKeyIdentifierExtension.create(ca.cert)
  ]
  if (opts.serverNames !== undefined) {
    extensions.push(new x509.SubjectAlternativeNameExtension([
      ...opts.serverNames.dns.map((value) => ({ type: 'dns' as const, value })),
      ...opts.serverNames.ips.map((value) => ({ type: 'ip' as const, value }))
    ]))
  }
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber,
    subject: opts.subject,
    issuer: ca.cert.subject,
    notBefore,
    notAfter,
    publicKey: keys.publicKey,
    signingKey: ca.key,
    signingAlgorithm: SIGNING,
    extensions
  })
  return { keyPem: await exportKeyPem(keys.privateKey), certPem: cert.toString('pem'), serialNumber }
}

export async function createCrl (ca: Authority, revokedSerials: readonly string[], nextUpdate?: Date): Promise<string> {
  const now = new Date()
  const crl = await x509.X509CrlGenerator.create({
    issuer: ca.cert.subject,
    thisUpdate: new Date(Math.min(now.getTime(), nextUpdate?.getTime() ?? now.getTime()) - 60_000),
    // A dev CRL that expired would make OpenSSL refuse every vehicle; regenerated on each revoke and init.
    nextUpdate: nextUpdate ?? new Date(now.getTime() + 5 * 365 * 24 * 3600_000),
    signingKey: ca.key,
    signingAlgorithm: SIGNING,
    entries: revokedSerials.map((serialNumber) => ({ serialNumber, revocationDate: now }))
  })
  return x509.PemConverter.encode(crl.rawData, 'X509 CRL')
}

/** Serial numbers (lower-case hex) listed in a PEM CRL. */
export function crlSerials (pem: string): string[] {
  return new x509.X509Crl(pem).entries.map((e) => e.serialNumber.toLowerCase())
}

/** One CRL of a bundle, as the gateway's live revocation check needs it. */
export interface CrlEntryIndex {
  /** SHA-256 fingerprint (Node's `fingerprint256` format) of the CA that signed the CRL. */
  issuer: string
  serials: Set<string>
  nextUpdate: Date | null
  pem: string
}

/** The PEM blocks of one kind in a bundle: a CA file or a CRL file may hold several. */
export function pemBlocks (pem: string, label: 'CERTIFICATE' | 'X509 CRL'): string[] {
  const re = new RegExp(`-----BEGIN ${label}-----[\\s\\S]+?-----END ${label}-----`, 'g')
  return pem.match(re) ?? []
}

/** Serial numbers compared as lower-case hex without leading zeros (Node and the CRL write them differently). */
export function normalSerial (serial: string): string {
  return serial.toLowerCase().replace(/^0+(?=.)/, '')
}

/**
 * Each CRL of the bundle with the CA (from `caPem`) whose key signed it. A CRL no CA of
 * the bundle signed is refused: OpenSSL would ignore it for revocation, so must we.
 */
export async function indexCrls (caPem: string, crlPem: string): Promise<{ crls: CrlEntryIndex[], unmatched: number }> {
  const cas = pemBlocks(caPem, 'CERTIFICATE').map((block) => ({ peculiar: new x509.X509Certificate(block), fingerprint: new NodeCert(block).fingerprint256 }))
  const crls: CrlEntryIndex[] = []
  let unmatched = 0
  for (const block of pemBlocks(crlPem, 'X509 CRL')) {
    const crl = new x509.X509Crl(block)
    let issuer: string | null = null
    for (const ca of cas) {
      if (ca.peculiar.subject === crl.issuer && await crl.verify({ publicKey: ca.peculiar })) { issuer = ca.fingerprint; break }
    }
    if (issuer === null) { unmatched++; continue }
    crls.push({ issuer, serials: new Set(crl.entries.map((e) => normalSerial(e.serialNumber))), nextUpdate: crl.nextUpdate ?? null, pem: block })
  }
  return { crls, unmatched }
}
