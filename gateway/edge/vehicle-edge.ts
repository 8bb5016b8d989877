import type { EventEmitter } from 'node:events'
import tls from 'node:tls'
import { Aedes, type AuthenticateError, type Client, type PublishPacket } from 'aedes'
import type { Logger } from 'pino'
import { GatewayError, downTopic, type Envelope, type EnvelopeLimits, type ErrorCode } from '../../protocol/index.ts'
import type { Store, TransactionRecord } from '../../store/index.ts'
import type { CommitBatcher } from '../commit-batcher.ts'
import { ConnectionRegistry } from './connections.ts'
import { identifyPeer, type DeviceIdentity } from './device-identity.ts'
import { GuardedConnection } from './packet-size-guard.ts'
import { connectionEvent, securityEvent, type RecordContext } from './records.ts'
import { checkPublish, checkSubscribe } from './topic-acl.ts'
import { clusterBrokerOptions } from './cluster.ts'
import { handleUplink, type UplinkDeps } from './uplink.ts'

export interface TlsMaterial {
  ca: string | Buffer
  cert: string | Buffer
  key: string | Buffer
  crl: string | Buffer
}

/** What the downlink side learns from the edge. */
export interface EdgeObserver {
  connected(vin: string, client: Client): void
  disconnected(vin: string, client: Client): void
  /** The vehicle subscribed to its own down topic. */
  subscribed(vin: string, client: Client): void
  /** The vehicle's PUBACK for a message sent with publishToVehicle. */
  acknowledged(vin: string, client: Client, messageId: string): void
  /** Some gateway of the cluster (maybe this one) queued a downlink for the vehicle. */
  downlinkWaiting(vin: string): void
  /** Some gateway of the cluster queued a campaign. */
  campaignQueued(campaignId: string): void
  /** Stream events committed by some gateway of the cluster (cluster mode only). */
  events(bodies: unknown[]): void
}

export interface VehicleEdgeDeps {
  observer: EdgeObserver
  /** Records an ACK envelope against its downlink message; resolves when committed. */
  acknowledge: (vin: string, ack: Envelope) => Promise<void>
  store: Store
  log: CommitBatcher<TransactionRecord>
  ctx: RecordContext
  logger: Logger
  limits: EnvelopeLimits
  maxPacketBytes: number
  /** Log rows waiting for a commit, at most (see GatewayConfig.maxPendingRecords). */
  maxPendingRecords: number
  /** Cluster mode (see cluster.ts); undefined: one gateway. */
  redisUrl?: string
  tls: TlsMaterial
}

export interface VehicleEdge {
  readonly server: tls.Server
  readonly broker: Aedes
  readonly connections: ConnectionRegistry
  /**
   * Sends an envelope on the vehicle's down topic at QoS 1 over its connection here.
   * Resolves false when the vehicle is not connected and subscribed here. The PUBACK
   * is reported to the observer with `messageId` (null: nobody is told).
   */
  publishToVehicle(vin: string, payload: Buffer, messageId: string | null): Promise<boolean>
  /** Tells every gateway of the cluster (this one included) that a downlink waits for the vehicle. */
  announceDownlink(vin: string): void
  /** Tells every gateway of the cluster that a campaign was queued. */
  announceCampaign(campaignId: string): void
  /** Sends committed stream events to every gateway of the cluster. */
  broadcastEvents(bodies: unknown[]): void
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
  const connectedAt = new WeakMap<object, Date>()
  const connections = new ConnectionRegistry()

  const recordSecurity = (who: { vin: string, market: string | null, fingerprint: string | null, remoteAddress: string }, code: ErrorCode, type: string, detail: string, extra?: Record<string, unknown>): void => {
    logger.warn({ vin: who.vin, code, type, detail, remoteAddress: who.remoteAddress }, 'security event')
    log.add(securityEvent(ctx, { ...who, code, type, detail, ...(extra !== undefined ? { extra } : {}) }))
      .catch((err: unknown) => logger.error({ err, vin: who.vin, code }, 'security event not recorded'))
  }
  const identityOf = (client: Client): DeviceIdentity | undefined => identities.get(client.conn)

