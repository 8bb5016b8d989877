import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify'
import type { Logger } from 'pino'
import type { Store } from '../../store/index.ts'
import type { ConnectionRegistry } from '../edge/connections.ts'
import { installErrorHandling } from './api-errors.ts'
import { bearerAuth } from './auth.ts'
import { healthRoutes, type HealthDeps } from './routes/health-routes.ts'
import { vehicleRoutes } from './routes/vehicle-routes.ts'

export interface HttpAppDeps extends HealthDeps {
  store: Store
  connections: ConnectionRegistry
  logger: Logger
  now: () => number
}

/** The REST API (DESIGN §5), built but not listening. */
export async function buildHttpApp (deps: HttpAppDeps): Promise<FastifyInstance> {
  const app = Fastify({
    loggerInstance: deps.logger.child({ part: 'api' }) as FastifyBaseLogger,
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: 1024 * 1024,
    return503OnClosing: true,
    ajv: { customOptions: { removeAdditional: false, coerceTypes: true, allErrors: false } }
  })
  app.decorateRequest('apiKey', null)
  installErrorHandling(app, deps.logger)
  app.addHook('onRequest', bearerAuth(deps.store))
  await app.register(healthRoutes, { notReadyReason: deps.notReadyReason })
  await app.register(vehicleRoutes, { store: deps.store, connections: deps.connections, now: deps.now })
  return app
}
