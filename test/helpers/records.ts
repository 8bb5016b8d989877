import { v7 as uuidv7 } from 'uuid'
import type { TransactionRecord } from '../../store/index.ts'

/** A log row for tests that need rows at chosen times. */
export function logRow (vin: string, market: string | null, occurredAt: Date, over: Partial<TransactionRecord> = {}): TransactionRecord {
  return {
    id: uuidv7(),
    occurredAt,
    receivedAt: occurredAt,
    vin,
    market,
    direction: 'up',
    kind: 'TELEMETRY',
    type: 'telemetry.position',
    messageId: uuidv7(),
    correlationId: null,
    createdAtMs: occurredAt.getTime(),
    ttlSeconds: 0,
    attributes: {},
    ackStatus: null,
    ackReason: null,
    status: 'accepted',
    errorCode: null,
    raw: Buffer.from([8, 1]),
    details: null,
    ...over
  }
}
