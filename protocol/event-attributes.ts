import { createHash } from 'node:crypto'

/**
 * Attribute values whose JSON encoding is longer than this many UTF-8 bytes are summarised in
 * events (stream, feed, webhooks): README, "The stream". A value of 1,024 control characters is
 * 6 KiB of JSON, so 32 of them made every event of such a vehicle 200 KB; the log row keeps them.
 */
export const EVENT_ATTRIBUTE_MAX_JSON_BYTES = 256

/** What an event carries instead of a large attribute value: its length in UTF-8 bytes and its SHA-256 (hex). */
export interface AttributeSummary {
  bytes: number
  sha256: string
}

function summary (value: string): AttributeSummary {
  return { bytes: Buffer.byteLength(value), sha256: createHash('sha256').update(value, 'utf8').digest('hex') }
}

/**
 * An event's attributes: small values as they are, large ones as their summary. Values already
 * summarised (by the store's read, which does the same in SQL) are kept.
 */
export function summariseAttributes (attributes: Record<string, unknown> | null): Record<string, string | AttributeSummary> | null {
  if (attributes === null) return null
  let out: Record<string, string | AttributeSummary> | null = null
  for (const [key, value] of Object.entries(attributes)) {
    if (typeof value !== 'string' || Buffer.byteLength(JSON.stringify(value)) <= EVENT_ATTRIBUTE_MAX_JSON_BYTES) continue
    out ??= { ...attributes } as Record<string, string | AttributeSummary>
    out[key] = summary(value)
  }
  return out ?? attributes as Record<string, string | AttributeSummary>
}
