import type { IncomingMessage, ServerResponse } from 'node:http'
import type { FastifyInstance } from 'fastify'
import { errorCatalogue } from '../../../protocol/index.ts'
import type { NotReady } from '../../readiness.ts'

export interface HealthDeps {
  /**
   * Null when ready, else the reason: a sentence (GW_ERR_NOT_READY) or a code and sentence. Answered
   * from memory: the database's part is a verdict a background probe refreshes (readiness.ts).
   */
  notReadyReason: () => string | NotReady | null
}

/** The status and body of a probe's answer. */
function probeAnswer (path: '/health' | '/ready', deps: HealthDeps): { status: number, body: unknown } {
  if (path === '/health') return { status: 200, body: { status: 'ok' } }
  const reason = deps.notReadyReason()
  if (reason === null) return { status: 200, body: { status: 'ready' } }
  const { code, message } = typeof reason === 'string' ? { code: 'GW_ERR_NOT_READY' as const, message: reason } : reason
  return { status: errorCatalogue[code].httpStatus, body: { error: { code, message } } }
}

export async function healthRoutes (app: FastifyInstance, deps: HealthDeps): Promise<void> {
  app.get('/health', async () => probeAnswer('/health', deps).body)
  app.get('/ready', async (_request, reply) => {
    const { status, body } = probeAnswer('/ready', deps)
    return await reply.code(status).send(body)
  })
}

export interface ProbeFastPathDeps extends HealthDeps {
  newId: () => string
  /** Counts the answer as fastify's hook would (vgw_http_requests_total). */
  counted: (route: string, status: number) => void
}

/**
 * `GET /health` and `GET /ready` answered before the framework's routing and hooks: a balancer's
 * probe, never limited and never shed, costs a few microseconds, so a flood of them without any
 * key (issue #20) puts as little work as possible in front of real requests. Same answers, same
 * x-request-id header as the routes above (which serve `inject`). Returns false for any other request.
 */
export function answerProbe (request: IncomingMessage, response: ServerResponse, deps: ProbeFastPathDeps): boolean {
  if (request.method !== 'GET' || (request.url !== '/health' && request.url !== '/ready')) return false
  const { status, body } = probeAnswer(request.url, deps)
  const text = JSON.stringify(body)
  response.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text), 'x-request-id': deps.newId() })
  response.end(text)
  deps.counted(request.url, status)
  return true
}
