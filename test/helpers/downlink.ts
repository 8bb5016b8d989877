import type { MqttClient } from 'mqtt'
import { parseEnvelope, type Envelope } from '../../protocol/index.ts'
import type { TestGateway } from './gateway.ts'

/** Collects the envelopes a vehicle receives on its down topic. */
export function inbox (client: MqttClient, vin: string): { received: Envelope[], next: (n?: number, timeoutMs?: number) => Promise<Envelope[]> } {
  const received: Envelope[] = []
  const waiters: Array<() => void> = []
  client.on('message', (topic, payload) => {
    if (topic !== `vehicles/${vin}/down`) return
    received.push(parseEnvelope(payload))
    for (const w of waiters.splice(0)) w()
  })
  let consumed = 0
  return {
    received,
    async next (n = 1, timeoutMs = 5000) {
      const deadline = Date.now() + timeoutMs
      while (received.length < consumed + n) {
        if (Date.now() > deadline) throw new Error(`expected ${n} more message(s) on vehicles/${vin}/down, got ${received.length - consumed}`)
        await new Promise<void>((resolve) => {
          waiters.push(resolve)
          setTimeout(resolve, 50)
        })
      }
      const batch = received.slice(consumed, consumed + n)
      consumed += n
      return batch
    }
  }
}

export async function send (gw: TestGateway, vin: string, body: Record<string, unknown>, headers: Record<string, string> = {}): Promise<{ status: number, body: Record<string, unknown> }> {
  const res = await gw.api(`/v1/vehicles/${vin}/messages`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify(body)
  })
  return { status: res.status, body: res.body as Record<string, unknown> }
}

export async function messageStatus (gw: TestGateway, id: string): Promise<Record<string, unknown>> {
  return (await gw.api(`/v1/messages/${id}`)).body as Record<string, unknown>
}

/** Polls until the message reaches the status (statuses are committed in batches). */
export async function waitForStatus (gw: TestGateway, id: string, status: string, timeoutMs = 5000): Promise<Record<string, unknown>> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const m = await messageStatus(gw, id)
    if (m.status === status) return m
    if (Date.now() > deadline) throw new Error(`message ${id} is ${String(m.status)}, expected ${status}`)
    await new Promise((resolve) => setTimeout(resolve, 25))
  }
}

export async function register (gw: TestGateway, vin: string, market = 'DE'): Promise<void> {
  const res = await gw.api(`/v1/vehicles/${vin}`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ market }) })
  if (res.status !== 201 && res.status !== 200) throw new Error(`register ${vin}: ${res.status} ${JSON.stringify(res.body)}`)
}
