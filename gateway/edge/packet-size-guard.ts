import { Duplex } from 'node:stream'
import type { TLSSocket } from 'node:tls'

/**
 * Reads MQTT fixed headers as bytes pass (MQTT 3.1.1 §2.2.3: the Remaining Length is
 * a variable byte integer of at most four bytes) and reports the first packet larger
 * than the limit. Aedes' parser would otherwise buffer up to 256 MB for one packet.
 */
export class MqttFrameScanner {
  readonly #maxPacketBytes: number
  #phase: 'header' | 'length' | 'body' = 'header'
  #length = 0
  #multiplier = 1
  #lengthBytes = 0
  #remaining = 0

  constructor (maxPacketBytes: number) {
    this.#maxPacketBytes = maxPacketBytes
  }

  /** Returns the announced size of an oversized (or malformed-length) packet, else null. */
  scan (chunk: Uint8Array): number | null {
    return this.scanFrames(chunk, () => true).oversize
  }

  /**
   * Follows frames through `chunk`. `admit` sees the fixed-header byte of each frame that
   * starts in it; when it answers false the scan stops before that byte (`stoppedAt`), so
   * the caller can hold the rest and scan it again later.
   */
  scanFrames (chunk: Uint8Array, admit: (header: number) => boolean): { oversize: number | null, stoppedAt: number | null } {
    let i = 0
    while (i < chunk.length) {
      if (this.#phase === 'header') {
        if (!admit(chunk[i] as number)) return { oversize: null, stoppedAt: i }
        this.#phase = 'length'
        this.#length = 0
        this.#multiplier = 1
        this.#lengthBytes = 0
        i++
      } else if (this.#phase === 'length') {
        const b = chunk[i++] as number
        this.#length += (b & 0x7f) * this.#multiplier
        this.#multiplier *= 128
        this.#lengthBytes++
        if (this.#length > this.#maxPacketBytes) return { oversize: this.#length, stoppedAt: null }
        if ((b & 0x80) === 0) {
          this.#remaining = this.#length
          this.#phase = this.#remaining > 0 ? 'body' : 'header'
        } else if (this.#lengthBytes === 4) {
          return { oversize: Number.POSITIVE_INFINITY, stoppedAt: null } // [MQTT-2.2.3]: more than four length bytes is malformed
        }
      } else {
        const take = Math.min(this.#remaining, chunk.length - i)
        i += take
        this.#remaining -= take
        if (this.#remaining === 0) this.#phase = 'header'
      }
    }
    return { oversize: null, stoppedAt: null }
  }
}

// MQTT 3.1.1 §2.2.1 control packet types (high nibble of the fixed header), §3.3.1.2 QoS bits.
const PUBLISH = 3
const PUBACK = 4
const isAckedPublish = (header: number): boolean => header >> 4 === PUBLISH && ((header >> 1) & 3) > 0

/**
 * The TLS socket as Aedes sees it, with oversized packets stopped before they are
 * buffered. Writes pass straight through; reads honour backpressure.
 */
export class GuardedConnection extends Duplex {
  readonly socket: TLSSocket
  readonly #scanner: MqttFrameScanner
  readonly #written = new MqttFrameScanner(Number.POSITIVE_INFINITY)
  readonly #maxInflight: number
  readonly #onOversize: (announcedBytes: number) => void
  /** QoS 1 PUBLISH packets passed to Aedes whose PUBACK has not been written yet. */
  #inflight = 0
  /** Bytes read from the socket but held back while the in-flight window is full. */
  #held: Buffer | null = null

  /**
   * `maxInflight`: QoS 1 publishes read and not yet acknowledged, at most. Past it the rest
   * stays in the socket (TCP backpressure) instead of in the gateway's memory; the vehicle's
   * own in-flight window [MQTT-4.4.0-1] then holds it back.
   */
  constructor (socket: TLSSocket, maxPacketBytes: number, onOversize: (announcedBytes: number) => void, maxInflight = Number.POSITIVE_INFINITY) {
    super({ allowHalfOpen: false })
    this.socket = socket
    this.#scanner = new MqttFrameScanner(maxPacketBytes)
    this.#maxInflight = maxInflight
    this.#onOversize = onOversize
    socket.on('data', (chunk: Buffer) => {
      if (this.#held !== null) {
        this.#held = Buffer.concat([this.#held, chunk])
        socket.pause()
        return
      }
      this.#feed(chunk)
    })
    socket.on('end', () => this.push(null))
    socket.on('error', (err) => this.destroy(err))
    socket.on('close', () => this.destroy())
  }

  /** QoS 1 publishes read and not yet acknowledged. */
  get inflight (): number {
    return this.#inflight
  }

  /** Passes what the window admits to Aedes; true when the socket may be read on. */
  #feed (chunk: Buffer): boolean {
    const { oversize, stoppedAt } = this.#scanner.scanFrames(chunk, (header) => {
      if (!isAckedPublish(header)) return true
      if (this.#inflight >= this.#maxInflight) return false
      this.#inflight++
      return true
    })
    if (oversize !== null) {
      this.#onOversize(oversize)
      this.socket.destroy()
      return false
    }
    const pass = stoppedAt === null ? chunk : chunk.subarray(0, stoppedAt)
    if (stoppedAt !== null) this.#held = Buffer.from(chunk.subarray(stoppedAt))
    const more = (pass.length === 0 || this.push(pass)) && this.#held === null
    if (!more) this.socket.pause()
    return more
  }

  #acknowledged (chunk: Buffer): void {
    this.#written.scanFrames(chunk, (header) => {
      if (header >> 4 === PUBACK && this.#inflight > 0) this.#inflight--
      return true
    })
    if (this.#held !== null && this.#inflight < this.#maxInflight) {
      const held = this.#held
      this.#held = null
      if (this.#feed(held)) this.socket.resume()
    }
  }

  override _read (): void {
    if (this.#held === null) this.socket.resume()
  }

  #corked = false

  override _write (chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this.#acknowledged(chunk)
    // Packets written in one tick (PUBACKs of one commit) leave in one TLS record and one syscall.
    if (!this.#corked) {
      this.#corked = true
      this.socket.cork()
      process.nextTick(() => {
        this.#corked = false
        this.socket.uncork()
      })
    }
    this.socket.write(chunk, callback)
  }

  override _writev (chunks: Array<{ chunk: Buffer }>, callback: (error?: Error | null) => void): void {
    const all = chunks.length === 1 ? chunks[0]?.chunk ?? Buffer.alloc(0) : Buffer.concat(chunks.map((c) => c.chunk))
    this.#acknowledged(all)
    this.socket.write(all, callback)
  }

  override _final (callback: (error?: Error | null) => void): void {
    this.socket.end(() => callback())
  }

  override _destroy (error: Error | null, callback: (error?: Error | null) => void): void {
    this.socket.destroy()
    callback(error)
  }
}
