import 'reflect-metadata'
import { randomBytes, webcrypto } from 'node:crypto'
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

export async function createAuthority (commonName: string, years: number): Promise<KeyAndCert> {
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
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey)
    ]
  })
  return { keyPem: await exportKeyPem(keys.privateKey), certPem: cert.toString('pem') }
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

export async function createCrl (ca: Authority, revokedSerials: readonly string[]): Promise<string> {
  const now = new Date()
  const crl = await x509.X509CrlGenerator.create({
    issuer: ca.cert.subject,
    thisUpdate: new Date(now.getTime() - 60_000),
    // A dev CRL that expired would make OpenSSL refuse every vehicle; regenerated on each revoke and init.
    nextUpdate: new Date(now.getTime() + 5 * 365 * 24 * 3600_000),
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
