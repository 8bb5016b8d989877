import type { EventEmitter } from 'node:events'
import tls from 'node:tls'
import { Aedes, type AuthenticateError, type Client, type PublishPacket } from 'aedes'
import type { Logger } from 'pino'
import { GatewayError, downTopic, type EnvelopeLimits, type ErrorCode } from '../../protocol/index.ts'
import type { Store, TransactionRecord } from '../../store/index.ts'
import type { CommitBatcher } from '../commit-batcher.ts'
import { ConnectionRegistry } from './connections.ts'
import { identifyPeer, type DeviceIdentity } from './device-identity.ts'
import { GuardedConnection } from './packet-size-guard.ts'
import { connectionEvent, securityEvent, type RecordContext } from './records.ts'
import { checkPublish, checkSubscribe } from './topic-acl.ts'
import { handleUplink, type UplinkDeps } from './uplink.ts'

export interface TlsMaterial {
  ca: string | Buffer
  cert: string | Buffer
  key: string | Buffer
  crl: string | Buffer
}

export interface VehicleEdgeDeps {
  store: Store
  log: CommitBatcher<TransactionRecord>
  ctx: RecordContext
  logger: Logger
  limits: EnvelopeLimits
  maxPacketBytes: number
  tls: TlsMaterial
}

export interface VehicleEdge {
  readonly server: tls.Server
  readonly broker: Aedes
  readonly connections: ConnectionRegistry
  /** Publishes to a vehicle's down topic at QoS 1; resolves when handed to its connection (or to nobody). */
  publishDown(topic: string, payload: Buffer): Promise<void>
  /** Closes every vehicle connection (they reconnect elsewhere). */
  disconnectAll(): Promise<void>
  close(): Promise<void>
}

// MQTT 3.1.1 §3.2.2.3 return codes.
const CONNACK_SERVER_UNAVAILABLE = 3
const CONNACK_NOT_AUTHORIZED = 5

function refusal (code: ErrorCode, returnCode: number): AuthenticateError {
  const err = new GatewayError(code) as GatewayError & { returnCode: number }
  err.returnCode = returnCode
  return err as unknown as AuthenticateError
}

function printable (text: string): string {
  return text.replace(/[^\x20-\x7e]/g, '?').slice(0, 64)
}

