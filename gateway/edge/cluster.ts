import { createHmac, randomUUID, timingSafeEqual } from 'node:crypto'
import AedesPersistenceRedis from 'aedes-persistence-redis'
import { Redis } from 'ioredis'
import { LRUCache } from 'lru-cache'
import MQEmitterRedis from 'mqemitter-redis'
import type { Logger } from 'pino'
import { GatewayError } from '../../protocol/index.ts'

/** What cluster.ts uses of an mqemitter-redis instance: its base emitter and its subscriber connection. */
interface RedisEmitter {
  emit(msg: BusPacket, done?: (err?: Error) => void): void
  /** mqemitter's own emit: delivers to this process's subscribers only. */
  _emit(msg: BusPacket, done?: (err?: Error) => void): void
  subConn: Redis
  pubConn: Redis
  closed?: boolean
}

interface BusPacket {
  topic: string
  payload?: Buffer | string
  [field: string]: unknown
}

const MAC_BYTES = 32
/** A message older (or newer) than this is a replay or a clock gone wrong: dropped. */
const MAX_SKEW_MS = 30_000
const SENTINEL_HELLO = '__sentinel__:hello'

/**
 * The Redis bus with every message authenticated (README, "Security"): an HMAC-SHA256 over
 * the channel and the body with the cluster's shared secret (VGW_CLUSTER_SECRET), a time
 * and an id against replays. A message that fails any check — garbage, a forged downlink, a
 * forged session close — is dropped with a log line and never reaches Aedes; mqemitter-redis'
 * own decoder (msgpack, which throws on garbage, uncaught) is replaced by this one. Only `$`
 * topics (gateway announcements, Aedes' `$SYS` session messages) travel: uplinks stay in
 * the process that received them, since no other gateway needs them.
 */
export function signedEmitter (redisUrl: string, secret: string, logger: Logger): unknown {
  if (secret.length < 32) throw new GatewayError('GW_ERR_CONFIG_INVALID', 'VGW_CLUSTER_SECRET: cluster mode needs a shared secret of at least 32 characters')
  const mq = MQEmitterRedis({ connectionString: redisUrl }) as unknown as RedisEmitter
  const mac = (channel: string, body: Buffer): Buffer => createHmac('sha256', secret).update(channel).update('\0').update(body).digest()
  const seen = new LRUCache<string, true>({ max: 100_000, ttl: 2 * MAX_SKEW_MS })
  const drops = new DropLog(logger)

  mq.emit = (msg, done) => {
    if (!msg.topic.startsWith('$')) { mq._emit(msg, done); return }
    const { payload, ...fields } = msg
    const body = Buffer.from(JSON.stringify({ id: randomUUID(), at: Date.now(), msg: fields, payload: Buffer.from(payload ?? '').toString('base64') }))
    mq.pubConn.publish(msg.topic, Buffer.concat([mac(msg.topic, body), body])).then(() => done?.(), (err: Error) => done?.(err))
  }

  const receive = (channelBuf: Buffer, message: Buffer): void => {
    const channel = channelBuf.toString('utf8')
    if (channel === SENTINEL_HELLO) return
    const verdict = open(channel, message, mac, seen)
    if (typeof verdict === 'string') { drops.note(channel, verdict); return }
    mq._emit(verdict)
  }
  mq.subConn.removeAllListeners('messageBuffer')
  mq.subConn.removeAllListeners('pmessageBuffer')
  mq.subConn.on('messageBuffer', (channel: Buffer, message: Buffer) => receive(channel, message))
  mq.subConn.on('pmessageBuffer', (_pattern: Buffer, channel: Buffer, message: Buffer) => receive(channel, message))
  return mq
}

/** The packet a bus message carries, or why it was dropped. Never throws. */
function open (channel: string, message: Buffer, mac: (c: string, b: Buffer) => Buffer, seen: LRUCache<string, true>): BusPacket | string {
  if (message.length <= MAC_BYTES) return 'too short to carry a signature'
  const body = message.subarray(MAC_BYTES)
  if (!timingSafeEqual(message.subarray(0, MAC_BYTES), mac(channel, body))) return 'bad signature'
  let parsed: { id?: unknown, at?: unknown, msg?: unknown, payload?: unknown }
  try {
    parsed = JSON.parse(body.toString('utf8')) as typeof parsed
  } catch {
    return 'signed but not JSON'
  }
  const { id, at, msg, payload } = parsed
  if (typeof id !== 'string' || typeof at !== 'number' || typeof payload !== 'string' || msg === null || typeof msg !== 'object') return 'signed but malformed'
  if (Math.abs(Date.now() - at) > MAX_SKEW_MS) return 'outside the replay window'
  if (seen.has(id)) return 'replayed'
  seen.set(id, true)
  const packet = { ...(msg as Record<string, unknown>), payload: Buffer.from(payload, 'base64') } as BusPacket
  if (packet.topic !== channel) return 'topic differs from its channel'
  return packet
}

/** One warning per second at most, with the count of what was dropped meanwhile. */
class DropLog {
  readonly #logger: Logger
  #last = 0
  #since = 0

  constructor (logger: Logger) { this.#logger = logger }

  note (channel: string, reason: string): void {
    this.#since++
    const now = Date.now()
    if (now - this.#last < 1000) return
    this.#logger.warn({ channel: channel.slice(0, 120), reason, dropped: this.#since }, 'unauthenticated cluster bus message dropped')
    this.#last = now
    this.#since = 0
  }
}

/**
 * Cluster mode (VGW_REDIS_URL): the gateways of a fleet share Aedes' message bus and
 * session store through Redis (mqemitter-redis, aedes-persistence-redis). A vehicle that
 * connects to a second gateway closes its session on the first, and announcements of
 * waiting downlinks reach the gateway its vehicle is connected to. PostgreSQL stays the
 * queue: losing Redis loses no acknowledged message. `rediss://` URLs use TLS and a
 * password in the URL authenticates (ioredis).
 */
export function clusterBrokerOptions (redisUrl: string, secret: string, logger: Logger): { mq: unknown, persistence: unknown } {
  return {
    mq: signedEmitter(redisUrl, secret, logger),
    persistence: AedesPersistenceRedis({ conn: new Redis(redisUrl, { maxRetriesPerRequest: null }) })
  }
}
