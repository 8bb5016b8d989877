import type { FastifyInstance } from 'fastify'
import type { NotReady } from '../../readiness.ts'
import { sendError } from '../api-errors.ts'

export interface HealthDeps {
  /** Null when ready, else the reason: a sentence (GW_ERR_NOT_READY) or a code and sentence. */
  notReadyReason: () => Promise<string | NotReady | null>
  /** /ready answers 503 when the check takes longer than this, so a balancer's probe never hangs (default 2000). */
  readyTimeoutMs?: number
}

const DEFAULT_READY_TIMEOUT_MS = 2000

/** The check, bounded: a database that does not answer makes the gateway not ready, never a hung probe. */
async function boundedReason (deps: HealthDeps): Promise<string | NotReady | null> {
  const ms = deps.readyTimeoutMs ?? DEFAULT_READY_TIMEOUT_MS
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<string>((resolve) => {
    timer = setTimeout(() => resolve(`the readiness check did not finish within ${ms} ms (the database does not answer)`), ms)
  })
  try {
    return await Promise.race([deps.notReadyReason(), timeout])
  } finally {
    clearTimeout(timer)
  }
}

export async function healthRoutes (app: FastifyInstance, deps: HealthDeps): Promise<void> {
  app.get('/health', async () => ({ status: 'ok' }))
  app.get('/ready', async (_request, reply) => {
    const reason = await boundedReason(deps)
    if (reason === null) return { status: 'ready' }
    if (typeof reason === 'string') return sendError(reply, 'GW_ERR_NOT_READY', reason)
    return sendError(reply, reason.code, reason.message)
  })
}
