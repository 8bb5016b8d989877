import type { WebSocket } from '@fastify/websocket'
import type { FastifyBaseLogger } from 'fastify'
import { Serialized, type StreamEvent } from '../events/event-hub.ts'

// A client whose unsent events pass this many bytes is closed (1013) rather than buffered without end.
export const MAX_BACKLOG_BYTES = 1024 * 1024
// A slow client that does not finish the close handshake in this time is cut.
const CLOSE_GRACE_MS = 5000

type Outgoing = StreamEvent | Record<string, unknown> | Serialized

const json = (e: Outgoing): string => e instanceof Serialized ? e.data : JSON.stringify(e)

/**
 * One stream connection's sending side: a bounded backlog, a paced replay of retained events
 * (live events wait behind it, bounded too), and one release of everything it holds, however it ends.
 */
export class StreamSession {
  readonly #socket: WebSocket
  readonly #log: FastifyBaseLogger
  readonly #releases: Array<() => void> = []
  #replaying = false
  #held: Array<{ e: Outgoing, data: string }> = []
  #heldBytes = 0
  #ended = false

  constructor (socket: WebSocket, log: FastifyBaseLogger) {
    this.#socket = socket
    this.#log = log
    socket.on('close', () => this.#release())
    socket.on('error', () => this.#release())
  }

  /** Runs when the session ends (close, error, termination or a slow-client close). */
  onEnd (release: () => void): void {
    if (this.#ended) release()
    else this.#releases.push(release)
  }

  /**
   * A live event (with its JSON, when the hub made it already): sent now, or held behind a replay
   * in progress. Either way the bytes waiting for this client, this event's included, stay within
   * MAX_BACKLOG_BYTES, or the client is closed as too slow.
   */
  send (e: Outgoing, data: string = json(e)): void {
    if (this.#ended) return
    if (this.#replaying) {
      this.#held.push({ e, data })
      this.#heldBytes += Buffer.byteLength(data)
      if (this.#heldBytes > MAX_BACKLOG_BYTES) this.#tooSlow()
      return
    }
    if (this.#socket.bufferedAmount + data.length > MAX_BACKLOG_BYTES) {
      this.#tooSlow()
      return
    }
    this.#socket.send(data)
  }

  /**
   * Sends replayed events (retained ones, or pages read from the log) no faster than the client
   * reads them, then the live events that arrived meanwhile, but for those `alreadySent` says the replay carried.
   */
  async replay (source: Iterable<readonly Outgoing[]> | AsyncIterable<readonly Outgoing[]>, alreadySent: (e: Outgoing) => boolean = () => false): Promise<void> {
    this.#replaying = true
    for await (const events of source) {
      for (const e of events) {
        if (this.#ended) return
        const data = json(e)
        if (this.#socket.bufferedAmount > MAX_BACKLOG_BYTES / 2) await new Promise<void>((resolve) => this.#socket.send(data, () => resolve()))
        else this.#socket.send(data)
      }
      if (this.#ended) return
    }
    this.#replaying = false
    const held = this.#held
    this.#held = []
    this.#heldBytes = 0
    for (const { e, data } of held) if (!this.#ended && !alreadySent(e)) this.#socket.send(data)
  }

  #tooSlow (): void {
    if (this.#ended) return
    this.#log.warn({ bufferedBytes: this.#socket.bufferedAmount + this.#heldBytes }, 'stream client too slow; closing it (1013)')
    this.#release()
    this.#socket.close(1013, 'client too slow')
    setTimeout(() => this.#socket.terminate(), CLOSE_GRACE_MS).unref()
  }

  #release (): void {
    if (this.#ended) return
    this.#ended = true
    this.#held = []
    for (const release of this.#releases.splice(0)) release()
  }
}

/**
 * Pings every stream each interval; one that has not answered the previous ping by the next
 * is terminated (RFC 6455 §5.5.2, §5.5.3), which ends its session and frees what it held.
 */
export class Heartbeat {
  readonly #answered = new Map<WebSocket, boolean>()
  readonly #timer: NodeJS.Timeout

  constructor (intervalMs: number) {
    this.#timer = setInterval(() => this.#beat(), intervalMs)
    this.#timer.unref()
  }

  watch (socket: WebSocket): void {
    this.#answered.set(socket, true)
    socket.on('pong', () => { if (this.#answered.has(socket)) this.#answered.set(socket, true) })
    socket.on('close', () => this.#answered.delete(socket))
  }

  stop (): void {
    clearInterval(this.#timer)
  }

  #beat (): void {
    for (const [socket, answered] of this.#answered) {
      if (!answered) {
        this.#answered.delete(socket)
        socket.terminate()
        continue
      }
      this.#answered.set(socket, false)
      socket.ping()
    }
  }
}
