import http from 'node:http'
import swagger from '@fastify/swagger'
import websocket from '@fastify/websocket'
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify'
import type { Logger } from 'pino'
import type { EnvelopeLimits } from '../../protocol/index.ts'
import type { EnqueueResult, NewMessage, Store } from '../../store/index.ts'
import type { ConnectionRegistry } from '../edge/connections.ts'
import type { GatewayConfig } from '../config.ts'
import type { EventHub } from '../events/event-hub.ts'
import { installErrorHandling } from './api-errors.ts'
import { bearerAuth } from './auth.ts'
import { capConnectionsPerAddress } from './connection-cap.ts'
import { SampledLog } from '../edge/sampled-log.ts'
import type { ApiKeyCache, KeyChange } from './key-cache.ts'
import { SendBatcher } from './send-batcher.ts'
import { installLoadShedding } from './load-shedding.ts'
import type { Overload } from '../overload.ts'
import type { DownlinkMessage } from '../downlink/dispatcher.ts'
import { KeyUsage } from './key-usage.ts'
import { keyRoutes } from './routes/key-routes.ts'
import { installRateLimits } from './rate-limits.ts'
import { campaignRoutes } from './routes/campaign-routes.ts'
import { feedRoutes } from './routes/feed-routes.ts'
import { answerProbe, healthRoutes, type HealthDeps } from './routes/health-routes.ts'
import { lifecycleRoutes } from './routes/lifecycle-routes.ts'
import { metricsRoutes } from './routes/metrics-routes.ts'
import { traceRoutes } from './routes/trace-routes.ts'
import { consoleRoutes } from './routes/console-routes.ts'
import { installHttpMetrics } from '../metrics/http-metrics.ts'
import type { Telemetry } from '../metrics/telemetry.ts'
import { messageRoutes } from './routes/message-routes.ts'
import { streamRoutes } from './routes/stream-routes.ts'
import { vehicleRoutes } from './routes/vehicle-routes.ts'
import { webhookRoutes } from './routes/webhook-routes.ts'

export interface HttpAppDeps extends HealthDeps {
  store: Store
  connections: ConnectionRegistry
  hub: EventHub
  logger: Logger
  now: () => number
  newId: () => string
  limits: EnvelopeLimits
  downlink: { defaultTtlSeconds: number, maxTtlSeconds: number }
  /** A send committed: the message, for the dispatcher (and, in a cluster, every gateway told). */
  /** A message waits for this vehicle: handed over whole when just committed, or only named (its row is read back). */
  notify: (vin: string, message?: DownlinkMessage) => void
  announceCampaign: (campaignId: string) => void
  /** Every live API key in memory (key-cache.ts), owned by the gateway. */
  keys: ApiKeyCache
  /** Tells every other gateway of the cluster that keys changed here (the bus). */
  announceKeys: (change: KeyChange) => void
  clustered: boolean
  /** REST bounds: rate limits, key cache, page bytes, campaign recipients, streams. */
  api: GatewayConfig['api']
  /** VGW_EVENT_PAYLOAD_MAX_BYTES: the largest envelope whose payload an opt-in event carries. */
  eventPayloadMaxBytes: number
  /** VGW_WEBHOOK_ALLOW: internal webhook destinations allowed all the same. */
  webhookAllow: readonly string[]
  /** Legal exports running at once (VGW_EXPORT_MAX_CONCURRENT). */
  exports: GatewayConfig['exports']
  /** The gateway's metrics (GET /metrics, per-route request counters). */
  telemetry: Telemetry
  /** Load shedding: requests are refused with 503 while it reports a reason (the send queue counts against it). */
  overload?: Overload
}

// Sends in one statement at most: bounds one statement's parameters (a few hundred KB at most).
const SEND_BATCH_MAX = 200

// Whatever a log line of the API carries, a key or token in it is censored (the request URL is censored where it is logged).
const REDACT = {
  paths: ['authorization', 'headers.authorization', 'req.headers.authorization', 'apiKey', 'key', 'token', '*.key', '*.token'],
  censor: '[redacted]'
}

