import { createHash } from 'node:crypto'
import { LRUCache } from 'lru-cache'

/** What a rejected uplink's row is keyed by in the log's dedup index (vin, message_id, occurred_at). */
export interface RejectedIdentity {
  /** The envelope's own message_id when it could be read, otherwise one derived from the bytes. */
  messageId: string
  occurredAt: Date
  /** True when the message_id was derived, not read. */
  derived: boolean
}

/** What identifies a PUBLISH as a retransmission [MQTT-3.3.1-1, MQTT-4.4.0-1]. */
export interface PublishIdentity {
  packetId: number | undefined
  qos: number
  dup: boolean
}

/**
 * Makes a retransmitted rejected uplink land on the same dedup key as its first copy (issue #19 D).
 * An accepted uplink's key is stable by itself (its created_at); a rejected one has no readable
 * created_at, often no readable message_id, so its time is when it first arrived. A vehicle resends
 * an unacknowledged QoS 1 PUBLISH with its original packet identifier and the DUP flag set
 * [MQTT-3.3.1-1, MQTT-4.4.0-1]: such a copy of (vin, packet id, bytes) seen in the last `ttlMs`
 * gets the first copy's identity. A QoS 0 PUBLISH, or one without DUP, is a new message even with
 * the same bytes (clients that reuse one packet id send distinct messages). Bounded to `max` entries, per gateway.
 */
export class RejectedRepeats {
  readonly #seen: LRUCache<string, RejectedIdentity>
  readonly #now: () => number

  constructor (opts: { max: number, ttlMs: number, now: () => number }) {
    this.#now = opts.now
    this.#seen = new LRUCache({ max: opts.max, ttl: opts.ttlMs, ttlAutopurge: false })
  }

  identify (vin: string, packet: PublishIdentity, raw: Uint8Array, readableId: string | null): RejectedIdentity {
    const digest = createHash('sha256').update(vin).update('\n').update(String(packet.packetId ?? '')).update('\n').update(raw).digest()
    const key = digest.toString('base64')
    if (packet.qos >= 1 && packet.dup) {
      const known = this.#seen.get(key)
      if (known !== undefined) return known
    }
    // A new message: its own time, and (unreadable) an id from the bytes and the moment it came.
    const now = this.#now()
    const identity = readableId !== null
      ? { messageId: readableId, occurredAt: new Date(now), derived: false }
      : { messageId: uuidFromDigest(createHash('sha256').update(digest).update(String(now)).digest()), occurredAt: new Date(now), derived: true }
    if (packet.qos >= 1) this.#seen.set(key, identity)
    return identity
  }
}

/** An RFC 9562 version 8 (custom) UUID from the first 16 bytes of a digest. */
function uuidFromDigest (digest: Buffer): string {
  const b = Buffer.from(digest.subarray(0, 16))
  b[6] = ((b[6] as number) & 0x0f) | 0x80
  b[8] = ((b[8] as number) & 0x3f) | 0x80
  const h = b.toString('hex')
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`
}