export async function createVehicleEdge (deps: VehicleEdgeDeps): Promise<VehicleEdge> {
  const { log, ctx, logger } = deps
  const identities = new WeakMap<object, DeviceIdentity>()
  const wantsWill = new WeakMap<object, boolean>()
  const connections = new ConnectionRegistry()

  const recordSecurity = (who: { vin: string, market: string | null, fingerprint: string | null, remoteAddress: string }, code: ErrorCode, type: string, detail: string, extra?: Record<string, unknown>): void => {
    logger.warn({ vin: who.vin, code, type, detail, remoteAddress: who.remoteAddress }, 'security event')
    log.add(securityEvent(ctx, { ...who, code, type, detail, ...(extra !== undefined ? { extra } : {}) }))
      .catch((err: unknown) => logger.error({ err, vin: who.vin, code }, 'security event not recorded'))
  }
  const identityOf = (client: Client): DeviceIdentity | undefined => identities.get(client.conn)

  const broker = await Aedes.createBroker({
    connectTimeout: 10_000,
    drainTimeout: 10_000,
    maxTopicLevels: 16,

    preConnect (client, packet, callback) {
      // The will is refused in authenticate, where a CONNACK code can carry the refusal.
      wantsWill.set(client, packet.will !== undefined && packet.will !== null)
      callback(null, true)
    },

    authenticate (client, _username, _password, done) {
      const who = identityOf(client)
      if (who === undefined) return done(refusal('GW_ERR_CERT_MISSING', CONNACK_NOT_AUTHORIZED), false)
      // [MQTT-3.1.3-8] lets the server refuse a clientId; ours must equal the certificate's VIN,
      // and this check runs before Aedes closes an existing session with that clientId.
      if (client.id !== who.vin) {
        const takeover = connections.isConnected(client.id)
        recordSecurity(who, 'GW_ERR_CLIENT_ID_MISMATCH', takeover ? 'takeover.denied' : 'client_id.mismatch',
          `clientId ${JSON.stringify(printable(client.id))} with the certificate of ${who.vin}`, { clientId: printable(client.id) })
        if (takeover) {
          const victim = connections.get(client.id)?.identity
          if (victim !== undefined) {
            recordSecurity({ ...victim, remoteAddress: who.remoteAddress, fingerprint: who.fingerprint }, 'GW_ERR_CLIENT_ID_MISMATCH', 'takeover.denied',
              `a certificate for ${who.vin} tried to take over this vehicle's session`, { presentedVin: who.vin })
          }
        }
        return done(refusal('GW_ERR_CLIENT_ID_MISMATCH', CONNACK_NOT_AUTHORIZED), false)
      }
      if (wantsWill.get(client) === true) {
        recordSecurity(who, 'GW_ERR_WILL_DENIED', 'will.denied', 'CONNECT carried a will message')
        return done(refusal('GW_ERR_WILL_DENIED', CONNACK_NOT_AUTHORIZED), false)
      }
      deps.store.vehicles.recordConnect(who.vin, who.market, who.fingerprint, new Date(ctx.now())).then(
        () => done(null, true),
        (err: unknown) => {
          logger.error({ err, vin: who.vin }, 'connect refused: store unavailable')
          done(refusal('GW_ERR_STORE_UNAVAILABLE', CONNACK_SERVER_UNAVAILABLE), false)
        })
    },

    authorizePublish (client, packet, callback) {
      if (client === null) return callback(null)
      const who = identityOf(client)
      if (who === undefined) return callback(new GatewayError('GW_ERR_CERT_MISSING'))
      const denied = checkPublish(who.vin, packet.topic, packet.retain)
      if (denied !== null) {
        // [MQTT-3.3.5-2]: an unauthorised PUBLISH cannot be refused in 3.1.1; closing the connection is the clear answer.
        recordSecurity(who, denied, 'publish.denied', `publish to ${JSON.stringify(printable(packet.topic))}${packet.retain ? ' (retained)' : ''}`, { topic: printable(packet.topic) })
        return callback(new GatewayError(denied))
      }
      // The durable point: Aedes writes PUBACK after this callback, so it waits for the commit.
      handleUplink(uplinkDeps, who, packet.payload as Buffer).then(() => callback(null), (err: Error) => callback(err))
    },

    authorizeSubscribe (client, sub, callback) {
      const who = identityOf(client)
      if (who === undefined) return callback(null, null)
      const denied = checkSubscribe(who.vin, sub.topic)
      if (denied !== null) {
        recordSecurity(who, denied, 'subscribe.denied', `subscribe to ${JSON.stringify(printable(sub.topic))}`, { topic: printable(sub.topic) })
        return callback(null, null) // SUBACK 0x80 [MQTT-3.9.3-2]
      }
      callback(null, { ...sub, qos: sub.qos > 1 ? 1 : sub.qos })
    },

    authorizeForward (client, packet) {
      return packet.topic === downTopic(client.id) ? packet : null
    }
  })

  const publishDown = (topic: string, payload: Buffer): Promise<void> => new Promise((resolve, reject) => {
    const packet: PublishPacket = { cmd: 'publish', topic, payload, qos: 1, retain: false, dup: false }
    broker.publish(packet, (err) => err !== undefined && err !== null ? reject(err) : resolve())
  })
  const uplinkDeps: UplinkDeps = { log, ctx, limits: deps.limits, logger, publishDown }

  broker.on('client', (client) => {
    const who = identityOf(client)
    if (who === undefined) return
    connections.add(client, who, new Date(ctx.now()))
    logger.info({ vin: who.vin, remoteAddress: who.remoteAddress }, 'vehicle connected')
    log.add(connectionEvent(ctx, who, 'connect', { clientId: client.id }))
      .catch((err: unknown) => logger.error({ err, vin: who.vin }, 'connect event not recorded'))
  })
  broker.on('clientDisconnect', (client) => {
    const who = identityOf(client)
    if (who === undefined) return
    connections.remove(client, who.vin)
    logger.info({ vin: who.vin }, 'vehicle disconnected')
    log.add(connectionEvent(ctx, who, 'disconnect', { clientId: client.id }))
      .catch((err: unknown) => logger.error({ err, vin: who.vin }, 'disconnect event not recorded'))
    deps.store.vehicles.recordDisconnect(who.vin, new Date(ctx.now()))
      .catch((err: unknown) => logger.warn({ err, vin: who.vin }, 'disconnect time not recorded'))
  })
  broker.on('clientError', (client, err) => {
    logger.info({ vin: identityOf(client)?.vin, clientId: client.id, err: err.message }, 'vehicle connection error')
  })
  broker.on('connectionError', (client, err) => {
    logger.info({ vin: identityOf(client)?.vin, err: err.message }, 'connection error before CONNECT')
  })
  ;(broker as unknown as EventEmitter).on('error', (err: Error) => logger.error({ err }, 'broker error'))

  const server = tls.createServer({
    ...deps.tls,
    requestCert: true,
    // Verified below, so that a refusal can be recorded with its precise reason (expired,
    // revoked, untrusted) instead of a bare handshake alert. Nothing reaches Aedes unverified.
    rejectUnauthorized: false,
    minVersion: 'TLSv1.2',
    handshakeTimeout: 10_000
  })
  server.on('secureConnection', (socket) => {
    socket.on('error', () => undefined) // errors after refusal are expected; Aedes listens once it owns the socket
    const result = identifyPeer(socket)
    if (!result.ok) {
      if (result.claimedVin !== null) {
        recordSecurity({ vin: result.claimedVin, market: null, fingerprint: result.fingerprint, remoteAddress: result.remoteAddress },
          result.code, 'certificate.refused', result.detail)
      } else {
        logger.warn({ code: result.code, detail: result.detail, remoteAddress: result.remoteAddress }, 'TLS peer refused')
      }
      socket.destroy()
      return
    }
    const who = result.identity
    const conn = new GuardedConnection(socket, deps.maxPacketBytes, (announced) => {
      recordSecurity(who, 'GW_ERR_PACKET_TOO_LARGE', 'packet.too_large', `packet of ${announced} bytes, limit ${deps.maxPacketBytes}`)
    })
    identities.set(conn, who)
    broker.handle(conn)
  })
  server.on('tlsClientError', (err, socket) => {
    logger.info({ err: err.message, remoteAddress: socket.remoteAddress }, 'TLS handshake failed')
  })

  const disconnectAll = async (): Promise<void> => {
    await Promise.all(connections.clients().map((c) => new Promise<void>((resolve) => c.close(() => resolve()))))
  }

  return {
    server,
    broker,
    connections,
    publishDown,
    disconnectAll,
    async close () {
      // server.close() calls back only when every connection has ended: stop accepting first, then close the vehicles.
      const closed = new Promise<void>((resolve) => {
        if (!server.listening) return resolve()
        server.close(() => resolve())
      })
      await disconnectAll()
      await closed
      await new Promise<void>((resolve) => broker.close(() => resolve()))
    }
  }
}
