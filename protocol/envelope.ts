import { vgw } from './generated/envelope.js'
import type { ErrorCode } from './errors.ts'

const Proto = vgw.v1.Envelope

export const KINDS = ['KIND_UNSPECIFIED', 'TELEMETRY', 'EVENT', 'REQUEST', 'RESPONSE', 'MESSAGE', 'ACK'] as const
export type Kind = typeof KINDS[number]
export const ACK_STATUSES = ['ACK_STATUS_UNSPECIFIED', 'RECEIVED', 'DISPLAYED', 'READ', 'ACCEPTED', 'REJECTED'] as const
export type AckStatus = typeof ACK_STATUSES[number]

/** The envelope (README, "The envelope") with enums as their names. */
export interface Envelope {
  messageId: string
  correlationId: string
  kind: Kind
  type: string
  createdAtMs: number
  ttlSeconds: number
  payload: Uint8Array
  attributes: Record<string, string>
  ackStatus: AckStatus
  ackReason: string
}

export type EnvelopeInput = Partial<Envelope> & Pick<Envelope, 'messageId' | 'kind' | 'type'>

export interface EnvelopeLimits {
  /** Largest accepted encoded envelope, in bytes (256 KiB by default). */
  maxBytes: number
  /** How far in the past created_at_ms may lie. */
  maxAgeMs: number
  /** How far in the future created_at_ms may lie (sender clock skew). */
  maxFutureSkewMs: number
  maxAttributes: number
  maxAttributeKeyLength: number
  maxAttributeValueLength: number
}

export const defaultEnvelopeLimits: EnvelopeLimits = {
  maxBytes: 256 * 1024,
  maxAgeMs: 90 * 24 * 3600 * 1000,
  maxFutureSkewMs: 10 * 60 * 1000,
  maxAttributes: 32,
  maxAttributeKeyLength: 64,
  maxAttributeValueLength: 1024
}

export type DecodeResult =
  | { ok: true, envelope: Envelope }
  | { ok: false, code: ErrorCode, detail: string, envelope?: Envelope }

const UUID_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i
const TYPE_PATTERN = /^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/

export function isUuid (value: string): boolean {
  return UUID_PATTERN.test(value)
}

export function encodeEnvelope (input: EnvelopeInput): Uint8Array {
  return Proto.encode({
    messageId: input.messageId,
    correlationId: input.correlationId ?? '',
    kind: KINDS.indexOf(input.kind),
    type: input.type,
    createdAtMs: input.createdAtMs ?? 0,
    ttlSeconds: input.ttlSeconds ?? 0,
    payload: input.payload ?? new Uint8Array(0),
    attributes: input.attributes ?? {},
    ackStatus: ACK_STATUSES.indexOf(input.ackStatus ?? 'ACK_STATUS_UNSPECIFIED'),
    ackReason: input.ackReason ?? ''
  }).finish()
}

/** Decodes without validating; throws on bytes that are not an Envelope. Unknown enum numbers keep their number as name. */
export function parseEnvelope (bytes: Uint8Array): Envelope {
  const m = Proto.decode(bytes)
  return {
    messageId: m.messageId,
    correlationId: m.correlationId,
    kind: (KINDS[m.kind] ?? String(m.kind)) as Kind,
    type: m.type,
    createdAtMs: Number(m.createdAtMs),
    ttlSeconds: m.ttlSeconds,
    payload: m.payload,
    attributes: m.attributes,
    ackStatus: (ACK_STATUSES[m.ackStatus] ?? String(m.ackStatus)) as AckStatus,
    ackReason: m.ackReason
  }
}

/**
 * Decodes and validates an uplink envelope (README, "The envelope"). A failed result still
 * carries the decoded envelope when the bytes were readable, so the caller can
 * quote its message_id in the error notice.
 */
