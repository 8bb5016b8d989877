import type { FastifyInstance } from 'fastify'
import { sendError } from '../api-errors.ts'

export interface HealthDeps {
  /** Null when ready, else the reason. */
  notReadyReason: () => Promise<string | null>
}

export async function healthRoutes (app: FastifyInstance, deps: HealthDeps): Promise<void> {
  app.get('/health', async () => ({ status: 'ok' }))
  app.get('/ready', async (_request, reply) => {
    const reason = await deps.notReadyReason()
    if (reason !== null) return sendError(reply, 'GW_ERR_NOT_READY', reason)
    return { status: 'ready' }
  })
}
