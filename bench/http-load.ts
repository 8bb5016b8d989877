// REST sends as a backend makes them, from this process: Node's own http client with a fixed
// pool of keep-alive connections (no dependency), either as N clients that each send the next
// request when the last is answered, or at an offered rate whatever the answers.
import http from 'node:http'

/** What came back over a measured window. */
export interface LoadTally {
  /** Answered 202 (the message was committed). */
  accepted: number
  byStatus: Record<string, number>
  /** 503 answers, and how many of them carried Retry-After and the code GW_ERR_OVERLOADED. */
  shed: { count: number, withRetryAfter: number, withOverloadedCode: number }
  /** No answer: socket errors, or still unanswered when the load stopped waiting. */
  failed: Record<string, number>
  /** Milliseconds from when each 202 was due (open loop) or sent (closed loop) to its answer, sorted. */
  acceptedMs: number[]
  /** The same for the 503 answers. */
  shedMs: number[]
  /** Requests sent, and over how long (open loop: longer than asked when this process could not keep the rate). */
  sent: number
  loadSeconds: number
  /** Open loop: the most requests that waited in this process for a free connection at once. */
  peakWaiting: number
  /** From the window's opening to its close (open loop: the drain included). */
  seconds: number
  /** This process's CPU over the window, % of one core: the load generator. */
  loadGeneratorCpuPercent: number
}

interface Answer { status: number, retryAfter: boolean, code: string | null }

export class SendClient {
  readonly #agent: http.Agent
  readonly #url: URL
  readonly #headers: Record<string, string>

  constructor (apiUrl: string, apiKey: string, connections: number) {
    this.#agent = new http.Agent({ keepAlive: true, maxSockets: connections, maxFreeSockets: connections })
    this.#url = new URL(apiUrl)
    this.#headers = { authorization: `Bearer ${apiKey}`, 'content-type': 'application/json' }
  }