export function decodeEnvelope (bytes: Uint8Array, limits: EnvelopeLimits, nowMs: number): DecodeResult {
  if (bytes.length > limits.maxBytes) {
    // Still read it (the packet size limit bounds the work) so the notice can quote its message_id.
    let envelope: Envelope | undefined
    try {
      envelope = parseEnvelope(bytes)
    } catch {
      envelope = undefined
    }
    return { ok: false, code: 'GW_ERR_ENVELOPE_TOO_LARGE', detail: `${bytes.length} bytes, limit ${limits.maxBytes}`, ...(envelope !== undefined ? { envelope } : {}) }
  }
  let envelope: Envelope
  try {
    envelope = parseEnvelope(bytes)
  } catch (err) {
    return { ok: false, code: 'GW_ERR_ENVELOPE_MALFORMED', detail: (err as Error).message }
  }
  const problem = validate(envelope, limits, nowMs)
  if (problem !== null) return { ok: false, code: problem.code, detail: problem.detail, envelope }
  return { ok: true, envelope }
}

function validate (e: Envelope, limits: EnvelopeLimits, nowMs: number): { code: ErrorCode, detail: string } | null {
  if (!isUuid(e.messageId)) return { code: 'GW_ERR_ENVELOPE_INVALID_MESSAGE_ID', detail: `message_id ${JSON.stringify(e.messageId.slice(0, 64))}` }
  if (!KINDS.includes(e.kind) || e.kind === 'KIND_UNSPECIFIED') return { code: 'GW_ERR_ENVELOPE_INVALID_KIND', detail: `kind ${e.kind}` }
  if (e.type.length === 0 || e.type.length > 128 || !TYPE_PATTERN.test(e.type)) {
    return { code: 'GW_ERR_ENVELOPE_INVALID_TYPE', detail: `type ${JSON.stringify(e.type.slice(0, 140))}` }
  }
  if (e.createdAtMs < nowMs - limits.maxAgeMs || e.createdAtMs > nowMs + limits.maxFutureSkewMs) {
    return { code: 'GW_ERR_ENVELOPE_INVALID_CREATED_AT', detail: `created_at_ms ${e.createdAtMs}, now ${nowMs}` }
  }
  if ((e.kind === 'ACK' || e.kind === 'RESPONSE') && !isUuid(e.correlationId)) {
    return { code: 'GW_ERR_ENVELOPE_INVALID_CORRELATION_ID', detail: `correlation_id ${JSON.stringify(e.correlationId.slice(0, 64))}` }
  }
  if (!ACK_STATUSES.includes(e.ackStatus) || (e.kind === 'ACK' && e.ackStatus === 'ACK_STATUS_UNSPECIFIED')) {
    return { code: 'GW_ERR_ENVELOPE_INVALID_ACK_STATUS', detail: `ack_status ${e.ackStatus}` }
  }
  if (e.correlationId.includes('\u0000') || (e.correlationId !== '' && !isUuid(e.correlationId))) {
    return { code: 'GW_ERR_ENVELOPE_INVALID_CORRELATION_ID', detail: `correlation_id ${JSON.stringify(e.correlationId.slice(0, 64))}` }
  }
  // PostgreSQL text cannot hold NUL; a vehicle must not be able to make its own row unstorable.
  if (e.ackReason.includes('\u0000') || e.ackReason.length > 1024) return { code: 'GW_ERR_ENVELOPE_MALFORMED', detail: 'ack_reason holds NUL or exceeds 1024 characters' }
  const keys = Object.keys(e.attributes)
  if (keys.length > limits.maxAttributes) return { code: 'GW_ERR_ENVELOPE_INVALID_ATTRIBUTES', detail: `${keys.length} attributes` }
  for (const key of keys) {
    const value = e.attributes[key] ?? ''
    if (key.length === 0 || key.length > limits.maxAttributeKeyLength || value.length > limits.maxAttributeValueLength ||
      key.includes('\u0000') || value.includes('\u0000')) {
      return { code: 'GW_ERR_ENVELOPE_INVALID_ATTRIBUTES', detail: `attribute ${JSON.stringify(key.slice(0, 80))}` }
    }
  }
  return null
}
