import { X509Certificate } from 'node:crypto'
import type { TLSSocket } from 'node:tls'
import { normalSerial } from '../../certs/index.ts'
import { isValidVin, type ErrorCode } from '../../protocol/index.ts'

/** Who a TLS peer is, read once from its verified certificate (README, "Vehicles: topics, identity, envelope"). */
export interface DeviceIdentity {
  vin: string
  /** Subject C: the vehicle's market (ISO 3166-1 alpha-2), null when absent. */
  market: string | null
  fingerprint: string
  serialNumber: string
  remoteAddress: string
  /** The certificate and each CA above it, as (issuing CA, serial): what a CRL can revoke (revocation.ts). */
  chain: CertLink[]
  /** The certificate's notAfter, ms since the epoch: the session ends then. */
  notAfter: number
}

/** One certificate of a chain as a CRL names it: its issuer's fingerprint and its serial. */
export interface CertLink {
  issuer: string
  serial: string
}

const MAX_CHAIN = 8

/**
 * The peer's chain up to a self-signed CA of ours, as links a CRL can name. Built from our
 * own CA bundle rather than what the peer sent, so an intermediate it left out still counts.
 */
export function chainLinks (peer: X509Certificate, authorities: readonly X509Certificate[]): CertLink[] {
  const links: CertLink[] = []
  let cert = peer
  for (let depth = 0; depth < MAX_CHAIN; depth++) {
    const issuer = authorities.find((ca) => cert.checkIssued(ca) && cert.verify(ca.publicKey))
    if (issuer === undefined || issuer === cert) break
    links.push({ issuer: issuer.fingerprint256, serial: normalSerial(cert.serialNumber) })
    if (issuer.checkIssued(issuer)) break
    cert = issuer
  }
  return links
}

export type IdentityResult =
  | { ok: true, identity: DeviceIdentity }
  | {
    ok: false
    code: ErrorCode
    detail: string
    claimedVin: string | null
    /** Whether the certificate was issued by our CA (expired or revoked, say); a VIN claimed by any other is hearsay. */
    chainsToCa: boolean
    fingerprint: string | null
    remoteAddress: string
  }

const EXPIRY_ERRORS = new Set(['CERT_HAS_EXPIRED', 'CERT_NOT_YET_VALID'])

function first (value: string | string[] | undefined): string | null {
  if (Array.isArray(value)) return value[0] ?? null
  return value ?? null
}

/** The certificates of a PEM bundle (the CA file may hold several). */
export function parseAuthorities (pem: string | Buffer): X509Certificate[] {
  return (pem.toString().match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? []).map((block) => new X509Certificate(block))
}

/**
 * Whether one of our authorities signed this certificate. OpenSSL's verdict cannot tell:
 * it reports the last error it met, so a certificate that merely names our CA as issuer,
 * signed by any key, and expired comes back as CERT_HAS_EXPIRED, not as a bad signature.
 */
function issuedByUs (socket: TLSSocket, authorities: readonly X509Certificate[]): boolean {
  const peer = socket.getPeerX509Certificate()
  if (peer === undefined) return false
  return authorities.some((ca) => peer.checkIssued(ca) && peer.verify(ca.publicKey))
}

/**
 * Reads the identity from a TLS socket whose handshake requested a client
 * certificate. The chain and CRL were checked by OpenSSL; this maps its verdict
 * to our codes and refuses anything but a verified certificate whose CN is a VIN.
 * `authorities` are the CA certificates a refused certificate must be signed by for its
 * claimed VIN to count (see chainsToCa).
 */
export function identifyPeer (socket: TLSSocket, authorities: readonly X509Certificate[]): IdentityResult {
  const remoteAddress = socket.remoteAddress ?? 'unknown'
  const cert = socket.getPeerCertificate()
  const hasCert = cert !== null && typeof cert === 'object' && Object.keys(cert).length > 0
  if (!hasCert) return { ok: false, code: 'GW_ERR_CERT_MISSING', detail: 'no client certificate', claimedVin: null, chainsToCa: false, fingerprint: null, remoteAddress }
  const cn = first(cert.subject?.CN)
  const claimedVin = cn !== null && isValidVin(cn) ? cn : null
  const fingerprint = cert.fingerprint256 ?? null
  if (!socket.authorized) {
    const reason = String(socket.authorizationError ?? 'unverified')
    // Expired or revoked means something only for a certificate we issued, which OpenSSL's verdict does not promise (see issuedByUs).
    const ours = (reason === 'CERT_REVOKED' || EXPIRY_ERRORS.has(reason)) && issuedByUs(socket, authorities)
    const code: ErrorCode = !ours ? 'GW_ERR_CERT_UNTRUSTED' : reason === 'CERT_REVOKED' ? 'GW_ERR_CERT_REVOKED' : 'GW_ERR_CERT_EXPIRED'
    return { ok: false, code, detail: reason, claimedVin, chainsToCa: ours, fingerprint, remoteAddress }
  }
  if (claimedVin === null) {
    return { ok: false, code: 'GW_ERR_CERT_INVALID_VIN', detail: `subject CN ${JSON.stringify(cn)}`, claimedVin: null, chainsToCa: true, fingerprint, remoteAddress }
  }
  const market = first(cert.subject?.C)
  const peer = socket.getPeerX509Certificate()
  return {
    ok: true,
    identity: {
      vin: claimedVin,
      market: market !== null && /^[A-Z]{2}$/.test(market) ? market : null,
      fingerprint: fingerprint ?? '',
      serialNumber: cert.serialNumber ?? '',
      remoteAddress,
      chain: peer !== undefined ? chainLinks(peer, authorities) : [],
      notAfter: Date.parse(cert.valid_to)
    }
  }
}
