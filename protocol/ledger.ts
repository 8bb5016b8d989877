import { createHash, createPublicKey, hash, sign, verify, type KeyObject } from 'node:crypto'

/**
 * The write-time ledger's contract (docs/legal-export.md, "Proving the log"). Pure: no I/O.
 *
 * - A **leaf** is SHA-256(0x00 || preimage) of one log row, the preimage being the row's fields as
 *   text (leafPreimage). PostgreSQL computes it as it stores the row (migration 0015, vgw_log_leaf).
 * - A **batch** is one database transaction's rows, leaves in id order; its root is the RFC 9162
 *   Merkle tree hash over them (interior nodes SHA-256(0x01 || left || right)).
 * - Each gateway process (an **epoch**) numbers its batches 1, 2, 3, … in the order their commits
 *   reached it. A batch's hash is SHA-256("vgw-ledger-batch/1\n" + seq + "\n" + xid + "\n" + count + "\n" + hex(root)).
 * - At each checkpoint the batches since the last one form a **block**: the Merkle tree hash of their
 *   batch hashes, chained to the block before:
 *   link = SHA-256("vgw-ledger-block/1\n" + hex(previous link) + "\n" + firstSeq + "\n" + lastSeq + "\n" + hex(block root)).
 * - A **checkpoint** is a signed note (C2SP signed-note format) whose body is
 *   "vgw.ledger/<epoch>\n<lastSeq>\n<base64 link>\n", signed with Ed25519 by a key the database never holds.
 */
export const LEAF_FORMAT = 'vgw-log-row/1'
export const BATCH_FORMAT = 'vgw-ledger-batch/1'
export const BLOCK_FORMAT = 'vgw-ledger-block/1'
export const GENESIS_LINK = Buffer.alloc(32)

/** The stored values a leaf covers, as an export record or a database row gives them. */
export interface LeafFields {
  id: string
  vin: string | null
  market: string | null
  direction: string
  kind: string
  type: string | null
  messageId: string | null
  correlationId: string | null
  createdAtMs: number | null
  ttlSeconds: number | null
  attributes: unknown
  ackStatus: string | null
  ackReason: string | null
  status: string
  errorCode: string | null
  occurredAtMs: number
  receivedAtMs: number
  details: unknown
  raw: Uint8Array | null
}

const sha256 = (...parts: Uint8Array[]): Buffer => {
  const h = createHash('sha256')
  for (const p of parts) h.update(p)
  return h.digest()
}

/**
 * PostgreSQL's text form of a jsonb value (what `jsonb::text` prints): object keys shortest first,
 * then bytewise; ", " and ": " between items; strings escaped as JSON. Numbers print as JavaScript
 * prints them, which is jsonb's form for the integers the log's objects hold.
 */
export function jsonbText (value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value)
  if (Array.isArray(value)) return `[${value.map(jsonbText).join(', ')}]`
  const entries = Object.entries(value as Record<string, unknown>)
  entries.sort(([a], [b]) => {
    const x = Buffer.from(a, 'utf8')
    const y = Buffer.from(b, 'utf8')
    return x.length - y.length || Buffer.compare(x, y)
  })
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}: ${jsonbText(v)}`).join(', ')}}`
}

const field = (v: string | null): string => v === null ? '-' : `${Buffer.byteLength(v, 'utf8')}:${v}`
const num = (v: number | null): string | null => v === null ? null : String(v)
const json = (v: unknown): string | null => v === null || v === undefined ? null : jsonbText(v)

/** The bytes a leaf hashes (after the 0x00 prefix); the same as vgw_log_leaf in migration 0015. */
export function leafPreimage (r: LeafFields): Buffer {
  const text = [LEAF_FORMAT, r.id, r.vin, r.market, r.direction, r.kind, r.type, r.messageId, r.correlationId,
    num(r.createdAtMs), num(r.ttlSeconds), json(r.attributes), r.ackStatus, r.ackReason, r.status, r.errorCode,
    String(r.occurredAtMs), String(r.receivedAtMs), json(r.details), r.raw === null ? null : String(r.raw.byteLength)]
    .map((v, i) => i === 0 ? v as string : field(v)).join('\n') + '\n'
  return r.raw === null ? Buffer.from(text, 'utf8') : Buffer.concat([Buffer.from(text, 'utf8'), r.raw])
}

