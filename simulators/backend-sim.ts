import { randomUUID } from 'node:crypto'
import http from 'node:http'
import WebSocket from 'ws'
import { newHistogram, nowMicros } from './fleet-metrics.ts'

/** An HTTP answer, its body read. */
interface Answer {
  status: number
  body: string
}

/**
 * REST connections to the gateway, at most. fetch (undici) opens one more connection for every
 * request that finds all busy: once answers slowed at 1,000 sends/s it held 16,000 connections
 * to the gateway, each paid with a TCP set-up and an HTTP parser on both sides, which took the CPU
 * that the answers needed (bench D1). A bounded keep-alive pool queues here instead, where the
 * latency (timed from when the send was due) still sees it.
 */
const MAX_SOCKETS = 64

interface Sent {
  vin: string
  postedAt: number
  receivedAt: number | null
}

/**
 * Plays the backend: sends downlinks through the REST API at a Poisson rate to random
 * vehicles, and watches the stream for `delivered` and `acknowledged` to time them.
 */
export class BackendSimulator {
  readonly sent = new Map<string, Sent>()
  readonly receiptHist = newHistogram()
  readonly deliveredHist = newHistogram()
  readonly acknowledgedHist = newHistogram()
  readonly errors: Record<string, number> = {}
  delivered = 0
  acknowledged = 0
  postFailures = 0
  /** REST calls sent again after a 503 or a broken connection. */
  retries = 0
  readonly #apiUrl: string
  readonly #apiKey: string
  readonly #vins: readonly string[]
  readonly #ttlSeconds: number
  #ws: WebSocket | null = null
  #timer: NodeJS.Timeout | null = null
  #inFlight = 0
  readonly #early = new Map<string, Array<{ status: string, at: number }>>()
  readonly #agent = new http.Agent({ keepAlive: true, maxSockets: MAX_SOCKETS })

  constructor (apiUrl: string, apiKey: string, vins: readonly string[], ttlSeconds: number) {
    this.#apiUrl = apiUrl
    this.#apiKey = apiKey
    this.#vins = vins
    this.#ttlSeconds = ttlSeconds
  }