  const broker = await Aedes.createBroker({
    ...(deps.redisUrl !== undefined ? clusterBrokerOptions(deps.redisUrl) : {}),
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
      const at = new Date(ctx.now())
      connectedAt.set(client, at)
      deps.store.vehicles.recordConnect(who.vin, who.market, who.fingerprint, at).then(
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
      // Memory stays bounded while the database is away: past the backlog limit a publishing
      // vehicle is disconnected without PUBACK and sends again later [MQTT-4.4.0-1].
      if (log.pending >= deps.maxPendingRecords) {
        logger.warn({ vin: who.vin, pending: log.pending, code: 'GW_ERR_STORE_UNAVAILABLE' }, 'commit backlog full; disconnecting a publishing vehicle')
        return callback(new GatewayError('GW_ERR_STORE_UNAVAILABLE', 'the commit backlog is full'))
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

  /*
   * Aedes keeps no outgoing state for clean sessions, so its 'ack' event does not say which
   * PUBLISH a PUBACK answers. A client must send PUBACKs in the order of the PUBLISH packets
   * [MQTT-4.6.0-2], and every QoS 1 PUBLISH to a vehicle goes through publishToVehicle, in
   * order: a queue per connection maps each PUBACK to its message.
   */
  const outbound = new WeakMap<Client, { subscribed: boolean, qos: number, awaitingAck: Array<string | null> }>()
  const publishToVehicle = (vin: string, payload: Buffer, messageId: string | null): Promise<boolean> => {
    const client = connections.get(vin)?.client
    const out = client === undefined ? undefined : outbound.get(client)
    if (client === undefined || out === undefined || !out.subscribed) return Promise.resolve(false)
    // A QoS 0 subscription gets QoS 0 packets (no PUBACK), so nothing waits for one.
    if (out.qos >= 1) out.awaitingAck.push(messageId)
    const packet: PublishPacket = { cmd: 'publish', topic: downTopic(vin), payload, qos: 1, retain: false, dup: false }
    return new Promise((resolve) => client.publish(packet, () => resolve(true)))
  }
  const uplinkDeps: UplinkDeps = {
    log,
    ctx,
    limits: deps.limits,
    logger,
    publishDown: async (vin, payload) => { await publishToVehicle(vin, payload, null) },
    acknowledge: deps.acknowledge
  }

  broker.on('client', (client) => {
    const who = identityOf(client)
    if (who === undefined) return
    connections.add(client, who, new Date(ctx.now()))
    deps.observer.connected(who.vin, client)
    logger.info({ vin: who.vin, remoteAddress: who.remoteAddress }, 'vehicle connected')
    log.add(connectionEvent(ctx, who, 'connect', { clientId: client.id }))
      .catch((err: unknown) => logger.error({ err, vin: who.vin }, 'connect event not recorded'))
  })
  broker.on('clientDisconnect', (client) => {
    const who = identityOf(client)
    if (who === undefined) return
    connections.remove(client, who.vin)
    deps.observer.disconnected(who.vin, client)
    logger.info({ vin: who.vin }, 'vehicle disconnected')
    log.add(connectionEvent(ctx, who, 'disconnect', { clientId: client.id }))
      .catch((err: unknown) => logger.error({ err, vin: who.vin }, 'disconnect event not recorded'))
    deps.store.vehicles.recordDisconnect(who.vin, new Date(ctx.now()), connectedAt.get(client) ?? new Date(0))
      .catch((err: unknown) => logger.warn({ err, vin: who.vin }, 'disconnect time not recorded'))
  })
  broker.on('subscribe', (subscriptions, client) => {
    const who = identityOf(client)
    const sub = who === undefined ? undefined : subscriptions.find((s) => s.topic === downTopic(who.vin))
    if (who === undefined || sub === undefined) return
    const out = outbound.get(client) ?? { subscribed: false, qos: 0, awaitingAck: [] }
    out.subscribed = true
    out.qos = Math.min(sub.qos, 1)
    outbound.set(client, out)
    deps.observer.subscribed(who.vin, client)
  })
  broker.on('ack', (_packet, client) => {
    const who = identityOf(client)
    const messageId = outbound.get(client)?.awaitingAck.shift()
    if (who !== undefined && messageId !== undefined && messageId !== null) deps.observer.acknowledged(who.vin, client, messageId)
  })
  // Announcements between the gateways of a cluster ride Aedes' own bus (Redis in cluster
  // mode); vehicles can neither publish nor subscribe `$` topics.
  const announce = (topic: string, payload: Buffer = Buffer.alloc(0)): void => {
    broker.publish({ cmd: 'publish', topic, payload, qos: 0, retain: false, dup: false }, () => undefined)
  }
  if (deps.redisUrl !== undefined) {
    await new Promise<void>((resolve) => broker.subscribe('$vgw/events', (packet, cb) => {
      try {
        deps.observer.events(JSON.parse(Buffer.from(packet.payload as Buffer).toString('utf8')) as unknown[])
      } catch (err) {
        logger.warn({ err }, 'unreadable stream events from the cluster')
      }
      cb()
    }, resolve))
  }
  await new Promise<void>((resolve) => broker.subscribe('$vgw/downlink/+', (packet, cb) => {
    deps.observer.downlinkWaiting(packet.topic.slice('$vgw/downlink/'.length))
    cb()
  }, resolve))
  await new Promise<void>((resolve) => broker.subscribe('$vgw/campaign/+', (packet, cb) => {
    deps.observer.campaignQueued(packet.topic.slice('$vgw/campaign/'.length))
    cb()
  }, resolve))

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
    publishToVehicle,
    announceDownlink: (vin) => announce(`$vgw/downlink/${vin}`),
    announceCampaign: (campaignId) => announce(`$vgw/campaign/${campaignId}`),
    broadcastEvents: (bodies) => announce('$vgw/events', Buffer.from(JSON.stringify(bodies))),
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
