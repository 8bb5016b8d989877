import { Aedes, type AuthenticateError, type Client, type PublishPacket } from 'aedes'
import type { Logger } from 'pino'
import { GatewayError, downTopic, type ErrorCode } from '../../protocol/index.ts'
import type { ConnectRow } from '../../store/index.ts'
import { clusterBrokerOptions } from './cluster.ts'
import { isGatewayPayload } from './downlink-channel.ts'
import type { ConnectionRegistry } from './connections.ts'
import type { DeviceIdentity } from './device-identity.ts'
import type { SecurityRecorder } from './security-events.ts'
import { checkPublish, checkSubscribe } from './topic-acl.ts'

// MQTT 3.1.1 §3.2.2.3 return codes.
const CONNACK_SERVER_UNAVAILABLE = 3
const CONNACK_NOT_AUTHORIZED = 5

export interface BrokerHookDeps {
  /** The identity of a connection that passed mutual TLS (keyed by the connection Aedes was handed). */
  identityOf: (client: Client) => DeviceIdentity | undefined
  connections: ConnectionRegistry
  security: SecurityRecorder
  /**
   * Upserts the vehicle row, batched with other connects (vehicle-edge.ts); CONNACK waits for
   * its commit, so that a vehicle the backend sees connected exists for REST sends and reads.
   */
  recordConnect: (row: ConnectRow) => Promise<void>
  now: () => number
  logger: Logger
  /**
   * The durable point of an uplink that passed the topic check: resolves once it has
   * committed (Aedes writes PUBACK after authorizePublish calls back), rejects to close
   * the connection without PUBACK.
   */
  acceptUplink: (client: Client, who: DeviceIdentity, packet: PublishPacket) => Promise<void>
  /** When this session began, for the disconnect row (set at CONNACK time). */
  sessionStarted: (client: Client, at: Date) => void
  /** True while the gateway sheds load (gateway/overload.ts): new sessions are refused, open ones carry on. */
  overloaded?: () => boolean
  /** Levels of a topic or topic filter at most (VGW_MAX_TOPIC_LEVELS): Aedes closes a connection that sends a deeper one. */
  maxTopicLevels: number
  /** Cluster mode: Aedes' bus and sessions in this Redis. */
  redisUrl?: string
  /** Cluster mode: the secret bus messages are signed with (cluster.ts). */
  clusterSecret?: string
}

function refusal (code: ErrorCode, returnCode: number): AuthenticateError {
  const err = new GatewayError(code) as GatewayError & { returnCode: number }
  err.returnCode = returnCode
  return err as unknown as AuthenticateError
}

function printable (text: string): string {
  return text.replace(/[^\x20-\x7e]/g, '?').slice(0, 64)
}

/** The Aedes broker with vgw's identity, topic-right and durability hooks. */
export async function createBroker (deps: BrokerHookDeps): Promise<Aedes> {
  const { identityOf, security, logger } = deps
  const wantsWill = new WeakMap<object, boolean>()

  const denyClientId = (client: Client, who: DeviceIdentity): AuthenticateError => {
    const takeover = deps.connections.isConnected(client.id)
    security.record(who, 'GW_ERR_CLIENT_ID_MISMATCH', takeover ? 'takeover.denied' : 'client_id.mismatch',
      `clientId ${JSON.stringify(printable(client.id))} with the certificate of ${who.vin}`, { clientId: printable(client.id) })
    const victim = takeover ? deps.connections.get(client.id)?.identity : undefined
    if (victim !== undefined) {
      security.record({ ...victim, remoteAddress: who.remoteAddress, fingerprint: who.fingerprint }, 'GW_ERR_CLIENT_ID_MISMATCH', 'takeover.denied',
        `a certificate for ${who.vin} tried to take over this vehicle's session`, { presentedVin: who.vin })
    }
    return refusal('GW_ERR_CLIENT_ID_MISMATCH', CONNACK_NOT_AUTHORIZED)
  }

  return await Aedes.createBroker({
    ...(deps.redisUrl !== undefined ? clusterBrokerOptions(deps.redisUrl, deps.clusterSecret ?? '', logger) : {}),
    connectTimeout: 10_000,
    drainTimeout: 10_000,
    maxTopicLevels: deps.maxTopicLevels,
    // QoS 2 is refused in authorizePublish before Aedes would store it; this is a second bound.
    maxInflightInbound: 1,

    preConnect (client, packet, callback) {
      // The will is refused in authenticate, where a CONNACK code can carry the refusal.
      wantsWill.set(client, packet.will !== undefined && packet.will !== null)
      // PostgreSQL is the queue: the broker keeps no session beyond the connection, so a
      // clean=false CONNECT is served as a clean one and its CONNACK says session present 0
      // [MQTT-3.2.2-2]; the vehicle subscribes again and gets its downlinks from the database.
      packet.clean = true
      callback(null, true)
    },

    authenticate (client, _username, _password, done) {
      const who = identityOf(client)
      if (who === undefined) return done(refusal('GW_ERR_CERT_MISSING', CONNACK_NOT_AUTHORIZED), false)
      // [MQTT-3.1.3-8] lets the server refuse a clientId; ours must equal the certificate's VIN,
      // and this check runs before Aedes closes an existing session with that clientId.
      if (client.id !== who.vin) return done(denyClientId(client, who), false)
      if (wantsWill.get(client) === true) {
        security.record(who, 'GW_ERR_WILL_DENIED', 'will.denied', 'CONNECT carried a will message')
        return done(refusal('GW_ERR_WILL_DENIED', CONNACK_NOT_AUTHORIZED), false)
      }
      // Overloaded: CONNACK 3, server unavailable (§3.2.2.3; the connection then closes [MQTT-3.2.2-5]); the vehicle retries later.
      if (deps.overloaded?.() === true) return done(refusal('GW_ERR_OVERLOADED', CONNACK_SERVER_UNAVAILABLE), false)
      const at = new Date(deps.now())
      deps.sessionStarted(client, at)
      deps.recordConnect({ vin: who.vin, market: who.market, certFingerprint: who.fingerprint, at }).then(
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
        security.record(who, denied, 'publish.denied', `publish to ${JSON.stringify(printable(packet.topic))}${packet.retain ? ' (retained)' : ''}`, { topic: printable(packet.topic) })
        return callback(new GatewayError(denied))
      }
      deps.acceptUplink(client, who, packet).then(() => callback(null), (err: Error) => callback(err))
    },

    authorizeSubscribe (client, sub, callback) {
      const who = identityOf(client)
      if (who === undefined) return callback(null, null)
      const denied = checkSubscribe(who.vin, sub.topic)
      if (denied !== null) {
        security.record(who, denied, 'subscribe.denied', `subscribe to ${JSON.stringify(printable(sub.topic))}`, { topic: printable(sub.topic) })
        return callback(null, null) // SUBACK 0x80 [MQTT-3.9.3-2]
      }
      callback(null, { ...sub, qos: sub.qos > 1 ? 1 : sub.qos })
    },

    authorizeForward (client, packet) {
      return packet.topic === downTopic(client.id) && isGatewayPayload(packet.payload) ? packet : null
    }
  })
}
