import { parseEnvelope, type JsonValue } from '../../protocol/index.ts'
import type { TransactionRecord } from '../../store/index.ts'

export interface TransactionViewOptions {
  /** Whether `rawBase64` (the envelope bytes as received) is included; the legal export always keeps it. Default true. */
  raw?: boolean
}

/**
 * The JSON shape of one transaction (README, "REST API"): envelope fields in camelCase, times as
 * ISO strings, payload and raw bytes in base64. The API, the stream and the legal export share it.
 */
export function transactionView (r: TransactionRecord, options: TransactionViewOptions = {}): { [key: string]: JsonValue } {
  // The payload is not stored twice: it is read back from the raw envelope bytes.
  let payloadBase64: string | null = null
  if (r.raw !== null && r.status !== 'rejected') {
    try {
      payloadBase64 = Buffer.from(parseEnvelope(r.raw).payload).toString('base64')
    } catch {
      payloadBase64 = null
    }
  }
  const view: { [key: string]: JsonValue } = {
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
    rawBase64: null,
    details: r.details as JsonValue
  }
  // The raw bytes double an item's size, so the REST API sends them only when asked (?include=raw).
  if (options.raw === false) delete view.rawBase64
  else view.rawBase64 = r.raw === null ? null : Buffer.from(r.raw).toString('base64')
  return view
}
