import { createHash } from 'node:crypto'

/**
 * The legal export format (docs/legal-export.md). Each line of the NDJSON file is
 * `{"seq":N,"prevHash":"…","hash":"…","record":{…}}` where
 *   hash = SHA-256( prevHash + "\n" + canonicalJson(record) ), hex,
 * the first prevHash is GENESIS, and the manifest holds the row count, the time range,
 * the SHA-256 of the whole file and the last hash (the chain head). Pure: no I/O.
 */
export const EXPORT_FORMAT = 'vgw-legal-export/1'
export const GENESIS = '0'.repeat(64)

export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue }

/** Keys sorted by UTF-16 code units, no white space; the same bytes in any language that sorts keys. */
export function canonicalJson (value: JsonValue): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value)
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`
  const keys = Object.keys(value).sort()
  return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(value[k] as JsonValue)}`).join(',')}}`
}

export function chainHash (prevHash: string, record: JsonValue): string {
  return createHash('sha256').update(`${prevHash}\n${canonicalJson(record)}`).digest('hex')
}

export interface ExportLine {
  seq: number
  prevHash: string
  hash: string
  record: { [key: string]: JsonValue }
  /** The record's proof against a signed ledger checkpoint (docs/legal-export.md, "Proving the log"); null when it has none. */
  ledger?: JsonValue
}

export interface ExportManifest {
  format: typeof EXPORT_FORMAT
  vin: string
  from: string
  to: string
  rowCount: number
  firstOccurredAt: string | null
  lastOccurredAt: string | null
  file: string
  sha256: string
  genesis: string
  chainHead: string
  exportedAt: string
  exportedBy: string
  /** The ledger blocks the lines' proofs lead to, with their signed notes. */
  ledger?: JsonValue
}

/** Builds the chain line by line while the rows stream. */
export class ChainWriter {
  #seq = 0
  #prev = GENESIS

  line (record: { [key: string]: JsonValue }, ledger?: JsonValue): string {
    this.#seq++
    const hash = chainHash(this.#prev, record)
    const text = JSON.stringify({ seq: this.#seq, prevHash: this.#prev, hash, record, ...(ledger !== undefined ? { ledger } : {}) } satisfies ExportLine)
    this.#prev = hash
    return text + '\n'
  }

  get count (): number {
    return this.#seq
  }

  get head (): string {
    return this.#prev
  }
}

export interface TamperFinding {
  /** Line number in the file (1-based); 0 for findings about the file as a whole. */
  line: number
  seq: number | null
  problem: 'unreadable' | 'edited' | 'deleted' | 'inserted' | 'reordered' | 'chain-broken' | 'count-mismatch' | 'head-mismatch'
    /** Against the ledger's signed checkpoints (vgw export verify --checkpoints). */
    | 'unproven' | 'altered' | 'checkpoint'
  detail: string
}

export interface ChainVerdict {
  ok: boolean
  rows: number
  head: string
  findings: TamperFinding[]
}

/**
 * Re-computes the chain from the lines alone and names each problem with its line: an
 * edited record no longer matches its hash; a deleted one leaves a gap in seq; an
 * inserted one repeats a seq or breaks the chain; reordered ones run seq backwards.
 */
export class ChainVerifier {
  #line = 0
  #expectedSeq = 1
  #prev = GENESIS
  #rows = 0
  readonly #seen = new Set<number>()
  readonly #gaps: Array<{ finding: TamperFinding, from: number, to: number }> = []
  readonly findings: TamperFinding[] = []

  push (text: string): void {
    this.#line++
    if (text.trim() === '') return
    let parsed: ExportLine
    try {
      parsed = JSON.parse(text) as ExportLine
    } catch {
      this.findings.push({ line: this.#line, seq: null, problem: 'unreadable', detail: 'not JSON' })
      return
    }
    this.#rows++
    const { seq, prevHash, hash, record } = parsed
    if (typeof seq !== 'number' || typeof hash !== 'string' || typeof prevHash !== 'string' || typeof record !== 'object' || record === null) {
      this.findings.push({ line: this.#line, seq: null, problem: 'unreadable', detail: 'missing seq, prevHash, hash or record' })
      return
    }
    if (chainHash(prevHash, record) !== hash) {
      this.findings.push({ line: this.#line, seq, problem: 'edited', detail: `record ${seq} does not match its hash: its content was changed` })
    }
    if (this.#seen.has(seq)) {
      this.findings.push({ line: this.#line, seq, problem: 'inserted', detail: `a second record ${seq}` })
    } else if (seq > this.#expectedSeq) {
      const finding: TamperFinding = { line: this.#line, seq, problem: 'deleted', detail: `records ${this.#expectedSeq}..${seq - 1} are missing before this line` }
      this.findings.push(finding)
      this.#gaps.push({ finding, from: this.#expectedSeq, to: seq - 1 })
    } else if (seq < this.#expectedSeq) {
      this.findings.push({ line: this.#line, seq, problem: 'reordered', detail: `record ${seq} comes after record ${this.#expectedSeq - 1}` })
    } else if (prevHash !== this.#prev) {
      this.findings.push({ line: this.#line, seq, problem: 'chain-broken', detail: `record ${seq} does not follow the record before it` })
    }
    this.#seen.add(seq)
    this.#expectedSeq = Math.max(this.#expectedSeq, seq + 1)
    this.#prev = hash
  }

  finish (manifest: Pick<ExportManifest, 'rowCount' | 'chainHead'>): ChainVerdict {
    // A gap filled later in the file was a move, not a deletion.
    for (const gap of this.#gaps) {
      let filled = true
      for (let s = gap.from; s <= gap.to && filled; s++) filled = this.#seen.has(s)
      if (filled) {
        gap.finding.problem = 'reordered'
        gap.finding.detail = `records ${gap.from}..${gap.to} were moved after this line`
      }
    }
    if (manifest.rowCount !== this.#rows) {
      this.findings.push({ line: 0, seq: null, problem: 'count-mismatch', detail: `the manifest lists ${manifest.rowCount} records, the file has ${this.#rows}` })
    }
    if (manifest.chainHead !== this.#prev) {
      this.findings.push({ line: 0, seq: null, problem: 'head-mismatch', detail: 'the last hash is not the chain head in the manifest' })
    }
    return { ok: this.findings.length === 0, rows: this.#rows, head: this.#prev, findings: this.findings }
  }
}
