import { createHash } from 'node:crypto'
import type { Envelope, ErrorCode } from '../../protocol/index.ts'
import type { TransactionRecord } from '../../store/index.ts'
import type { DeviceIdentity } from './device-identity.ts'
import type { RejectedIdentity } from './rejected-repeats.ts'

/** Clock and id source, injected so tests can drive them. */
export interface RecordContext {
  now: () => number
  newId: () => string
}

const BLANK = {
  type: null, messageId: null, correlationId: null, createdAtMs: null, ttlSeconds: null, attributes: null,
  ackStatus: null, ackReason: null, errorCode: null, raw: null, details: null
} as const

/** A row about `who`, happening now: id, times, vehicle and market. */
function happeningNow (ctx: RecordContext, who: { vin: string, market: string | null }): Pick<TransactionRecord, 'id' | 'occurredAt' | 'receivedAt' | 'vin' | 'market'> {
  const now = ctx.now()
  return { id: ctx.newId(), occurredAt: new Date(now), receivedAt: new Date(now), vin: who.vin, market: who.market }
}

// PostgreSQL text and jsonb cannot hold NUL: details quote vehicle input, so scrub it.
export function scrubNul (text: string): string {
  return text.replaceAll('\u0000', '\uFFFD')
}

export function acceptedUplink (ctx: RecordContext, who: DeviceIdentity, e: Envelope, raw: Uint8Array): TransactionRecord {
  const now = ctx.now()
  return {
    id: ctx.newId(),
    // The sender's created_at is the event time: stable across retries, so the dedup key holds.
    occurredAt: new Date(e.createdAtMs),
    receivedAt: new Date(now),
    vin: who.vin,
    market: who.market,
    direction: 'up',
    kind: e.kind,
    type: e.type,
    messageId: e.messageId,
    correlationId: e.correlationId === '' ? null : e.correlationId,
    createdAtMs: e.createdAtMs,
    ttlSeconds: e.ttlSeconds,
    attributes: e.attributes,
    ackStatus: e.ackStatus === 'ACK_STATUS_UNSPECIFIED' ? null : e.ackStatus,
    ackReason: e.ackReason === '' ? null : e.ackReason,
    status: 'accepted',
    errorCode: null,
    raw,
    details: null
  }
}

/** Of an envelope over the size limit, the log keeps this many leading bytes, with the length and SHA-256 of the whole. */
export const REJECTED_PREFIX_BYTES = 4096

/**
 * A rejected uplink keeps its raw bytes and code; only fields that passed validation are
 * copied. An oversized one keeps its first REJECTED_PREFIX_BYTES, its length and its
 * SHA-256: enough to prove what was sent without letting one vehicle fill the log.
 */
export function rejectedUplink (ctx: RecordContext, who: DeviceIdentity, code: ErrorCode, detail: string, raw: Uint8Array, identity: RejectedIdentity): TransactionRecord {
  const oversized = code === 'GW_ERR_ENVELOPE_TOO_LARGE' && raw.byteLength > REJECTED_PREFIX_BYTES
  const whole = oversized ? { length: raw.byteLength, sha256: createHash('sha256').update(raw).digest('hex'), storedBytes: REJECTED_PREFIX_BYTES } : {}
  return {
    ...BLANK,
    ...happeningNow(ctx, who),
    // The first copy's time and id, so a retransmission meets the dedup index (rejected-repeats.ts).
    occurredAt: identity.occurredAt,
    direction: 'up',
    kind: 'KIND_UNSPECIFIED',
    messageId: identity.messageId,
    status: 'rejected',
    errorCode: code,
    raw: oversized ? raw.subarray(0, REJECTED_PREFIX_BYTES) : raw,
    details: { detail: scrubNul(detail).slice(0, 500), ...whole, ...(identity.derived ? { messageIdDerived: true } : {}) }
  }
}

export function errorNotice (ctx: RecordContext, who: DeviceIdentity, notice: Envelope, raw: Uint8Array): TransactionRecord {
  return {
    ...BLANK,
    ...happeningNow(ctx, who),
    direction: 'down',
    kind: notice.kind,
    type: notice.type,
    messageId: notice.messageId,
    correlationId: notice.correlationId === '' ? null : notice.correlationId,
    createdAtMs: notice.createdAtMs,
    ackStatus: notice.ackStatus,
    ackReason: notice.ackReason,
    status: 'sent',
    raw
  }
}

export type ConnectionEvent = 'connect' | 'disconnect'

export function connectionEvent (ctx: RecordContext, who: DeviceIdentity, event: ConnectionEvent, extra: Record<string, unknown> = {}): TransactionRecord {
  return {
    ...BLANK,
    ...happeningNow(ctx, who),
    direction: 'system',
    kind: 'CONNECTION',
    type: event,
    status: 'recorded',
    details: { fingerprint: who.fingerprint, remoteAddress: who.remoteAddress, ...extra }
  }
}

export interface SecurityEvent {
  vin: string
  market: string | null
  code: ErrorCode
  type: string
  detail: string
  fingerprint: string | null
  remoteAddress: string
  extra?: Record<string, unknown>
}

export function securityEvent (ctx: RecordContext, ev: SecurityEvent): TransactionRecord {
  return {
    ...BLANK,
    ...happeningNow(ctx, ev),
    direction: 'system',
    kind: 'SECURITY',
    type: ev.type,
    status: 'denied',
    errorCode: ev.code,
    details: { detail: scrubNul(ev.detail).slice(0, 500), fingerprint: ev.fingerprint, remoteAddress: ev.remoteAddress, ...ev.extra }
  }
}
