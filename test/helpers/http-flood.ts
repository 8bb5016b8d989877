import { Worker } from 'node:worker_threads'

export interface FloodOptions {
  /** Base URL of the gateway's REST port. */
  url: string
  /** The path every request asks for. */
  path: string
  /** Keep-alive connections, each looping one request after another. */
  connections: number
  /** The Authorization header, if any (each request gets a made-up token when `junkTokens`). */
  authorization?: string
  /** A new well-formed made-up `vgw_` token for every request. */
  junkTokens?: boolean
  /** Requests per second over all connections, at most; 0: as fast as answers come. */
  ratePerSecond?: number
}

export interface Flood {
  /** Answers so far by status ("error" for a failed request). */
  statuses(): Promise<Record<string, number>>
  /** Stops the loops and resolves with every answer's status count. */
  stop(): Promise<Record<string, number>>
}

// Runs in its own thread, so that the flood's client work does not weigh on the event loop of
// the test (and of a gateway built in the test's process): only the requests reach the gateway.
const WORKER = `
const { parentPort, workerData: o } = require('node:worker_threads')
const http = require('node:http')
const crypto = require('node:crypto')
const agent = new http.Agent({ keepAlive: true, maxSockets: o.connections })
const statuses = {}
let running = true
const gapMs = o.ratePerSecond > 0 ? 1000 * o.connections / o.ratePerSecond : 0
const one = () => new Promise((resolve) => {
  const headers = {}
  if (o.junkTokens) headers.authorization = 'Bearer vgw_' + crypto.randomBytes(32).toString('base64url')
  else if (o.authorization) headers.authorization = o.authorization
  const req = http.request(o.url + o.path, { agent, headers }, (res) => {
    res.resume()
    res.on('end', () => { statuses[res.statusCode] = (statuses[res.statusCode] || 0) + 1; resolve() })
  })
  req.on('error', () => { statuses.error = (statuses.error || 0) + 1; setTimeout(resolve, 50) })
  req.end()
})
const loop = async () => {
  while (running) {
    const started = Date.now()
    await one()
    const left = gapMs - (Date.now() - started)
    if (left > 0) await new Promise((resolve) => setTimeout(resolve, left))
  }
}
const loops = Array.from({ length: o.connections }, loop)
parentPort.on('message', async (m) => {
  if (m === 'statuses') parentPort.postMessage({ statuses })
  if (m === 'stop') {
    running = false
    await Promise.all(loops)
    agent.destroy()
    parentPort.postMessage({ statuses, done: true })
  }
})
`

/** Many keep-alive connections looping requests from a worker thread, until stopped. */
export function startFlood (o: FloodOptions): Flood {
  const worker = new Worker(WORKER, { eval: true, workerData: { ratePerSecond: 0, junkTokens: false, ...o } })
  const ask = async (m: 'statuses' | 'stop'): Promise<Record<string, number>> => await new Promise((resolve, reject) => {
    const onMessage = (r: { statuses: Record<string, number>, done?: boolean }): void => {
      if (m === 'stop' && r.done !== true) return
      worker.off('message', onMessage)
      resolve({ ...r.statuses })
    }
    worker.on('message', onMessage)
    worker.once('error', reject)
    worker.postMessage(m)
  })
  let stopped: Promise<Record<string, number>> | null = null
  return {
    statuses: () => ask('statuses'),
    stop: () => (stopped ??= ask('stop').finally(() => { void worker.terminate() }))
  }
}
