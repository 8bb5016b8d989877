import type net from 'node:net'
import { LRUCache } from 'lru-cache'
import type { ErrorCode } from '../../protocol/index.ts'
import type { GatewayConfig } from '../config.ts'
import type { SampledLog } from './sampled-log.ts'

/** Source addresses with a handshake bucket, at most; a bucket left alone for a second is full, so dropping one loses nothing. */
const MAX_BUCKETS = 100_000

interface Bucket {
  tokens: number
  at: number
}

/**
 * What the MQTT port admits, decided at the TCP 'connection' event before a byte of TLS is
 * read: connections in total and per source address, and handshakes per second per address
 * (a token bucket). An admitted socket must complete its TLS handshake within
 * handshakeTimeoutMs of being accepted, or it is closed: Node's own handshakeTimeout only
 * emits 'tlsClientError' and is an idle timer that a byte now and then resets.
 */
export class ConnectionGuard {
  readonly #limits: GatewayConfig['edge']
  readonly #sampled: SampledLog
  /** Open connections per address; an entry lives only while one is open, so it is bounded by maxConnections. */
  readonly #open = new Map<string, number>()
  #total = 0
  readonly #buckets = new LRUCache<string, Bucket>({ max: MAX_BUCKETS, ttl: 1000 })
  /** Handshake deadlines of admitted sockets, by address and port (unique while the socket is open). */
  readonly #deadlines = new Map<string, NodeJS.Timeout>()

  constructor (limits: GatewayConfig['edge'], sampled: SampledLog) {
    this.#limits = limits
    this.#sampled = sampled
  }

  /** Admits or refuses a socket just accepted; a refused one is destroyed (the client sees the TCP connection close before any TLS record). */
  admit (socket: net.Socket): void {
    const address = socket.remoteAddress
    if (address === undefined) { socket.destroy(); return } // already gone
    const refusal = this.#refusal(address)
    if (refusal !== null) {
      this.#sampled.note(refusal.code, address, 'MQTT connection refused', { code: refusal.code, detail: refusal.detail })
      socket.destroy()
      return
    }
    this.#total++
    this.#open.set(address, (this.#open.get(address) ?? 0) + 1)
    const key = `${address}|${socket.remotePort}`
    const deadline = setTimeout(() => {
      this.#sampled.note('GW_ERR_HANDSHAKE_TIMEOUT', address, 'TLS handshake not completed in time: connection closed', { code: 'GW_ERR_HANDSHAKE_TIMEOUT', timeoutMs: this.#limits.handshakeTimeoutMs })
      socket.destroy()
    }, this.#limits.handshakeTimeoutMs)
    deadline.unref()
    this.#deadlines.set(key, deadline)
    socket.once('close', () => {
      clearTimeout(deadline)
      this.#deadlines.delete(key)
      this.#total--
      const left = (this.#open.get(address) ?? 1) - 1
      if (left > 0) this.#open.set(address, left)
      else this.#open.delete(address)
    })
  }

  /** The TLS handshake of the socket from this address and port completed: its deadline no longer applies. */
  secured (address: string | undefined, port: number | undefined): void {
    const key = `${address}|${port}`
    clearTimeout(this.#deadlines.get(key))
    this.#deadlines.delete(key)
  }

  #refusal (address: string): { code: ErrorCode, detail: string } | null {
    const { maxConnections, maxConnectionsPerAddress, handshakesPerSecondPerAddress } = this.#limits
    if (this.#total >= maxConnections) return { code: 'GW_ERR_CONNECTION_LIMIT', detail: `${this.#total} connections open, at most ${maxConnections}` }
    const open = this.#open.get(address) ?? 0
    if (open >= maxConnectionsPerAddress) return { code: 'GW_ERR_CONNECTION_LIMIT', detail: `${open} connections open from this address, at most ${maxConnectionsPerAddress}` }
    if (!this.#takeHandshake(address)) return { code: 'GW_ERR_HANDSHAKE_RATE', detail: `over ${handshakesPerSecondPerAddress} TLS handshakes per second from this address` }
    return null
  }

  /** Token bucket: holds one second's worth of handshakes and refills at the rate. */
  #takeHandshake (address: string): boolean {
    const rate = this.#limits.handshakesPerSecondPerAddress
    const now = Date.now()
    const b = this.#buckets.get(address) ?? { tokens: rate, at: now }
    b.tokens = Math.min(rate, b.tokens + ((now - b.at) / 1000) * rate)
    b.at = now
    if (b.tokens < 1) { this.#buckets.set(address, b); return false }
    b.tokens -= 1
    this.#buckets.set(address, b)
    return true
  }

  /** Clears every pending deadline (the sockets themselves are closed by the server's owner). */
  close (): void {
    for (const t of this.#deadlines.values()) clearTimeout(t)
    this.#deadlines.clear()
  }
}
