import { randomUUID } from 'node:crypto'
import type { Aedes } from 'aedes'
import type { Logger } from 'pino'
import type { CertLink } from './device-identity.ts'

export interface ClusterBusHandlers {
  /** Some gateway of the cluster (maybe this one) queued a downlink for the vehicle. */
  downlinkWaiting(vin: string): void
  /** Some gateway of the cluster queued a campaign. */
  campaignQueued(campaignId: string): void
  /** Stream events committed by some gateway of the cluster (cluster mode only). */
  events(bodies: unknown[]): void
  /** Another gateway (or worker) changed API keys through its REST API: revoked ids are refused at once. */
  keysChanged(change: { revoked: string[] }): void
}

// Key ids are UUIDs; an announcement names at most this many (a revocation by name of a very common name is split).
const MAX_IDS_PER_ANNOUNCEMENT = 1000

/**
 * Announcements between the gateways of a cluster. They ride Aedes' own bus (Redis in
 * cluster mode, in-process otherwise); vehicles can neither publish nor subscribe `$`
 * topics (topic-acl.ts), so only gateways speak on it.
 */
export class ClusterBus {
  readonly #broker: Aedes
  /** Names this gateway's own announcements, which it has already applied. */
  readonly #self = randomUUID()

  constructor (broker: Aedes) {
    this.#broker = broker
  }

  /** Subscribes the handlers; events travel between gateways only in cluster mode. */
  async start (handlers: ClusterBusHandlers, clustered: boolean, logger: Logger): Promise<void> {
    if (clustered) {
      await this.#subscribe('$vgw/events', (_topic, payload) => {
        try {
          handlers.events(JSON.parse(payload.toString('utf8')) as unknown[])
        } catch (err) {
          logger.warn({ err }, 'unreadable stream events from the cluster')
        }
      })
    }
    await this.#subscribe('$vgw/keys', (_topic, payload) => {
      try {
        const m = JSON.parse(payload.toString('utf8')) as { from?: unknown, revoked?: unknown }
        if (m.from === this.#self) return
        if (!Array.isArray(m.revoked)) throw new Error('not a list')
        handlers.keysChanged({ revoked: m.revoked.filter((id): id is string => typeof id === 'string').slice(0, MAX_IDS_PER_ANNOUNCEMENT) })
      } catch (err) {
        logger.warn({ err }, 'unreadable API key announcement from the cluster')
      }
    })
    await this.#subscribe('$vgw/downlink/+', (topic) => handlers.downlinkWaiting(topic.slice('$vgw/downlink/'.length)))
    await this.#subscribe('$vgw/campaign/+', (topic) => handlers.campaignQueued(topic.slice('$vgw/campaign/'.length)))
  }

  announceDownlink (vin: string): void {
    this.#announce(`$vgw/downlink/${vin}`)
  }

  announceCampaign (campaignId: string): void {
    this.#announce(`$vgw/campaign/${campaignId}`)
  }

  /**
   * API keys changed through this gateway's REST API (revoked, rotated, created): every other
   * gateway and worker drops the revoked ones at once and reads its key snapshot again. Signed
   * like every `$` message in cluster mode (cluster.ts).
   */
  announceKeys (change: { revoked: string[] }): void {
    for (let i = 0; i === 0 || i < change.revoked.length; i += MAX_IDS_PER_ANNOUNCEMENT) {
      this.#announce('$vgw/keys', Buffer.from(JSON.stringify({ from: this.#self, revoked: change.revoked.slice(i, i + MAX_IDS_PER_ANNOUNCEMENT) })))
    }
  }

  /** Certificates this gateway found revoked: every gateway closes their sessions (revocation.ts). */
  announceRevoked (links: CertLink[]): void {
    this.#announce('$vgw/revoked', Buffer.from(JSON.stringify(links)))
  }

  async onRevoked (handle: (links: CertLink[]) => void, logger?: Logger): Promise<void> {
    await this.#subscribe('$vgw/revoked', (_topic, payload) => {
      try {
        const links = JSON.parse(payload.toString('utf8')) as unknown
        if (!Array.isArray(links)) throw new Error('not a list')
        handle(links.filter((l): l is CertLink => typeof (l as CertLink).issuer === 'string' && typeof (l as CertLink).serial === 'string'))
      } catch (err) {
        logger?.warn({ err }, 'unreadable revocation announcement from the cluster')
      }
    })
  }

  broadcastEvents (bodies: unknown[]): void {
    this.#announce('$vgw/events', Buffer.from(JSON.stringify(bodies)))
  }

  #announce (topic: string, payload: Buffer = Buffer.alloc(0)): void {
    this.#broker.publish({ cmd: 'publish', topic, payload, qos: 0, retain: false, dup: false }, () => undefined)
  }

  #subscribe (topic: string, handle: (topic: string, payload: Buffer) => void): Promise<void> {
    return new Promise<void>((resolve) => this.#broker.subscribe(topic, (packet, cb) => {
      handle(packet.topic, Buffer.from(packet.payload as Buffer))
      cb()
    }, resolve))
  }
}
