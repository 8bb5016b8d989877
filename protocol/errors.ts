/**
 * The one catalogue of vgw error codes. Every transport maps a code its own way:
 * HTTP answers use `httpStatus`, MQTT CONNACK refusals use `connackCode`
 * (MQTT 3.1.1 §3.2.2.3), envelope rejections carry the code in `ack_reason`.
 * The README's error table is checked against this list by a test.
 */
export interface ErrorSpec {
  readonly httpStatus: number
  readonly connackCode?: number
  readonly message: string
}

export const errorCatalogue = {
  // Envelopes (uplink validation, README "The envelope")
  GW_ERR_ENVELOPE_MALFORMED: { httpStatus: 400, message: 'the payload is not a decodable vgw.v1.Envelope' },
  GW_ERR_ENVELOPE_TOO_LARGE: { httpStatus: 413, message: 'the envelope is larger than the configured limit' },
  GW_ERR_ENVELOPE_INVALID_MESSAGE_ID: { httpStatus: 400, message: 'message_id must be a UUID' },
  GW_ERR_ENVELOPE_INVALID_KIND: { httpStatus: 400, message: 'kind must be set to a known Kind' },
  GW_ERR_ENVELOPE_INVALID_TYPE: { httpStatus: 400, message: 'type must be a non-empty dotted name of at most 128 characters' },
  GW_ERR_ENVELOPE_INVALID_CREATED_AT: { httpStatus: 400, message: 'created_at_ms is outside the accepted window' },
  GW_ERR_ENVELOPE_INVALID_CORRELATION_ID: { httpStatus: 400, message: 'ACK and RESPONSE envelopes need a UUID correlation_id' },
  GW_ERR_ENVELOPE_INVALID_ACK_STATUS: { httpStatus: 400, message: 'ack_status must be a known AckStatus, and set on ACK envelopes' },
  GW_ERR_ENVELOPE_INVALID_ATTRIBUTES: { httpStatus: 400, message: 'attributes exceed the allowed count or sizes' },

  // MQTT identity and rights (README, "Vehicles: topics, identity, envelope")
  GW_ERR_CERT_MISSING: { httpStatus: 401, connackCode: 5, message: 'no client certificate was presented' },
  GW_ERR_CERT_UNTRUSTED: { httpStatus: 401, connackCode: 5, message: 'the client certificate is not signed by a trusted CA' },
  GW_ERR_CERT_EXPIRED: { httpStatus: 401, connackCode: 5, message: 'the client certificate has expired or is not yet valid' },
  GW_ERR_CERT_REVOKED: { httpStatus: 401, connackCode: 5, message: 'the client certificate is revoked' },
  GW_ERR_CERT_INVALID_VIN: { httpStatus: 401, connackCode: 5, message: 'the certificate subject CN is not a valid VIN' },
  GW_ERR_CLIENT_ID_MISMATCH: { httpStatus: 401, connackCode: 5, message: 'the MQTT clientId differs from the certificate VIN' },
  GW_ERR_TOPIC_DENIED: { httpStatus: 403, message: 'the topic is outside the vehicle\'s own topics' },
  GW_ERR_WILDCARD_DENIED: { httpStatus: 403, message: 'wildcard subscriptions are not allowed' },
  GW_ERR_SYS_DENIED: { httpStatus: 403, message: '$SYS topics are not available to vehicles' },
  GW_ERR_RETAIN_DENIED: { httpStatus: 403, message: 'retained messages are not allowed' },
  GW_ERR_WILL_DENIED: { httpStatus: 403, connackCode: 5, message: 'will messages are not allowed' },
  GW_ERR_PACKET_TOO_LARGE: { httpStatus: 413, message: 'the MQTT packet exceeds the maximum packet size' },
  GW_ERR_QOS_DENIED: { httpStatus: 403, message: 'QoS 2 is not supported: vehicles publish at QoS 1' },
  GW_ERR_QUOTA_EXCEEDED: { httpStatus: 429, message: 'the vehicle exceeded its message rate or daily byte quota' },
  GW_ERR_CONNECTION_LIMIT: { httpStatus: 503, message: 'too many connections, from this address or in total' },
  GW_ERR_HANDSHAKE_RATE: { httpStatus: 429, message: 'too many TLS handshakes from this address' },
  GW_ERR_HANDSHAKE_TIMEOUT: { httpStatus: 408, message: 'the TLS handshake did not complete in time' },

  // REST API (README, "REST API")
  GW_ERR_UNAUTHENTICATED: { httpStatus: 401, message: 'a valid bearer API key is required' },
  GW_ERR_FORBIDDEN: { httpStatus: 403, message: 'the API key lacks the scope this call needs' },
  GW_ERR_NOT_FOUND: { httpStatus: 404, message: 'no such route' },
  GW_ERR_VEHICLE_NOT_FOUND: { httpStatus: 404, message: 'no vehicle with this VIN is known' },
  GW_ERR_MESSAGE_NOT_FOUND: { httpStatus: 404, message: 'no message with this id' },
  GW_ERR_CAMPAIGN_NOT_FOUND: { httpStatus: 404, message: 'no campaign with this id' },
  GW_ERR_WEBHOOK_NOT_FOUND: { httpStatus: 404, message: 'no webhook, or no dead letter of this webhook, with this id' },
  GW_ERR_HOLD_NOT_FOUND: { httpStatus: 404, message: 'the vehicle has no active legal hold' },
  GW_ERR_API_KEY_NOT_FOUND: { httpStatus: 404, message: 'no live API key with this id or name' },
  GW_ERR_RETENTION_FLOOR: { httpStatus: 400, message: 'the retention period is below the floor set in server configuration' },
  GW_ERR_INVALID_PAYLOAD: { httpStatus: 400, message: 'payload is not valid for its payloadEncoding' },
  GW_ERR_INVALID_VIN: { httpStatus: 400, message: 'a VIN has 17 characters: digits and capital letters except I, O and Q' },
  GW_ERR_VALIDATION: { httpStatus: 400, message: 'the request does not match the schema' },
  GW_ERR_BAD_JSON: { httpStatus: 400, message: 'the request body is not valid JSON' },
  GW_ERR_INVALID_CURSOR: { httpStatus: 400, message: 'the cursor is not one this API issued' },
  GW_ERR_BODY_TOO_LARGE: { httpStatus: 413, message: 'the request body is too large' },
  GW_ERR_UNSUPPORTED_MEDIA_TYPE: { httpStatus: 415, message: 'the request body must be application/json' },
  GW_ERR_RATE_LIMITED: { httpStatus: 429, message: 'too many requests; retry after the time in Retry-After' },
  GW_ERR_STREAM_LIMIT: { httpStatus: 429, message: 'too many streams are open for this API key' },
  GW_ERR_TOO_MANY_RECIPIENTS: { httpStatus: 413, message: 'the campaign names more vehicles than allowed' },
  GW_ERR_CAMPAIGN_TOO_LARGE: { httpStatus: 413, message: 'the campaign would write more bytes (envelope size times recipients) than allowed' },
  GW_ERR_EXPORT_BUSY: { httpStatus: 503, message: 'the most exports allowed at once are running; retry after the time in Retry-After' },
  GW_ERR_WEBHOOK_DESTINATION_FORBIDDEN: { httpStatus: 400, message: 'the webhook URL names a loopback, private, link-local or metadata address not listed in VGW_WEBHOOK_ALLOW' },
  GW_ERR_EXPORT_FAILED: { httpStatus: 500, message: 'the export failed part-way; its output is incomplete' },

  // Operations
  GW_ERR_STORE_UNAVAILABLE: { httpStatus: 503, connackCode: 3, message: 'the database is not reachable' },
  GW_ERR_NOT_READY: { httpStatus: 503, message: 'the gateway is not ready' },
  GW_ERR_OVERLOADED: { httpStatus: 503, connackCode: 3, message: 'the gateway is overloaded; retry after the time in Retry-After' },
  GW_ERR_COMMIT_STALLED: { httpStatus: 503, message: 'commits have made no progress while work is pending' },
  GW_ERR_CONFIG_INVALID: { httpStatus: 500, message: 'a configuration value is invalid' },
  GW_ERR_INTERNAL: { httpStatus: 500, message: 'an internal error occurred' }
} as const satisfies Record<string, ErrorSpec>

export type ErrorCode = keyof typeof errorCatalogue

export function isErrorCode (value: string): value is ErrorCode {
  return Object.hasOwn(errorCatalogue, value)
}

/** An error that carries a stable catalogue code; transports map it, logs print it as `code`. */
export class GatewayError extends Error {
  readonly code: ErrorCode
  readonly httpStatus: number
  readonly connackCode: number | undefined

  constructor (code: ErrorCode, message?: string, options?: { cause?: unknown }) {
    const spec: ErrorSpec = errorCatalogue[code]
    super(message ?? spec.message, options)
    this.name = 'GatewayError'
    this.code = code
    this.httpStatus = spec.httpStatus
    this.connackCode = spec.connackCode
  }
}
