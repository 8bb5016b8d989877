import type net from 'node:net'
import tls from 'node:tls'
import type { Logger } from 'pino'
import type { GatewayConfig } from '../config.ts'
import { pemBlocks } from '../../certs/index.ts'
import { ConnectionGuard } from './connection-guard.ts'
import { identifyPeer, parseAuthorities, type DeviceIdentity, type IdentityResult } from './device-identity.ts'
import { GuardedConnection } from './packet-size-guard.ts'
import { SampledLog } from './sampled-log.ts'
import type { SecurityRecorder } from './security-events.ts'
import { Revocation } from './revocation.ts'
import { sessionIdContext } from './session-tickets.ts'

export interface TlsMaterial {
  ca: string | Buffer
  cert: string | Buffer
  key: string | Buffer
  crl: string | Buffer
}

export interface TlsListenerDeps {
  tls: TlsMaterial
  /** The CRL file, watched for changes (revocation.ts). */
  crlPath: string
  maxPacketBytes: number
  /** QoS 1 publishes read per connection before its socket is no longer read (GuardedConnection). */
  maxInflight: number
  /** Connection and handshake bounds. */
  edge: GatewayConfig['edge']
  security: SecurityRecorder
  logger: Logger
  /** A verified vehicle: its connection, guarded against oversized packets, goes to the broker. */
  onVehicle: (conn: GuardedConnection, who: DeviceIdentity) => void
  /** Session tickets with a key shared by the cluster (session-tickets.ts); undefined: Node's per-process keys. */
  sessions?: { ticketKey: Buffer, lifetimeSeconds: number }
}

/** What a listener's session resumption is made of; `ticketKey` changes on rotation. */
interface SessionOptions { sessionIdContext: string, sessionTimeout?: number, ticketKeys?: Buffer }

/**
 * TLS 1.3 suites (all AEAD) first, then TLS 1.2 with ECDHE key exchange and AEAD ciphers
 * only: no static RSA, no CBC. OpenSSL negotiates 1.3 whenever the client offers it.
 */
export const CIPHERS = [
  'TLS_AES_128_GCM_SHA256', 'TLS_AES_256_GCM_SHA384', 'TLS_CHACHA20_POLY1305_SHA256',
  'ECDHE-ECDSA-AES128-GCM-SHA256', 'ECDHE-RSA-AES128-GCM-SHA256', 'ECDHE-ECDSA-AES256-GCM-SHA384',
  'ECDHE-RSA-AES256-GCM-SHA384', 'ECDHE-ECDSA-CHACHA20-POLY1305', 'ECDHE-RSA-CHACHA20-POLY1305'
].join(':')

/**
 * What a secure context needs, at start and again on each CRL reload (setSecureContext, which
 * would otherwise fall back to Node's defaults for the session options).
 */
function contextOptions (material: TlsMaterial, crls: string[], sessions: SessionOptions): tls.SecureContextOptions & SessionOptions {
  return { ca: material.ca, cert: material.cert, key: material.key, crl: crls, minVersion: 'TLSv1.2', ciphers: CIPHERS, honorCipherOrder: true, ...sessions }
}

/**
 * The MQTT port: admission (connection caps, handshake rate and deadline, connection-guard.ts)
 * before any TLS work, then mutual TLS, then the peer's identity from its certificate.
 * Nothing reaches Aedes unverified. Refusals a client can repeat at will are logged
 * sampled (sampled-log.ts); only a certificate from our CA writes into a vehicle's log.
 */
