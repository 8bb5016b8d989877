import tls from 'node:tls'
import type { Logger } from 'pino'
import type { GatewayConfig } from '../config.ts'
import { identifyPeer, type DeviceIdentity } from './device-identity.ts'
import { GuardedConnection } from './packet-size-guard.ts'
import type { SecurityRecorder } from './security-events.ts'

export interface TlsMaterial {
  ca: string | Buffer
  cert: string | Buffer
  key: string | Buffer
  crl: string | Buffer
}

export interface TlsListenerDeps {
  tls: TlsMaterial
  maxPacketBytes: number
  /** QoS 1 publishes read per connection before its socket is no longer read (GuardedConnection). */
  maxInflight: number
  /** Connection and handshake bounds. */
  edge: GatewayConfig['edge']
  security: SecurityRecorder
  logger: Logger
  /** A verified vehicle: its connection, guarded against oversized packets, goes to the broker. */
  onVehicle: (conn: GuardedConnection, who: DeviceIdentity) => void
}

/**
 * The MQTT port: mutual TLS, then the peer's identity from its certificate. Nothing
 * reaches Aedes unverified.
 */
export function createTlsListener (deps: TlsListenerDeps): tls.Server {
  const { logger } = deps
  const server = tls.createServer({
    ...deps.tls,
    requestCert: true,
    // Verified below, so that a refusal can be recorded with its precise reason (expired,
    // revoked, untrusted) instead of a bare handshake alert.
    rejectUnauthorized: false,
    minVersion: 'TLSv1.2',
    handshakeTimeout: deps.edge.handshakeTimeoutMs
  })
  server.on('secureConnection', (socket) => {
    socket.on('error', () => undefined) // errors after refusal are expected; Aedes listens once it owns the socket
    const result = identifyPeer(socket)
    if (!result.ok) {
      // Only a certificate that chains to our CA may write into a vehicle's log: anyone can
      // make a self-signed one with a victim's VIN in it.
      if (result.claimedVin !== null && result.chainsToCa) {
        deps.security.record({ vin: result.claimedVin, market: null, fingerprint: result.fingerprint, remoteAddress: result.remoteAddress },
          result.code, 'certificate.refused', result.detail)
      } else {
        logger.warn({ code: result.code, detail: result.detail, remoteAddress: result.remoteAddress }, 'TLS peer refused')
      }
      socket.destroy()
      return
    }
    const who = result.identity
    const conn = new GuardedConnection(socket, deps.maxPacketBytes, (announced) => {
      deps.security.record(who, 'GW_ERR_PACKET_TOO_LARGE', 'packet.too_large', `packet of ${announced} bytes, limit ${deps.maxPacketBytes}`)
    }, deps.maxInflight)
    deps.onVehicle(conn, who)
  })
  server.on('tlsClientError', (err, socket) => {
    logger.info({ err: err.message, remoteAddress: socket.remoteAddress }, 'TLS handshake failed')
  })
  return server
}
