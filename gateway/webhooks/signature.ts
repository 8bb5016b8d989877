import { createHmac } from 'node:crypto'

/** The headers of a webhook POST (README, "Webhooks"). */
export const WEBHOOK_HEADERS = {
  signature: 'vgw-signature',
  timestamp: 'vgw-timestamp',
  deliveryId: 'vgw-delivery-id',
  webhookId: 'vgw-webhook-id'
} as const

/**
 * `v1=` and the hex HMAC-SHA256, keyed with the webhook's secret, of the timestamp (Unix seconds),
 * a dot and the exact body bytes: the timestamp is signed so that a receiver can refuse replays.
 */
export function signWebhookBody (secret: string, timestamp: number, body: string): string {
  return 'v1=' + createHmac('sha256', secret).update(`${timestamp}.${body}`).digest('hex')
}

/** Every header of one POST of a batch. */
export function webhookHeaders (w: { id: string, secret: string }, deliveryId: string, body: string, nowMs: number): Record<string, string> {
  const timestamp = Math.floor(nowMs / 1000)
  return {
    'content-type': 'application/json',
    [WEBHOOK_HEADERS.signature]: signWebhookBody(w.secret, timestamp, body),
    [WEBHOOK_HEADERS.timestamp]: String(timestamp),
    [WEBHOOK_HEADERS.deliveryId]: deliveryId,
    [WEBHOOK_HEADERS.webhookId]: w.id
  }
}
