import type { FastifyInstance } from 'fastify'
import { GatewayError, isUuid, parseEnvelope, type JsonValue } from '../../../protocol/index.ts'
import type { MessageTraceRows, Store, TransactionRecord } from '../../../store/index.ts'
import { requireMessageId, requireVin } from '../request-values.ts'
import { transactionView } from '../views.ts'

export interface TraceRoutesDeps {
  store: Store
}

interface TraceStep {
  step: string
  at: Date
  logId: string | null
  [field: string]: JsonValue | Date
}

// The words of a step, by log row: what happened, not the status column's name.
const STEP_OF: Record<string, string> = {
  queued: 'queued', sent: 'published', delivered: 'puback', acknowledged: 'acknowledged',
  expired: 'expired', failed: 'failed', fallback_due: 'fallback_due'
}

function connectionOf (conn: TransactionRecord | undefined): JsonValue {
  if (conn === undefined) return null
  const d = conn.details ?? {}
  return { connectLogId: conn.id, connectedAt: conn.occurredAt.toISOString(), clientId: (d.clientId ?? null) as JsonValue, gateway: (d.gateway ?? null) as JsonValue, remoteAddress: (d.remoteAddress ?? null) as JsonValue, fingerprint: (d.fingerprint ?? null) as JsonValue }
}

/** The steps of one downlink in time order, each with where it happened (README, "Operating vgw"). */
export function traceSteps (t: MessageTraceRows): TraceStep[] {
  const steps: TraceStep[] = [{ step: 'accepted', at: t.message.createdAt, logId: null, apiKeyId: t.message.apiKeyId, campaignId: t.message.campaignId }]
  let attempt = 0
  for (const r of t.rows) {
    if (r.direction === 'up') {
      steps.push({ step: 'app_ack', at: r.occurredAt, logId: r.id, ackStatus: r.ackStatus, ackReason: r.ackReason, receivedAt: r.receivedAt.toISOString() })
    } else if (r.kind === 'MESSAGE') {
      const step: TraceStep = { step: STEP_OF[r.status] ?? r.status, at: r.occurredAt, logId: r.id }
      if (r.status === 'sent') Object.assign(step, { attempt: ++attempt, connection: connectionOf(t.connections.get(r.id)) })
      if (r.status === 'acknowledged') step.ackStatus = r.ackStatus
      steps.push(step)
    }
  }
  return steps
}

function timed (steps: TraceStep[]): Array<Record<string, JsonValue>> {
  const start = steps[0]?.at.getTime() ?? 0
  return steps.map((s, i) => {
    const previous = i === 0 ? s.at.getTime() : (steps[i - 1] as TraceStep).at.getTime()
    return { ...s, at: s.at.toISOString(), sincePreviousMs: s.at.getTime() - previous, sinceAcceptedMs: s.at.getTime() - start } as Record<string, JsonValue>
  })
}

/** An uplink's envelope as the gateway decoded it; null when it could not be decoded (a rejected row). */
function decoded (r: TransactionRecord): JsonValue {
  if (r.raw === null || r.status === 'rejected') return null
  try {
    const e = parseEnvelope(r.raw)
    return {
      messageId: e.messageId, correlationId: e.correlationId, kind: e.kind, type: e.type, createdAtMs: e.createdAtMs,
      ttlSeconds: e.ttlSeconds, attributes: e.attributes, ackStatus: e.ackStatus, ackReason: e.ackReason,
      payloadBase64: Buffer.from(e.payload).toString('base64'), payloadBytes: e.payload.byteLength
    }
  } catch {
    return null
  }
}

const idParams = { type: 'object', required: ['id'], properties: { id: { type: 'string' } } } as const

/** Message trace and one transaction with its commit (README, "Operating vgw"). */
export async function traceRoutes (app: FastifyInstance, deps: TraceRoutesDeps): Promise<void> {
  app.get<{ Params: { id: string } }>('/v1/messages/:id/trace', {
    config: { scope: 'messages:read' },
    schema: { summary: 'Every step of one downlink in order, where it happened, and the time between steps', params: idParams }
  }, async (request) => {
    const { id } = request.params
    requireMessageId(id)
    const trace = await deps.store.ops.messageTrace(id)
    if (trace === null) throw new GatewayError('GW_ERR_MESSAGE_NOT_FOUND', `no message ${id}`)
    return { id, vin: trace.message.vin, status: trace.message.status, steps: timed(traceSteps(trace)) }
  })

  app.get<{ Params: { vin: string, id: string } }>('/v1/vehicles/:vin/transactions/:id', {
    config: { scope: 'transactions:read' },
    schema: {
      summary: 'One transaction: the decoded envelope, the raw bytes, and the commit that stored it',
      params: { type: 'object', required: ['vin', 'id'], properties: { vin: { type: 'string' }, id: { type: 'string' } } }
    }
  }, async (request) => {
    const { vin, id } = request.params
    requireVin(vin)
    const found = isUuid(id) ? await deps.store.ops.transaction(vin, id) : null
    if (found === null) throw new GatewayError('GW_ERR_NOT_FOUND', `no transaction ${id.slice(0, 40)} of ${vin}`)
    const { record, commit } = found
    return { item: transactionView(record), envelope: decoded(record), commit }
  })
}
