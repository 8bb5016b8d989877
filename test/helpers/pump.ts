import type { MqttClient } from 'mqtt'
import { encodeEnvelope } from '../../protocol/index.ts'
import { envelope } from './vehicle.ts'

export interface Pump {
  /** message_id → time of the PUBACK, for every uplink acknowledged. */
  acked: Map<string, number>
  sent: Set<string>
  /** message_id → time it was published. */
  sentAt: Map<string, number>
  stop(waitMs?: number): Promise<void>
}

/** Keeps `inFlight` QoS 1 uplinks open from one vehicle until stopped; stop() waits for the PUBACKs still due. */
export function pump (client: MqttClient, vin: string, inFlight: number): Pump {
  const acked = new Map<string, number>()
  const sent = new Set<string>()
  const sentAt = new Map<string, number>()
  let running = true
  let open = 0
  const one = (): void => {
    if (!running) return
    const e = envelope()
    sent.add(e.messageId)
    sentAt.set(e.messageId, Date.now())
    open++
    client.publish(`vehicles/${vin}/up`, Buffer.from(encodeEnvelope(e)), { qos: 1 }, (err) => {
      open--
      if (err === undefined || err === null) acked.set(e.messageId, Date.now())
      setImmediate(one)
    })
  }
  for (let i = 0; i < inFlight; i++) one()
  return {
    acked,
    sent,
    sentAt,
    async stop (waitMs = 30_000) {
      running = false
      const deadline = Date.now() + waitMs
      while (open > 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20))
    }
  }
}