  async openStream (): Promise<void> {
    const url = `${this.#apiUrl.replace(/^http/, 'ws')}/v1/stream?kind=MESSAGE`
    const ws = new WebSocket(url, { headers: { authorization: `Bearer ${this.#apiKey}` } })
    this.#ws = ws
    ws.on('message', (data) => {
      const e = JSON.parse(String(data)) as { event: string, messageId?: string, status?: string }
      if (e.event !== 'message.status' || e.messageId === undefined || e.status === undefined) return
      this.#onStatus(e.messageId, e.status, nowMicros())
    })
    ws.on('error', () => undefined)
    // A stream that drops (its gateway restarts) is opened again; latencies are what it can see.
    ws.on('close', () => {
      if (this.#closing) return
      setTimeout(() => { this.openStream().catch(() => undefined) }, 500).unref()
    })
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve())
      ws.once('unexpected-response', (_req, res) => reject(new Error(`the stream refused the fleet: HTTP ${res.statusCode ?? 0} (does the API key hold stream:read?)`)))
      ws.once('error', reject)
    })
  }

  #onStatus (id: string, status: string, at: number): void {
    const s = this.sent.get(id)
    if (s === undefined) {
      this.#remember(id, status, at)
      return
    }
    if (status === 'received') {
      this.received(id, at)
    } else if (status === 'delivered') {
      this.delivered++
      this.deliveredHist.recordValue(Math.max(1, at - s.postedAt))
    } else if (status === 'acknowledged') {
      this.acknowledged++
      this.acknowledgedHist.recordValue(Math.max(1, at - s.postedAt))
    }
  }

  // The gateway dispatches right after its commit, so the vehicle's receipt and the stream's
  // events may outrun the POST's answer: keep them until the id is known.
  #remember (id: string, status: string, at: number): void {
    const early = this.#early.get(id) ?? []
    early.push({ status, at })
    this.#early.set(id, early)
  }

  /** A vehicle reported receiving a message (its first copy). */
  received (id: string, at: number): void {
    const s = this.sent.get(id)
    if (s === undefined) {
      this.#remember(id, 'received', at)
      return
    }
    if (s.receivedAt !== null) return
    s.receivedAt = at
    this.receiptHist.recordValue(Math.max(1, at - s.postedAt))
  }

  // Poisson arrivals on an absolute schedule: a timer fires 1 ms or more late (never sooner), so
  // chaining one timer per gap capped the rate far below 1,000/s; each tick sends all that are due.
  start (ratePerSecond: number, multiplier: () => number): void {
    if (ratePerSecond <= 0) return
    let dueAt = Date.now()
    const tick = (): void => {
      const now = Date.now()
      while (dueAt <= now) {
        const rate = ratePerSecond * multiplier()
        if (rate > 0) void this.#sendOne()
        dueAt += rate > 0 ? -Math.log(1 - Math.random()) / rate * 1000 : 1000
      }
      this.#timer = setTimeout(tick, Math.max(0, dueAt - Date.now()))
    }
    this.#timer = setTimeout(tick, 0)
  }

  stop (): void {
    if (this.#timer !== null) clearTimeout(this.#timer)
    this.#timer = null
  }

  async idle (timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs
    while (this.#inFlight > 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20))
  }

  #closing = false

  close (): void {
    this.#closing = true
    this.stop()
    this.#ws?.close()
    this.#agent.destroy()
  }

  // A well-behaved backend: an Idempotency-Key per message, and a retry (same key) when the
  // gateway is draining (503) or the connection broke, so a lost answer never makes a duplicate.
  async #post (vin: string, body: string): Promise<Answer> {
    const key = randomUUID()
    for (let attempt = 0; ; attempt++) {
      try {
        const res = await this.#request(`/v1/vehicles/${vin}/messages`, key, body)
        if (res.status !== 503 || attempt >= 5) return res
      } catch (err) {
        if (attempt >= 5) throw err
      }
      this.retries++
      await new Promise((resolve) => setTimeout(resolve, 200 * (attempt + 1)))
    }
  }

  #request (path: string, idempotencyKey: string, body: string): Promise<Answer> {
    return new Promise((resolve, reject) => {
      const req = http.request(new URL(path, this.#apiUrl), {
        method: 'POST',
        agent: this.#agent,
        headers: { authorization: `Bearer ${this.#apiKey}`, 'content-type': 'application/json', 'idempotency-key': idempotencyKey, 'content-length': Buffer.byteLength(body) }
      }, (res) => {
        const chunks: Buffer[] = []
        res.on('data', (c: Buffer) => chunks.push(c))
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }))
        res.on('error', reject)
      })
      req.on('error', reject)
      req.end(body)
    })
  }

  async #sendOne (): Promise<void> {
    const vin = this.#vins[Math.floor(Math.random() * this.#vins.length)] as string
    const postedAt = nowMicros()
    this.#inFlight++
    try {
      const res = await this.#post(vin, JSON.stringify({ type: 'service.reminder', payload: `Service due (${new Date().toISOString()})`, ttlSeconds: this.#ttlSeconds, attributes: { locale: 'en-GB' } }))
      const body = JSON.parse(res.body) as { id?: string, error?: { code: string } }
      if (res.status === 202 && body.id !== undefined) {
        this.sent.set(body.id, { vin, postedAt, receivedAt: null })
        for (const e of this.#early.get(body.id) ?? []) this.#onStatus(body.id, e.status, e.at)
        this.#early.delete(body.id)
      } else {
        this.postFailures++
        const code = body.error?.code ?? `HTTP_${res.status}`
        this.errors[code] = (this.errors[code] ?? 0) + 1
      }
    } catch (err) {
      this.postFailures++
      const code = `FLEET_POST_${(err as { code?: string }).code ?? 'FAILED'}`
      this.errors[code] = (this.errors[code] ?? 0) + 1
    } finally {
      this.#inFlight--
    }
  }
}
