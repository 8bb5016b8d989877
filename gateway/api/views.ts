import { decodeEnvelope, defaultEnvelopeLimits } from '../../protocol/index.ts'
import type { TransactionRecord } from '../../store/index.ts'

const READ_LIMITS = { ...defaultEnvelopeLimits, maxBytes: Number.MAX_SAFE_INTEGER, maxAgeMs: Number.MAX_SAFE_INTEGER, maxFutureSkewMs: Number.MAX_SAFE_INTEGER }

/** The JSON shape of one transaction (DESIGN §5): envelope fields in camelCase, times as ISO strings. */
export function transactionView (r: TransactionRecord): Record<string, unknown> {
  // The payload is not stored twice: it is read back from the raw envelope bytes.
  let payloadBase64: string | null = null
  if (r.raw !== null && r.status !== 'rejected') {
    const decoded = decodeEnvelope(r.raw, READ_LIMITS, 0)
    if (decoded.ok || decoded.envelope !== undefined) {
      const env = decoded.ok ? decoded.envelope : decoded.envelope
      payloadBase64 = env === undefined ? null : Buffer.from(env.payload).toString('base64')
    }
  }
  return {
    id: r.id,
    vin: r.vin,
    market: r.market,
    direction: r.direction,
    kind: r.kind,
    type: r.type,
    messageId: r.messageId,
    correlationId: r.correlationId,
    createdAtMs: r.createdAtMs,
    ttlSeconds: r.ttlSeconds,
    attributes: r.attributes,
    ackStatus: r.ackStatus,
    ackReason: r.ackReason,
    status: r.status,
    errorCode: r.errorCode,
    occurredAt: r.occurredAt.toISOString(),
    receivedAt: r.receivedAt.toISOString(),
    payloadBase64,
    rawBase64: r.raw === null ? null : Buffer.from(r.raw).toString('base64'),
    details: r.details
  }
}
