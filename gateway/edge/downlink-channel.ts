import type { Client, PublishPacket, Subscription } from 'aedes'
import { downTopic } from '../../protocol/index.ts'
import type { ConnectionRegistry } from './connections.ts'

interface Outbound {
  subscribed: boolean
  qos: number
  /** Message ids of the QoS 1 PUBLISH packets on this connection still waiting for their PUBACK, in order. */
  awaitingAck: Array<string | null>
}

/**
 * Payloads this gateway itself publishes to vehicles. The broker forwards nothing else to a
 * vehicle (broker-hooks.ts authorizeForward): not a message on the bus, which in cluster
 * mode is Redis, nor a retained message from the session store (README, "Security").
 */
const ownPayloads = new WeakSet<object>()

export function isGatewayPayload (payload: unknown): boolean {
  return typeof payload === 'object' && payload !== null && ownPayloads.has(payload)
}

/**
 * The gateway's side of a vehicle's down topic: publishes on the vehicle's connection and
 * maps each PUBACK to its message.
 *
 * Aedes keeps no outgoing state for clean sessions, so its 'ack' event does not say which
 * PUBLISH a PUBACK answers. A client must send PUBACKs in the order of the PUBLISH packets
 * [MQTT-4.6.0-2], and every QoS 1 PUBLISH to a vehicle goes through `publish`, in order: a
 * queue per connection maps each PUBACK to its message.
 */
export class DownlinkChannel {
  readonly #connections: ConnectionRegistry
  readonly #outbound = new WeakMap<Client, Outbound>()

  constructor (connections: ConnectionRegistry) {
    this.#connections = connections
  }

  /**
   * Sends an envelope on the vehicle's down topic at QoS 1 over its connection here.
   * Resolves false when the vehicle is not connected and subscribed here. `onPublish` runs once
   * the PUBLISH is certain to be written, before it is: whatever it records is ahead of
   * anything the vehicle's PUBACK records (issue #19: a `sent` row for every attempt).
   */
  publish (vin: string, payload: Buffer, messageId: string | null, onPublish?: () => void): Promise<boolean> {
    const client = this.#connections.get(vin)?.client
    const out = client === undefined ? undefined : this.#outbound.get(client)
    if (client === undefined || out === undefined || !out.subscribed) return Promise.resolve(false)
    onPublish?.()
    // A QoS 0 subscription gets QoS 0 packets (no PUBACK), so nothing waits for one.
    if (out.qos >= 1) out.awaitingAck.push(messageId)
    const packet: PublishPacket = { cmd: 'publish', topic: downTopic(vin), payload, qos: 1, retain: false, dup: false }
    ownPayloads.add(payload)
    return new Promise((resolve) => client.publish(packet, () => resolve(true)))
  }

  /** The vehicle subscribed: returns true when it subscribed to its own down topic. */
  subscribed (client: Client, vin: string, subscriptions: Subscription[]): boolean {
    const sub = subscriptions.find((s) => s.topic === downTopic(vin))
    if (sub === undefined) return false
    const out = this.#outbound.get(client) ?? { subscribed: false, qos: 0, awaitingAck: [] }
    out.subscribed = true
    out.qos = Math.min(sub.qos, 1)
    this.#outbound.set(client, out)
    return true
  }

  /** A PUBACK arrived: the message id it acknowledges (null: a notice nobody tracks; undefined: none). */
  acknowledged (client: Client): string | null | undefined {
    return this.#outbound.get(client)?.awaitingAck.shift()
  }
}
