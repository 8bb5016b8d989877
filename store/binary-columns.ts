/*
 * One-dimensional PostgreSQL arrays in the binary wire format (array_recv, src/backend/utils/adt/
 * arrayfuncs.c), written by hand for the log append: node-postgres sends a Buffer parameter with
 * format code 1 (binary), so PostgreSQL reads each element with its type's receive function
 * (a memcpy for text and bytea, 16 bytes for a uuid, 8 for a timestamp) instead of parsing a
 * quoted, escaped array literal, and this side writes bytes instead of building that literal
 * (bytea as hex, each Date formatted as text).
 */

/** Element type OIDs (pg_type.oid, fixed since PostgreSQL 7.x / 9.4 for jsonb). */
export const OID = { bytea: 17, int8: 20, int4: 23, text: 25, timestamptz: 1184, uuid: 2950, jsonb: 3802 } as const
export type ElementType = keyof typeof OID

// Microseconds between the Unix epoch and PostgreSQL's (2000-01-01T00:00:00Z).
const PG_EPOCH_MS = 946_684_800_000
const TWO_32 = 2 ** 32

const HEX: Int8Array = (() => {
  const t = new Int8Array(128).fill(-1)
  for (let i = 0; i < 10; i++) t[48 + i] = i
  for (let i = 0; i < 6; i++) {
    t[65 + i] = 10 + i
    t[97 + i] = 10 + i
  }
  return t
})()

function hexDigit (code: number): number {
  return code < 128 ? HEX[code] ?? -1 : -1
}

function notUuid (id: string): TypeError {
  return new TypeError(`not a uuid: ${JSON.stringify(id.slice(0, 40))}`)
}

/** A growing byte buffer that writes one array column: header, then each element as length and bytes. */
export class ArrayColumnWriter {
  #buf: Buffer
  #at = 0
  #count = 0
  #hasNull = false
  readonly #oid: number

  constructor (type: ElementType, expectedBytes = 1024) {
    this.#oid = OID[type]
    this.#buf = Buffer.allocUnsafe(Math.max(64, expectedBytes + 20))
    this.#at = 20 // ndim, flags, element type, dimension, lower bound: filled by finish()
  }

  #room (n: number): void {
    if (this.#at + n <= this.#buf.length) return
    const next = Buffer.allocUnsafe(Math.max(this.#buf.length * 2, this.#at + n))
    this.#buf.copy(next, 0, 0, this.#at)
    this.#buf = next
  }

  null (): void {
    this.#room(4)
    this.#buf.writeInt32BE(-1, this.#at)
    this.#at += 4
    this.#count++
    this.#hasNull = true
  }

  text (s: string | null): void {
    if (s === null) return this.null()
    this.#room(4 + s.length * 3)
    const n = this.#buf.write(s, this.#at + 4, 'utf8')
    this.#buf.writeInt32BE(n, this.#at)
    this.#at += 4 + n
    this.#count++
  }

  /** jsonb's binary form: a version byte (1), then the JSON text. */
  json (value: unknown): void {
    if (value === null || value === undefined) return this.null()
    const s = JSON.stringify(value)
    this.#room(5 + s.length * 3)
    this.#buf[this.#at + 4] = 1
    const n = this.#buf.write(s, this.#at + 5, 'utf8')
    this.#buf.writeInt32BE(n + 1, this.#at)
    this.#at += 5 + n
    this.#count++
  }

  bytes (b: Uint8Array | null): void {
    if (b === null) return this.null()
    this.#room(4 + b.byteLength)
    this.#buf.writeInt32BE(b.byteLength, this.#at)
    this.#buf.set(b, this.#at + 4)
    this.#at += 4 + b.byteLength
    this.#count++
  }

  /** A uuid in its canonical text form (8-4-4-4-12 hex digits), as its 16 bytes. */
  uuid (id: string): void {
    if (id.length !== 36 || id[8] !== '-' || id[13] !== '-' || id[18] !== '-' || id[23] !== '-') throw notUuid(id)
    this.#room(20)
    const buf = this.#buf
    buf.writeInt32BE(16, this.#at)
    let o = this.#at + 4
    for (let i = 0; i < 36; i += 2) {
      if (i === 8 || i === 13 || i === 18 || i === 23) i++
      const hi = hexDigit(id.charCodeAt(i))
      const lo = hexDigit(id.charCodeAt(i + 1))
      if (hi < 0 || lo < 0) throw notUuid(id)
      buf[o++] = hi * 16 + lo
    }
    this.#at += 20
    this.#count++
  }

  /** timestamptz: microseconds since 2000-01-01 UTC as int64. A Date holds milliseconds, exactly. */
  timestamp (d: Date): void {
    this.int8((d.getTime() - PG_EPOCH_MS) * 1000)
  }

  /** An int8 from a number that is a safe integer (|n| < 2^53). */
  int8 (n: number | null): void {
    if (n === null) return this.null()
    if (!Number.isSafeInteger(n)) throw new TypeError(`not a safe integer: ${n}`)
    this.#room(12)
    const hi = Math.floor(n / TWO_32)
    this.#buf.writeInt32BE(8, this.#at)
    this.#buf.writeInt32BE(hi, this.#at + 4)
    this.#buf.writeUInt32BE(n - hi * TWO_32, this.#at + 8)
    this.#at += 12
    this.#count++
  }

  int4 (n: number | null): void {
    if (n === null) return this.null()
    this.#room(8)
    this.#buf.writeInt32BE(4, this.#at)
    this.#buf.writeInt32BE(n, this.#at + 4)
    this.#at += 8
    this.#count++
  }

  /** The array's bytes: a one-dimensional array indexed from 1 (an empty one has no dimension). */
  finish (): Buffer {
    const buf = this.#buf
    if (this.#count === 0) {
      buf.writeInt32BE(0, 8)
      buf.writeInt32BE(0, 12)
      buf.writeInt32BE(this.#oid, 16)
      return buf.subarray(8, 20)
    }
    buf.writeInt32BE(1, 0)
    buf.writeInt32BE(this.#hasNull ? 1 : 0, 4)
    buf.writeInt32BE(this.#oid, 8)
    buf.writeInt32BE(this.#count, 12)
    buf.writeInt32BE(1, 16)
    return buf.subarray(0, this.#at)
  }
}
