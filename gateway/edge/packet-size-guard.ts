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
    let i = 0
    while (i < chunk.length) {
      if (this.#phase === 'header') {
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
        if (this.#length > this.#maxPacketBytes) return this.#length
        if ((b & 0x80) === 0) {
          this.#remaining = this.#length
          this.#phase = this.#remaining > 0 ? 'body' : 'header'
        } else if (this.#lengthBytes === 4) {
          return Number.POSITIVE_INFINITY // [MQTT-2.2.3]: more than four length bytes is malformed
        }
      } else {
        const take = Math.min(this.#remaining, chunk.length - i)
        i += take
        this.#remaining -= take
        if (this.#remaining === 0) this.#phase = 'header'
      }
    }
    return null
  }
}

/**
 * The TLS socket as Aedes sees it, with oversized packets stopped before they are
 * buffered. Writes pass straight through; reads honour backpressure.
 */
export class GuardedConnection extends Duplex {
  readonly socket: TLSSocket
  readonly #scanner: MqttFrameScanner

  constructor (socket: TLSSocket, maxPacketBytes: number, onOversize: (announcedBytes: number) => void) {
    super({ allowHalfOpen: false })
    this.socket = socket
    this.#scanner = new MqttFrameScanner(maxPacketBytes)
    socket.on('data', (chunk: Buffer) => {
      const oversize = this.#scanner.scan(chunk)
      if (oversize !== null) {
        onOversize(oversize)
        socket.destroy()
        return
      }
      if (!this.push(chunk)) socket.pause()
    })
    socket.on('end', () => this.push(null))
    socket.on('error', (err) => this.destroy(err))
    socket.on('close', () => this.destroy())
  }

  override _read (): void {
    this.socket.resume()
  }

  #corked = false

  override _write (chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
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
    this.socket.write(chunks.length === 1 ? chunks[0]?.chunk ?? Buffer.alloc(0) : Buffer.concat(chunks.map((c) => c.chunk)), callback)
  }

  override _final (callback: (error?: Error | null) => void): void {
    this.socket.end(() => callback())
  }

  override _destroy (error: Error | null, callback: (error?: Error | null) => void): void {
    this.socket.destroy()
    callback(error)
  }
}
