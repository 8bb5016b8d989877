import { createHmac, timingSafeEqual } from 'node:crypto'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import type { Test } from 'tap'

export interface WebhookEvent {
  event: string
  id: string
  vin: string | null
  messageId?: string | null
  cursor?: string
  status?: string
  [field: string]: unknown
}

export interface Delivery {
  webhookId: string
  deliveryId: string
  events: WebhookEvent[]
  /** Whether the signature verified with the receiver's secret (the README's verifier). */
  verified: boolean
  /** What the receiver did with it. */
  answered: 'ok' | 'fail' | 'hang'
}

/** What the receiver does with the next request: 2xx, 500, or never answer. */
export type Behaviour = 'ok' | 'fail' | 'hang'

/** The README's verifier, as a receiver would write it. */
export function verify (secret: string, headers: http.IncomingHttpHeaders, body: string): boolean {
  const timestamp = String(headers['vgw-timestamp'])
  const expected = 'v1=' + createHmac('sha256', secret).update(`${timestamp}.${body}`).digest('hex')
  const given = Buffer.from(String(headers['vgw-signature']))
  const fresh = Math.abs(Date.now() / 1000 - Number(timestamp)) < 300
  return fresh && given.length === expected.length && timingSafeEqual(given, Buffer.from(expected))
}

export interface Receiver {
  url: string
  deliveries: Delivery[]
  /** Decides each request's fate, in arrival order (index from 0). */
  behave: (fn: (n: number) => Behaviour) => void
  /** Events of the deliveries that were answered 2xx. */
  accepted: () => WebhookEvent[]
  waitFor: (what: string, pred: () => boolean, timeoutMs?: number) => Promise<void>
}

/** A real HTTP receiver on port 0 (node:http); hanging requests are cut at teardown. */
export async function startReceiver (t: Test, secret: string): Promise<Receiver> {
  const deliveries: Delivery[] = []
  let decide: (n: number) => Behaviour = () => 'ok'
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8')
      const parsed = JSON.parse(body) as { webhookId: string, deliveryId: string, events: WebhookEvent[] }
      const answered = decide(deliveries.length)
      deliveries.push({ ...parsed, verified: verify(secret, req.headers, body) && req.headers['vgw-delivery-id'] === parsed.deliveryId, answered })
      if (answered === 'hang') return
      res.writeHead(answered === 'ok' ? 204 : 500).end()
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(async () => {
    server.closeAllConnections()
    await new Promise((resolve) => server.close(resolve))
  })
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`,
    deliveries,
    behave: (fn) => { decide = fn },
    accepted: () => deliveries.filter((d) => d.answered === 'ok').flatMap((d) => d.events),
    async waitFor (what, pred, timeoutMs = 20_000) {
      const deadline = Date.now() + timeoutMs
      while (!pred()) {
        if (Date.now() > deadline) throw new Error(`receiver: ${what} did not happen within ${timeoutMs} ms; ${deliveries.length} deliveries`)
        await new Promise((resolve) => setTimeout(resolve, 20))
      }
    }
  }
}
