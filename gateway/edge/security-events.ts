import type { Logger } from 'pino'
import type { ErrorCode } from '../../protocol/index.ts'
import type { TransactionRecord } from '../../store/index.ts'
import type { CommitBatcher } from '../commit-batcher.ts'
import { securityEvent, type RecordContext } from './records.ts'

/** Who a security event is about; the VIN is known (from a certificate that chains to our CA). */
export interface SecuritySubject {
  vin: string
  market: string | null
  fingerprint: string | null
  remoteAddress: string
}

const WINDOW_MS = 60_000
/** How often ended windows are looked for; a summary row lands at most this late. */
const SWEEP_MS = 1000
/** VINs with a window open, at most; past it the oldest window is closed early (its summary written). */
const MAX_TRACKED = 100_000
/** Distinct source addresses named in a summary row. */
const MAX_ADDRESSES = 10

/** One VIN's current window: rows written, and what was only counted. */
interface Window {
  start: number
  written: number
  suppressed: number
  byCode: Map<ErrorCode, number>
  byType: Map<string, number>
  addresses: Set<string>
  last: SecuritySubject | null
}

/**
 * Writes security events into the vehicle's transaction log, and a log line for each, at
 * most `perMinute` per VIN in a window of a minute. Past that, events are counted, and when
 * the window ends one `security.suppressed` row (and one log line) says how many of which
 * code and type were left out, so a takeover or topic-denied loop cannot fill a
 * vehicle's ten-year record.
 */
export class SecurityRecorder {
  readonly #log: CommitBatcher<TransactionRecord>
  readonly #ctx: RecordContext
  readonly #logger: Logger
  readonly #perMinute: number
  readonly #windows = new Map<string, Window>()
  readonly #sweeper: NodeJS.Timeout

  constructor (log: CommitBatcher<TransactionRecord>, ctx: RecordContext, logger: Logger, perMinute: number) {
    this.#log = log
    this.#ctx = ctx
    this.#logger = logger
    this.#perMinute = perMinute
    this.#sweeper = setInterval(() => this.#sweep(false), SWEEP_MS)
    this.#sweeper.unref() // never keeps the process alive on its own
  }

  record (who: SecuritySubject, code: ErrorCode, type: string, detail: string, extra?: Record<string, unknown>): void {
    const w = this.#window(who.vin)
    if (w.written < this.#perMinute) {
      w.written++
      this.#logger.warn({ vin: who.vin, code, type, detail, remoteAddress: who.remoteAddress }, 'security event')
      this.#write(securityEvent(this.#ctx, { ...who, code, type, detail, ...(extra !== undefined ? { extra } : {}) }))
      return
    }
    if (w.suppressed === 0) {
      this.#logger.warn({ vin: who.vin, code, type, limit: this.#perMinute }, 'security events over the limit for this vehicle: the rest of the minute is counted into one summary')
    }
    w.suppressed++
    w.byCode.set(code, (w.byCode.get(code) ?? 0) + 1)
    w.byType.set(type, (w.byType.get(type) ?? 0) + 1)
    if (w.addresses.size < MAX_ADDRESSES) w.addresses.add(who.remoteAddress)
    w.last = who
  }

  /** Stops the timer and writes the summaries of open windows; called when the edge closes. */
  close (): void {
    clearInterval(this.#sweeper)
    this.#sweep(true)
  }

  #window (vin: string): Window {
    const now = this.#ctx.now()
    const open = this.#windows.get(vin)
    if (open !== undefined && now - open.start < WINDOW_MS) return open
    if (open !== undefined) this.#end(vin, open, now)
    else if (this.#windows.size >= MAX_TRACKED) this.#evictOldest(now)
    const w: Window = { start: now, written: 0, suppressed: 0, byCode: new Map(), byType: new Map(), addresses: new Set(), last: null }
    this.#windows.set(vin, w)
    return w
  }

  #evictOldest (now: number): void {
    const [vin, w] = this.#windows.entries().next().value ?? []
    if (vin !== undefined && w !== undefined) this.#end(vin, w, now)
  }

  #sweep (all: boolean): void {
    const now = this.#ctx.now()
    for (const [vin, w] of this.#windows) {
      if (all || now - w.start >= WINDOW_MS) this.#end(vin, w, now)
    }
  }

  /** Forgets a window, first writing its summary when something was left out. */
  #end (vin: string, w: Window, now: number): void {
    this.#windows.delete(vin)
    if (w.suppressed === 0 || w.last === null) return
    const byCode = Object.fromEntries(w.byCode)
    const byType = Object.fromEntries(w.byType)
    // The row's code is the one most often left out; all of them are in details.
    const code = [...w.byCode.entries()].sort((a, b) => b[1] - a[1])[0]?.[0] ?? 'GW_ERR_CLIENT_ID_MISMATCH'
    const span = { from: new Date(w.start).toISOString(), to: new Date(now).toISOString() }
    const detail = `${w.suppressed} security events over ${this.#perMinute} per minute left out`
    this.#logger.warn({ vin, code, suppressed: w.suppressed, byCode, byType, ...span }, 'security events suppressed')
    this.#write(securityEvent(this.#ctx, {
      ...w.last, code, type: 'security.suppressed', detail,
      extra: { suppressed: w.suppressed, byCode, byType, remoteAddresses: [...w.addresses], window: span, limitPerMinute: this.#perMinute }
    }))
  }

  #write (row: TransactionRecord): void {
    this.#log.add(row).catch((err: unknown) => this.#logger.error({ err, vin: row.vin, code: row.errorCode }, 'security event not recorded'))
  }
}