/** The REST API and stream (README, "REST API"), built but not listening. Its OpenAPI document is served at /docs. */
export async function buildHttpApp (deps: HttpAppDeps): Promise<FastifyInstance> {
  const logger = deps.logger.child({ part: 'api' }, { redact: REDACT })
  const metrics = deps.telemetry.metrics
  const probes = {
    notReadyReason: deps.notReadyReason,
    newId: deps.newId,
    counted: (route: string, status: number) => metrics.httpRequests.inc({ route, method: 'GET', status: String(status) })
  }
  // Once closing, probes go to fastify too, which answers 503 (return503OnClosing).
  let closing = false
  const app = Fastify({
    // Fastify's own defaults for an HTTP/1 server (lib/server.js), with the probes answered first (health-routes.ts).
    serverFactory: (handler) => {
      const server = http.createServer((request, response) => { if (closing || !answerProbe(request, response, probes)) handler(request, response) })
      server.keepAliveTimeout = 72_000
      return server
    },
    loggerInstance: logger as FastifyBaseLogger,
    logController: new LogController({ disableRequestLogging: true, requestIdLogLabel: 'requestId' }),
    bodyLimit: 1024 * 1024,
    return503OnClosing: true,
    // Every request's id is a fresh UUIDv7, returned as x-request-id and logged as requestId.
    genReqId: () => deps.newId(),
    ajv: { customOptions: { removeAdditional: false, coerceTypes: true, allErrors: false } }
  })
  app.addHook('preClose', async () => { closing = true })
  app.decorateRequest('apiKey', null)
  const refusals = new SampledLog(logger)
  capConnectionsPerAddress(app.server, deps.api.maxConnectionsPerAddress, refusals)
  app.addHook('onClose', async () => { refusals.close() })
  installHttpMetrics(app, deps.telemetry.metrics)
  installErrorHandling(app, logger)
  if (deps.overload !== undefined) installLoadShedding(app, deps.overload)
  await app.register(swagger, {
    openapi: {
      info: { title: 'vgw REST API', version: '1' },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
      security: [{ bearer: [] }]
    }
  })
  await app.register(websocket, { options: { maxPayload: 64 * 1024 } })
  const limits = await installRateLimits(app, { perKey: deps.api.rateLimitPerKey, perAddress: deps.api.rateLimitPerAddress })
  const keys = deps.keys
  // "Last used" is written at most every 10 s, in one statement for every key used meanwhile.
  const usage = new KeyUsage((lastUsed) => deps.store.apiKeys.touch(lastUsed), 10_000, logger)
  app.addHook('onClose', async () => { await usage.close() })
  app.addHook('onRequest', bearerAuth({ keys, limits, usage, now: deps.now }))
  await app.register(keyRoutes, { store: deps.store, now: deps.now, changed: async (change) => {
    // Here at once (revoked ids refused, the snapshot read again), everywhere else through the bus.
    keys.revoked(change.revoked)
    deps.announceKeys(change)
    await keys.refresh().catch((err: unknown) => logger.warn({ err }, 'API keys not read after a change; the next periodic read applies it'))
  } })
  await app.register(healthRoutes, { notReadyReason: deps.notReadyReason })
  await app.register(vehicleRoutes, { store: deps.store, connections: deps.connections, now: deps.now, clustered: deps.clustered, pageMaxBytes: deps.api.pageMaxBytes })
  const messageDeps = { store: deps.store, hub: deps.hub, limits: deps.limits, ...deps.downlink, now: deps.now, newId: deps.newId }
  const sends = new SendBatcher<NewMessage, EnqueueResult | 'vehicle-not-found'>({ commit: async (ms: NewMessage[]) => await deps.store.messages.enqueueMany(ms), maxSize: SEND_BATCH_MAX, maxConcurrent: deps.api.sendConcurrency })
  deps.overload?.watchQueue(() => sends.waiting)
  await app.register(messageRoutes, { ...messageDeps, enqueue: (m) => sends.add(m), notify: deps.notify })
  await app.register(campaignRoutes, { ...messageDeps, announceCampaign: deps.announceCampaign, maxRecipients: deps.api.campaignMaxRecipients, maxBytes: deps.api.campaignMaxBytes })
  await app.register(feedRoutes, { store: deps.store, pageMaxBytes: deps.api.pageMaxBytes, payloadMaxBytes: deps.eventPayloadMaxBytes })
  await app.register(webhookRoutes, { store: deps.store, now: deps.now, newId: deps.newId, allow: deps.webhookAllow })
  await app.register(streamRoutes, { hub: deps.hub, feed: deps.store.feed, payloadMaxBytes: deps.eventPayloadMaxBytes, maxPerKey: deps.api.streamMaxPerKey, pingMs: deps.api.streamPingMs })
  await app.register(lifecycleRoutes, { store: deps.store, now: deps.now, exports: deps.exports })
  await app.register(metricsRoutes, { telemetry: deps.telemetry })
  await app.register(traceRoutes, { store: deps.store })
  await app.register(consoleRoutes)
  app.get('/docs', { schema: { hide: true } }, async () => app.swagger())
  return app
}
