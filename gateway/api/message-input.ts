import { GatewayError, encodeEnvelope, type EnvelopeLimits } from '../../protocol/index.ts'

/** The fields of one message as a backend sends them (README, "REST API"). */
export interface MessageInput {
  type: string
  payload: string
  payloadEncoding?: 'utf8' | 'base64'
  ttlSeconds?: number
  attributes?: Record<string, string>
  priority?: number
  fallbackAfterSeconds?: number
}

/** JSON schema properties shared by single sends and campaigns; also feeds the OpenAPI document. */
export function messageProperties (limits: EnvelopeLimits, maxTtlSeconds: number) {
  return {
    type: { type: 'string', minLength: 1, maxLength: 128, pattern: '^[A-Za-z0-9_-]+(\\.[A-Za-z0-9_-]+)*$', description: 'dotted name, e.g. service.reminder' },
    payload: { type: 'string', description: 'the payload, as text or base64 (see payloadEncoding)' },
    payloadEncoding: { type: 'string', enum: ['utf8', 'base64'], default: 'utf8' },
    ttlSeconds: { type: 'integer', minimum: 1, maximum: maxTtlSeconds, description: 'how long the message may wait for an offline vehicle' },
    attributes: {
      type: 'object',
      maxProperties: limits.maxAttributes,
      propertyNames: { minLength: 1, maxLength: limits.maxAttributeKeyLength },
      additionalProperties: { type: 'string', maxLength: limits.maxAttributeValueLength }
    },
    priority: { type: 'integer', minimum: 0, maximum: 9, default: 0, description: 'higher is delivered first' },
    fallbackAfterSeconds: { type: 'integer', minimum: 1, maximum: maxTtlSeconds, description: 'undelivered (no PUBACK) this long after the send: a message.fallback_due event; the message stays queued until its TTL' }
  } as const
}

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/

export interface ParsedMessage {
  type: string
  payload: Buffer
  attributes: Record<string, string>
  ttlSeconds: number
  priority: number
  fallbackAfterSeconds: number | null
  /** The size of the envelope the vehicle will get. */
  envelopeBytes: number
}

/** Decodes the payload and applies defaults; refuses what could not be sent as an envelope. */
export function parseMessage (input: MessageInput, limits: EnvelopeLimits, defaultTtlSeconds: number): ParsedMessage {
  const encoding = input.payloadEncoding ?? 'utf8'
  if (encoding === 'base64' && !BASE64.test(input.payload)) throw new GatewayError('GW_ERR_INVALID_PAYLOAD', 'body.payload: not valid base64')
  const payload = Buffer.from(input.payload, encoding)
  const attributes = input.attributes ?? {}
  for (const [k, v] of Object.entries(attributes)) {
    if (k.includes('\u0000') || v.includes('\u0000')) throw new GatewayError('GW_ERR_VALIDATION', `body.attributes.${k.replace('\u0000', '')}: NUL is not allowed`)
  }
  const ttlSeconds = input.ttlSeconds ?? defaultTtlSeconds
  const fallbackAfterSeconds = input.fallbackAfterSeconds ?? null
  // A deadline at or past the TTL could never fire before the message expires.
  if (fallbackAfterSeconds !== null && fallbackAfterSeconds >= ttlSeconds) {
    throw new GatewayError('GW_ERR_VALIDATION', `body.fallbackAfterSeconds: must be less than ttlSeconds (${ttlSeconds})`)
  }
  // The envelope the vehicle will get must fit the limit it is held to itself.
  const size = encodeEnvelope({ messageId: '00000000-0000-7000-8000-000000000000', kind: 'MESSAGE', type: input.type, createdAtMs: Date.now(), ttlSeconds, payload, attributes }).length
  if (size > limits.maxBytes) throw new GatewayError('GW_ERR_ENVELOPE_TOO_LARGE', `the envelope would be ${size} bytes, limit ${limits.maxBytes}`)
  return { type: input.type, payload, attributes, ttlSeconds, priority: input.priority ?? 0, fallbackAfterSeconds, envelopeBytes: size }
}