export function leafHash (r: LeafFields): Buffer {
  return sha256(Buffer.of(0), leafPreimage(r))
}

// One buffer for every interior node's input: a node is hashed with one call and no allocation
// but its digest (the ledger hashes about one node per log row).
const nodeInput = Buffer.alloc(65)
nodeInput[0] = 1
const node = (left: Uint8Array, right: Uint8Array): Buffer => {
  nodeInput.set(left, 1)
  nodeInput.set(right, 33)
  return hash('sha256', nodeInput, 'buffer') as unknown as Buffer
}

/** The largest power of two smaller than n (n > 1): RFC 9162's split point. */
function split (n: number): number {
  let k = 1
  while (k * 2 < n) k *= 2
  return k
}

/**
 * RFC 9162 §2.1.1 Merkle tree hash, computed left to right with a stack of perfect subtrees (no
 * slicing): the same tree as the recursive definition, since each split point is a power of two.
 */
export function merkleRoot (leaves: readonly Uint8Array[]): Buffer {
  if (leaves.length === 0) return sha256()
  const stack: Array<{ size: number, hash: Buffer }> = []
  for (const leaf of leaves) {
    let top = { size: 1, hash: Buffer.from(leaf.buffer, leaf.byteOffset, leaf.byteLength) }
    while (stack.length > 0 && (stack[stack.length - 1] as { size: number }).size === top.size) {
      const left = stack.pop() as { size: number, hash: Buffer }
      top = { size: left.size * 2, hash: node(left.hash, top.hash) }
    }
    stack.push(top)
  }
  // What is left are perfect subtrees of decreasing size: join them right to left.
  let hash = (stack.pop() as { hash: Buffer }).hash
  while (stack.length > 0) hash = node((stack.pop() as { hash: Buffer }).hash, hash)
  return Buffer.from(hash)
}

/** RFC 9162 §2.1.3.1 inclusion proof of leaf `index`, nearest sibling first. */
export function auditPath (leaves: readonly Uint8Array[], index: number): Buffer[] {
  if (leaves.length <= 1) return []
  const k = split(leaves.length)
  return index < k
    ? [...auditPath(leaves.slice(0, k), index), merkleRoot(leaves.slice(k))]
    : [...auditPath(leaves.slice(k), index - k), merkleRoot(leaves.slice(0, k))]
}

/** RFC 9162 §2.1.3.2: the root an inclusion proof leads to, or null when the proof has the wrong shape. */
export function rootFromPath (leaf: Uint8Array, index: number, size: number, path: readonly Uint8Array[]): Buffer | null {
  if (index >= size || index < 0) return null
  let fn = index
  let sn = size - 1
  let r: Buffer = Buffer.from(leaf)
  for (const p of path) {
    if (sn === 0) return null
    if ((fn & 1) === 1 || fn === sn) {
      r = node(p, r)
      if ((fn & 1) === 0) while ((fn & 1) === 0 && fn !== 0) { fn >>= 1; sn >>= 1 }
    } else {
      r = node(r, p)
    }
    fn >>= 1
    sn >>= 1
  }
  return sn === 0 ? r : null
}

export interface BatchInput { seq: number, xid: string, count: number, root: Uint8Array }

export function batchHash (b: BatchInput): Buffer {
  return sha256(Buffer.from(`${BATCH_FORMAT}\n${b.seq}\n${b.xid}\n${b.count}\n${Buffer.from(b.root).toString('hex')}`, 'utf8'))
}

export interface BlockInput { firstSeq: number, lastSeq: number, root: Uint8Array }

export function blockLink (prev: Uint8Array, b: BlockInput): Buffer {
  return sha256(Buffer.from(`${BLOCK_FORMAT}\n${Buffer.from(prev).toString('hex')}\n${b.firstSeq}\n${b.lastSeq}\n${Buffer.from(b.root).toString('hex')}`, 'utf8'))
}

/**
 * Inclusion proofs for several leaves of one tree, its subtree hashes computed once (an export
 * asks for many rows of the same batch or block).
 */
export class MerkleTree {
  readonly #leaves: readonly Uint8Array[]
  readonly #memo = new Map<string, Buffer>()

  constructor (leaves: readonly Uint8Array[]) {
    this.#leaves = leaves
  }

  get size (): number {
    return this.#leaves.length
  }

