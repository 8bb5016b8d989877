import type { PublishPacket } from 'aedes'
import type { Logger } from 'pino'
import { GatewayError } from '../../protocol/index.ts'
import type { TransactionRecord } from '../../store/index.ts'
import type { CommitBatcher } from '../commit-batcher.ts'
import type { DeviceIdentity } from './device-identity.ts'
import type { SecurityRecorder } from './security-events.ts'
import type { VehicleQuotas } from './vehicle-quota.ts'
import type { PublishIdentity } from './rejected-repeats.ts'

export interface UplinkGateDeps {
  log: CommitBatcher<TransactionRecord>
  /** Commit backlog bounds, in rows and in bytes. */
  maxPendingRecords: number
  maxPendingBytes: number
  quotas: VehicleQuotas
  security: SecurityRecorder
  logger: Logger
  /** The uplink path proper: resolves once the envelope's row has committed. */
  handle: (who: DeviceIdentity, payload: Buffer, packet: PublishIdentity) => Promise<void>
}

/**
 * What an uplink PUBLISH must pass before it costs memory or a row: QoS, the commit
 * backlog, the vehicle's quota. A rejection closes the connection without PUBACK, which
 * is the only refusal MQTT 3.1.1 has for a PUBLISH [MQTT-3.3.5-2]; the vehicle sends again later.
 */
export function createUplinkGate (deps: UplinkGateDeps): (who: DeviceIdentity, packet: PublishPacket) => Promise<void> {
  const { log, logger } = deps
  return async (who, packet) => {
    const payload = packet.payload as Buffer
    // QoS 2 would make the broker hold each packet until PUBREL; vehicles publish at QoS 1.
    if (packet.qos === 2) {
      deps.security.record(who, 'GW_ERR_QOS_DENIED', 'publish.qos_denied', `QoS 2 PUBLISH of ${payload.length} bytes`)
      throw new GatewayError('GW_ERR_QOS_DENIED')
    }
    // Memory stays bounded while the database is away: past the backlog limit a publishing
    // vehicle is disconnected without PUBACK and sends again later [MQTT-4.4.0-1].
    if (log.pending >= deps.maxPendingRecords || log.pendingBytes + payload.length > deps.maxPendingBytes) {
      logger.warn({ vin: who.vin, pending: log.pending, pendingBytes: log.pendingBytes, code: 'GW_ERR_STORE_UNAVAILABLE' }, 'commit backlog full; disconnecting a publishing vehicle')
      throw new GatewayError('GW_ERR_STORE_UNAVAILABLE', 'the commit backlog is full')
    }
    const verdict = deps.quotas.take(who.vin, payload.length)
    if (!verdict.ok) {
      deps.security.record(who, 'GW_ERR_QUOTA_EXCEEDED', `quota.${verdict.reason}`, verdict.detail)
      throw new GatewayError('GW_ERR_QUOTA_EXCEEDED', `quota exceeded: ${verdict.detail}`)
    }
    // Over the rate but within the burst's debt: the PUBACK waits, and so does the vehicle's window.
    if (verdict.waitMs > 0) await new Promise((resolve) => setTimeout(resolve, verdict.waitMs))
    await deps.handle(who, payload, { packetId: packet.messageId, qos: packet.qos, dup: packet.dup })
  }
}
