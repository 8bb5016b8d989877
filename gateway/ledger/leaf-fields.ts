import type { JsonValue, LeafFields } from '../../protocol/index.ts'
import type { TransactionRecord } from '../../store/index.ts'

/** A stored row's fields as the ledger's leaf covers them. */
export function leafFieldsOfRecord (r: TransactionRecord): LeafFields {
  return {
    id: r.id, vin: r.vin, market: r.market, direction: r.direction, kind: r.kind, type: r.type, messageId: r.messageId,
    correlationId: r.correlationId, createdAtMs: r.createdAtMs === null ? null : Number(r.createdAtMs), ttlSeconds: r.ttlSeconds,
    attributes: r.attributes, ackStatus: r.ackStatus, ackReason: r.ackReason, status: r.status, errorCode: r.errorCode,
    occurredAtMs: r.occurredAt.getTime(), receivedAtMs: r.receivedAt.getTime(), details: r.details, raw: r.raw
  }
}

const str = (v: JsonValue | undefined): string | null => typeof v === 'string' ? v : null
const int = (v: JsonValue | undefined): number | null => typeof v === 'number' ? v : null

/** The same from a legal export's record (docs/legal-export.md, "A record"); payloadBase64 is derived from the raw bytes and not covered. */
export function leafFieldsOfView (v: { [key: string]: JsonValue }): LeafFields {
  return {
    id: str(v.id) ?? '', vin: str(v.vin), market: str(v.market), direction: str(v.direction) ?? '', kind: str(v.kind) ?? '', type: str(v.type),
    messageId: str(v.messageId), correlationId: str(v.correlationId), createdAtMs: int(v.createdAtMs), ttlSeconds: int(v.ttlSeconds),
    attributes: v.attributes ?? null, ackStatus: str(v.ackStatus), ackReason: str(v.ackReason), status: str(v.status) ?? '', errorCode: str(v.errorCode),
    occurredAtMs: Date.parse(str(v.occurredAt) ?? ''), receivedAtMs: Date.parse(str(v.receivedAt) ?? ''), details: v.details ?? null,
    raw: typeof v.rawBase64 === 'string' ? Buffer.from(v.rawBase64, 'base64') : null
  }
}