  /** One POST /v1/vehicles/{vin}/messages; rejects only when no answer came. */
  async send (vin: string): Promise<Answer> {
    const body = JSON.stringify({ type: 'service.reminder', payload: `Service due (${Date.now()})`, ttlSeconds: 86_400 })
    return await new Promise((resolve, reject) => {
      const req = http.request({
        agent: this.#agent,
        host: this.#url.hostname,
        port: this.#url.port,
        method: 'POST',
        path: `/v1/vehicles/${vin}/messages`,
        headers: { ...this.#headers, 'content-length': Buffer.byteLength(body) }
      }, (res) => {
        const chunks: Buffer[] = []
        res.on('data', (c: Buffer) => chunks.push(c))
        res.on('end', () => {
          const status = res.statusCode ?? 0
          let code: string | null = null
          if (status !== 202) {
            try { code = (JSON.parse(Buffer.concat(chunks).toString('utf8')) as { error?: { code?: string } }).error?.code ?? null } catch { code = null }
          }
          resolve({ status, retryAfter: res.headers['retry-after'] !== undefined, code })
        })
        res.on('error', reject)
      })
      req.on('error', reject)
      req.end(body)
    })
  }

  close (): void { this.#agent.destroy() }
}

function newTally (): LoadTally {
  return { accepted: 0, byStatus: {}, shed: { count: 0, withRetryAfter: 0, withOverloadedCode: 0 }, failed: {}, acceptedMs: [], shedMs: [], sent: 0, loadSeconds: 0, peakWaiting: 0, seconds: 0, loadGeneratorCpuPercent: 0 }
}

function record (t: LoadTally, a: Answer, ms: number): void {
  t.byStatus[a.status] = (t.byStatus[a.status] ?? 0) + 1
  if (a.status === 202) {
    t.accepted++
    t.acceptedMs.push(ms)
  } else if (a.status === 503) {
    t.shed.count++
    t.shedMs.push(ms)
    if (a.retryAfter) t.shed.withRetryAfter++
    if (a.code === 'GW_ERR_OVERLOADED') t.shed.withOverloadedCode++
  }
}

const failure = (t: LoadTally, err: unknown): void => {
  const code = (err as { code?: string }).code ?? 'ERROR'
  t.failed[code] = (t.failed[code] ?? 0) + 1
}

/** Milliseconds (fractional) since an arbitrary origin. */
const now = (): number => performance.now()

export interface Window {
  /** Called when the measured window opens and when it closes (the harness takes its CPU marks there). */
  onOpen?: () => void
  onClose?: () => void
}

/** Ends the window: cpu, duration, sorted latencies. */
function close (t: LoadTally, openedAt: number, cpuAtOpen: NodeJS.CpuUsage): void {
  t.seconds = (now() - openedAt) / 1000
  const cpu = process.cpuUsage(cpuAtOpen)
  t.loadGeneratorCpuPercent = Math.round((cpu.user + cpu.system) / 1e6 / t.seconds * 100)
  t.acceptedMs.sort((a, b) => a - b)
  t.shedMs.sort((a, b) => a - b)
}

/**
 * `clients` concurrent clients, each sending its next request when the last is answered,
 * for `warmupMs` unmeasured and then `measureMs`; only requests sent inside the window count.
 */
export async function closedLoop (client: SendClient, vins: string[], clients: number, warmupMs: number, measureMs: number, w: Window = {}): Promise<LoadTally> {
  const t = newTally()
  const start = now()
  let openedAt = Number.POSITIVE_INFINITY
  let cpuAtOpen = process.cpuUsage()
  const opener = setTimeout(() => { openedAt = now(); cpuAtOpen = process.cpuUsage(); w.onOpen?.() }, warmupMs)
  const end = start + warmupMs + measureMs
  let closed = false
  const closer = setTimeout(() => { closed = true; close(t, openedAt, cpuAtOpen); w.onClose?.() }, warmupMs + measureMs)
  await Promise.all(Array.from({ length: clients }, async (_, c) => {
    for (let i = c; now() < end; i += clients) {
      const sentAt = now()
      if (sentAt >= openedAt && !closed) t.sent++
      try {
        const a = await client.send(vins[i % vins.length] as string)
        if (sentAt >= openedAt && !closed) record(t, a, now() - sentAt)
      } catch (err) {
        if (sentAt >= openedAt && !closed) failure(t, err)
      }
    }
  }))
  clearTimeout(opener)
  clearTimeout(closer)
  if (!closed) close(t, openedAt, cpuAtOpen)
  t.loadSeconds = t.seconds
  return t
}

/**
 * Requests at `rate` per second (evenly spaced, sent from a 5 ms tick) for `measureMs`, whatever
 * the answers; each latency counts from when the request was due, so a request waiting for a free
 * connection in this process counts as waiting. Answers are awaited up to `drainMs` after the
 * last request; what is still unanswered then counts as failed ('UNANSWERED').
 */
export async function openLoop (client: SendClient, vins: string[], rate: number, measureMs: number, drainMs: number, connections: number, w: Window = {}): Promise<LoadTally> {
  const t = newTally()
  const total = Math.round(rate * measureMs / 1000)
  const openedAt = now()
  const cpuAtOpen = process.cpuUsage()
  w.onOpen?.()
  const pending = new Set<Promise<void>>()
  let closed = false
  let next = 0
  while (next < total) {
    const due = Math.min(total, Math.floor((now() - openedAt) * rate / 1000) + 1)
    for (; next < due; next++) {
      const dueAt = openedAt + next * 1000 / rate
      const p: Promise<void> = client.send(vins[next % vins.length] as string)
        .then((a) => { if (!closed) record(t, a, now() - dueAt) }, (err: unknown) => { if (!closed) failure(t, err) })
        .finally(() => pending.delete(p))
      pending.add(p)
    }
    t.peakWaiting = Math.max(t.peakWaiting, pending.size - connections)
    await new Promise((resolve) => setTimeout(resolve, 5))
  }
  t.sent = total
  t.loadSeconds = (now() - openedAt) / 1000
  const drained = Promise.all(pending)
  let timer: NodeJS.Timeout | undefined
  await Promise.race([drained, new Promise((resolve) => { timer = setTimeout(resolve, drainMs) })])
  clearTimeout(timer)
  const unanswered = pending.size
  closed = true
  close(t, openedAt, cpuAtOpen)
  w.onClose?.()
  if (unanswered > 0) t.failed.UNANSWERED = unanswered
  return t
}

/** The p-th percentile of sorted values, or null when there are none. */
export function percentile (sorted: number[], p: number): number | null {
  if (sorted.length === 0) return null
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(sorted.length * p / 100) - 1))] as number
}
