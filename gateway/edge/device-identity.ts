import type { TLSSocket } from 'node:tls'
import { isValidVin, type ErrorCode } from '../../protocol/index.ts'

/** Who a TLS peer is, read once from its verified certificate (DESIGN §2). */
export interface DeviceIdentity {
  vin: string
  /** Subject C: the vehicle's market (ISO 3166-1 alpha-2), null when absent. */
  market: string | null
  fingerprint: string
  serialNumber: string
  remoteAddress: string
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

/**
 * Reads the identity from a TLS socket whose handshake requested a client
 * certificate. The chain and CRL were checked by OpenSSL; this maps its verdict
 * to our codes and refuses anything but a verified certificate whose CN is a VIN.
 */
export function identifyPeer (socket: TLSSocket): IdentityResult {
  const remoteAddress = socket.remoteAddress ?? 'unknown'
  const cert = socket.getPeerCertificate()
  const hasCert = cert !== null && typeof cert === 'object' && Object.keys(cert).length > 0
  if (!hasCert) return { ok: false, code: 'GW_ERR_CERT_MISSING', detail: 'no client certificate', claimedVin: null, chainsToCa: false, fingerprint: null, remoteAddress }
  const cn = first(cert.subject?.CN)
  const claimedVin = cn !== null && isValidVin(cn) ? cn : null
  const fingerprint = cert.fingerprint256 ?? null
  if (!socket.authorized) {
    const reason = String(socket.authorizationError ?? 'unverified')
    const code: ErrorCode = reason === 'CERT_REVOKED' ? 'GW_ERR_CERT_REVOKED' : EXPIRY_ERRORS.has(reason) ? 'GW_ERR_CERT_EXPIRED' : 'GW_ERR_CERT_UNTRUSTED'
    // OpenSSL reports one error: expiry and revocation are checked only on a chain that verified.
    return { ok: false, code, detail: reason, claimedVin, chainsToCa: code !== 'GW_ERR_CERT_UNTRUSTED', fingerprint, remoteAddress }
  }
  if (claimedVin === null) {
    return { ok: false, code: 'GW_ERR_CERT_INVALID_VIN', detail: `subject CN ${JSON.stringify(cn)}`, claimedVin: null, chainsToCa: true, fingerprint, remoteAddress }
  }
  const market = first(cert.subject?.C)
  return {
    ok: true,
    identity: { vin: claimedVin, market: market !== null && /^[A-Z]{2}$/.test(market) ? market : null, fingerprint: fingerprint ?? '', serialNumber: cert.serialNumber ?? '', remoteAddress }
  }
}