  root (): Buffer {
    return this.#hash(0, this.#leaves.length)
  }

  #hash (from: number, to: number): Buffer {
    const key = `${from}:${to}`
    const known = this.#memo.get(key)
    if (known !== undefined) return known
    const n = to - from
    const h = n === 0 ? sha256() : n === 1 ? Buffer.from(this.#leaves[from] as Uint8Array) : node(this.#hash(from, from + split(n)), this.#hash(from + split(n), to))
    this.#memo.set(key, h)
    return h
  }

  /** RFC 9162 §2.1.3.1 audit path of leaf `index`, nearest sibling first. */
  path (index: number, from = 0, to = this.#leaves.length): Buffer[] {
    const n = to - from
    if (n <= 1) return []
    const k = split(n)
    return index < from + k
      ? [...this.path(index, from, from + k), this.#hash(from + k, to)]
      : [...this.path(index, from + k, to), this.#hash(from, from + k)]
  }
}

/** A checkpoint's body: what is signed. */
export interface Checkpoint { epoch: string, seq: number, link: Buffer }

export const checkpointOrigin = (epoch: string): string => `vgw.ledger/${epoch}`

function checkpointBody (c: Checkpoint): string {
  return `${checkpointOrigin(c.epoch)}\n${c.seq}\n${c.link.toString('base64')}\n`
}

/** Signed-note key id: the first 4 bytes of SHA-256(name || "\n" || 0x01 || public key). */
function keyId (name: string, rawPublicKey: Buffer): Buffer {
  return sha256(Buffer.from(`${name}\n`, 'utf8'), Buffer.of(1), rawPublicKey).subarray(0, 4)
}

function rawEd25519 (key: KeyObject): Buffer {
  const jwk = key.export({ format: 'jwk' })
  if (typeof jwk.x !== 'string') throw new Error('not an Ed25519 key')
  return Buffer.from(jwk.x, 'base64url')
}

/** The verifier key string a third party is given: "<name>+<hex key id>+<base64(0x01 || public key)>". */
export function verifierKey (name: string, publicKey: KeyObject): string {
  const raw = rawEd25519(publicKey)
  return `${name}+${keyId(name, raw).toString('hex')}+${Buffer.concat([Buffer.of(1), raw]).toString('base64')}`
}

export function signCheckpoint (c: Checkpoint, name: string, privateKey: KeyObject): string {
  const body = checkpointBody(c)
  const raw = rawEd25519(createPublicKey(privateKey))
  const signature = sign(null, Buffer.from(body, 'utf8'), privateKey)
  return `${body}\n\u2014 ${name} ${Buffer.concat([keyId(name, raw), signature]).toString('base64')}\n`
}

/** Reads a signed checkpoint and checks its signature against the verifier key; null when either fails. */
export function openCheckpoint (note: string, verifier: string): Checkpoint | null {
  // name+keyid+key, where the base64 key may itself hold '+'.
  const m = /^([^+\s]+)\+([0-9a-f]{8})\+(\S+)$/.exec(verifier.trim())
  if (m === null) return null
  const [, name, idHex, keyB64] = m as unknown as [string, string, string, string]
  const keyBytes = Buffer.from(keyB64, 'base64')
  if (keyBytes.length !== 33 || keyBytes[0] !== 1) return null
  const publicKey = createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: keyBytes.subarray(1).toString('base64url') }, format: 'jwk' })
  const cut = note.indexOf('\n\n')
  if (cut < 0) return null
  const body = note.slice(0, cut + 1)
  for (const line of note.slice(cut + 2).split('\n')) {
    const m = /^\u2014 (\S+) (\S+)$/.exec(line)
    if (m === null || m[1] !== name) continue
    const sig = Buffer.from(m[2] as string, 'base64')
    if (sig.subarray(0, 4).toString('hex') !== idHex) continue
    if (!verify(null, Buffer.from(body, 'utf8'), publicKey, sig.subarray(4))) return null
    const [origin, seq, link] = body.split('\n')
    const epoch = origin?.startsWith('vgw.ledger/') === true ? origin.slice('vgw.ledger/'.length) : null
    if (epoch === null || seq === undefined || !/^\d+$/.test(seq) || link === undefined) return null
    return { epoch, seq: Number(seq), link: Buffer.from(link, 'base64') }
  }
  return null
}
