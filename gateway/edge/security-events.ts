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

/** Writes security events into the vehicle's transaction log, and a log line for each. */
export class SecurityRecorder {
  readonly #log: CommitBatcher<TransactionRecord>
  readonly #ctx: RecordContext
  readonly #logger: Logger

  constructor (log: CommitBatcher<TransactionRecord>, ctx: RecordContext, logger: Logger, _perMinute: number) {
    this.#log = log
    this.#ctx = ctx
    this.#logger = logger
  }

  record (who: SecuritySubject, code: ErrorCode, type: string, detail: string, extra?: Record<string, unknown>): void {
    this.#logger.warn({ vin: who.vin, code, type, detail, remoteAddress: who.remoteAddress }, 'security event')
    this.#log.add(securityEvent(this.#ctx, { ...who, code, type, detail, ...(extra !== undefined ? { extra } : {}) }))
      .catch((err: unknown) => this.#logger.error({ err, vin: who.vin, code }, 'security event not recorded'))
  }

  /** Stops timers; called when the edge closes. */
  close (): void {}
}