export function createTlsListener (deps: TlsListenerDeps): { server: tls.Server, revocation: Revocation, setTicketKey: (key: Buffer) => void } {
  const sampled = new SampledLog(deps.logger)
  const guard = new ConnectionGuard(deps.edge, sampled)
  const authorities = parseAuthorities(deps.tls.ca)
  const sessions: SessionOptions = {
    sessionIdContext: sessionIdContext(deps.tls.ca),
    ...(deps.sessions !== undefined ? { sessionTimeout: deps.sessions.lifetimeSeconds, ticketKeys: deps.sessions.ticketKey } : {})
  }
  // Node reads one CRL per array element: a file with one per CA (root, intermediate) is split.
  const server = tls.createServer({
    ...contextOptions(deps.tls, pemBlocks(deps.tls.crl.toString(), 'X509 CRL'), sessions),
    requestCert: true,
    // Verified below, so that a refusal can be recorded with its precise reason (expired,
    // revoked, untrusted) instead of a bare handshake alert.
    rejectUnauthorized: false,
    handshakeTimeout: deps.edge.handshakeTimeoutMs
  })
  const revocation = new Revocation({
    crlPath: deps.crlPath,
    caPem: deps.tls.ca.toString(),
    logger: deps.logger,
    security: deps.security,
    applyCrls: (crls) => server.setSecureContext(contextOptions(deps.tls, crls, sessions))
  })
  // Runs after tls.Server's own 'connection' listener has wrapped the socket, before it reads a byte.
  server.on('connection', (socket: net.Socket) => guard.admit(socket))
  server.on('secureConnection', (socket) => {
    guard.secured(socket.remoteAddress, socket.remotePort)
    socket.on('error', () => undefined) // errors after refusal are expected; Aedes listens once it owns the socket
    const result = revoked(identifyPeer(socket, authorities), revocation)
    if (!result.ok) return refuse(deps, sampled, socket, result)
    const who = result.identity
    revocation.track(socket, who)
    const conn = new GuardedConnection(socket, deps.maxPacketBytes, (announced) => {
      deps.security.record(who, 'GW_ERR_PACKET_TOO_LARGE', 'packet.too_large', `packet of ${announced} bytes, limit ${deps.maxPacketBytes}`)
    }, deps.maxInflight)
    deps.onVehicle(conn, who)
  })
  server.on('tlsClientError', (err, socket) => {
    const address = socket.remoteAddress // read before destroy, which forgets it
    // Node only reports here (its handshakeTimeout included): the socket stays open unless closed.
    socket.destroy()
    // No address: the socket was closed before its handshake, by the peer or by the guard (which counted it).
    if (address === undefined) return
    if ((err as Error & { code?: string }).code === 'ERR_TLS_HANDSHAKE_TIMEOUT') {
      sampled.note('GW_ERR_HANDSHAKE_TIMEOUT', address, 'TLS handshake not completed in time: connection closed', { code: 'GW_ERR_HANDSHAKE_TIMEOUT' })
    } else {
      sampled.note('handshake.failed', address, 'TLS handshake failed', { err: err.message })
    }
  })
  server.on('close', () => {
    guard.close()
    sampled.close()
    revocation.close()
  })
  const setTicketKey = (key: Buffer): void => {
    sessions.ticketKeys = key
    server.setTicketKeys(key)
  }
  return { server, revocation, setTicketKey }
}

type Refused = Extract<IdentityResult, { ok: false }>

/**
 * Our own check after OpenSSL's: certificates revoked by another gateway of the cluster (not
 * in our CRL file yet), and a resumed TLS session, whose verdict is the one of its first
 * handshake, must not let a revoked or expired certificate in, nor one whose CA's CRL is now
 * past its nextUpdate (a full handshake fails closed then, with OpenSSL's CRL_HAS_EXPIRED).
 */
function revoked (result: IdentityResult, revocation: Revocation): IdentityResult {
  if (!result.ok) return result
  const who = result.identity
  const refused = { claimedVin: who.vin, chainsToCa: true, fingerprint: who.fingerprint, remoteAddress: who.remoteAddress }
  if (revocation.isRevoked(who.chain)) return { ok: false, code: 'GW_ERR_CERT_REVOKED', detail: 'CERT_REVOKED', ...refused }
  if (who.notAfter <= Date.now()) return { ok: false, code: 'GW_ERR_CERT_EXPIRED', detail: 'CERT_HAS_EXPIRED', ...refused }
  if (revocation.isStaleFor(who.chain)) return { ok: false, code: 'GW_ERR_CERT_UNTRUSTED', detail: 'CRL_HAS_EXPIRED', ...refused }
  return result
}

function refuse (deps: TlsListenerDeps, sampled: SampledLog, socket: tls.TLSSocket, result: Refused): void {
  // Only a certificate that chains to our CA may write into a vehicle's log: anyone can
  // make a self-signed one with a victim's VIN in it.
  if (result.claimedVin !== null && result.chainsToCa) {
    deps.security.record({ vin: result.claimedVin, market: null, fingerprint: result.fingerprint, remoteAddress: result.remoteAddress },
      result.code, 'certificate.refused', result.detail)
  } else {
    sampled.note(result.code, result.remoteAddress, 'TLS peer refused', { code: result.code, detail: result.detail })
  }
  socket.destroy()
}
