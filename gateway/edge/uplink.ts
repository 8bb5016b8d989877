import type { Logger } from 'pino'
import { decodeEnvelope, encodeEnvelope, isUuid, type Envelope, type EnvelopeLimits, type ErrorCode } from '../../protocol/index.ts'
import type { TransactionRecord } from '../../store/index.ts'
import type { CommitBatcher } from '../commit-batcher.ts'
import type { DeviceIdentity } from './device-identity.ts'
import type { PublishIdentity, RejectedRepeats } from './rejected-repeats.ts'
import { acceptedUplink, errorNotice, rejectedUplink, scrubNul, type RecordContext } from './records.ts'

export interface UplinkDeps {
  log: CommitBatcher<TransactionRecord>
  ctx: RecordContext
  limits: EnvelopeLimits
  logger: Logger
  /** Sends bytes on the vehicle's down topic at QoS 1, if it is listening. */
  publishDown: (vin: string, payload: Buffer) => Promise<void>
  /** Gives a rejected uplink the dedup key of its first copy, so a retransmission is stored once. */
  rejectedRepeats: RejectedRepeats
  /** Records a vehicle app's ACK of a downlink message (README, "Delivery semantics"); resolves when committed. */
  acknowledge: (vin: string, ack: Envelope) => Promise<void>
}

/**
 * One uplink PUBLISH, from bytes to durable row (docs/architecture.md, "The path of an uplink"). Resolves once the
 * row has committed: the caller answers the vehicle (PUBACK) only then. A bad
 * envelope is stored as `rejected` with its raw bytes and answered with an error
 * notice, and still resolves, so a poison message never blocks the vehicle's queue.
 */
export async function handleUplink (deps: UplinkDeps, who: DeviceIdentity, raw: Buffer, packet: PublishIdentity = { packetId: undefined, qos: 1, dup: false }): Promise<void> {
  const result = decodeEnvelope(raw, deps.limits, deps.ctx.now())
  if (result.ok) {
    const stored = deps.log.add(acceptedUplink(deps.ctx, who, result.envelope, raw))
    // An ACK moves its message to `acknowledged`; a late or repeated one changes nothing but is still logged above.
    const e = result.envelope
    await (e.kind === 'ACK' ? Promise.all([stored, deps.acknowledge(who.vin, e)]) : stored)
    // An ACK is logged under the message it answers, so one grep of a downlink's id finds it too.
    // The hot path builds the line only when debug is on.
    if (deps.logger.isLevelEnabled('debug')) {
      deps.logger.debug({ vin: who.vin, messageId: e.kind === 'ACK' ? e.correlationId : e.messageId, kind: e.kind, ...(e.kind === 'ACK' ? { uplinkId: e.messageId, ackStatus: e.ackStatus } : {}) }, 'uplink committed')
    }
    return
  }
  const readableId = result.envelope !== undefined && isUuid(result.envelope.messageId) ? result.envelope.messageId : null
  const notice = buildErrorNotice(deps.ctx, result.code, result.detail, readableId)
  const noticeBytes = encodeEnvelope(notice)
  await Promise.all([
    deps.log.add(rejectedUplink(deps.ctx, who, result.code, result.detail, raw, deps.rejectedRepeats.identify(who.vin, packet, raw, readableId))),
    deps.log.add(errorNotice(deps.ctx, who, notice, noticeBytes))
  ])
  deps.logger.info({ vin: who.vin, messageId: readableId, code: result.code, detail: result.detail }, 'uplink rejected')
  // The rejection is durable; the notice is a courtesy the vehicle may miss if it drops now.
  deps.publishDown(who.vin, Buffer.from(noticeBytes)).catch((err: unknown) => {
    deps.logger.warn({ err, vin: who.vin }, 'error notice not delivered')
  })
}

/** README, "Delivery semantics (uplink)": kind RESPONSE, type `error`, ack_status REJECTED, ack_reason = the code. */
export function buildErrorNotice (ctx: RecordContext, code: ErrorCode, detail: string, correlationId: string | null): Envelope {
  return {
    messageId: ctx.newId(),
    correlationId: correlationId ?? '',
    kind: 'RESPONSE',
    type: 'error',
    createdAtMs: ctx.now(),
    ttlSeconds: 0,
    payload: new Uint8Array(0),
    attributes: { 'error-detail': scrubNul(detail).slice(0, 500) },
    ackStatus: 'REJECTED',
    ackReason: code
  }
}
