import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import type { AddressInfo } from 'node:net'
import type { FastifyInstance } from 'fastify'
import type { Logger } from 'pino'
import { newUuidV7 } from '../protocol/index.ts'
import type { Store, TransactionRecord, Transition } from '../store/index.ts'
import { buildHttpApp } from './api/http-app.ts'
import { ApiKeyCache } from './api/key-cache.ts'
import { CommitBatcher } from './commit-batcher.ts'
import type { GatewayConfig } from './config.ts'
import { Dispatcher } from './downlink/dispatcher.ts'
import { ExpiryJob } from './downlink/expiry-job.ts'
import { createVehicleEdge, type VehicleEdge } from './edge/vehicle-edge.ts'
import type { EventHub, StreamEvent } from './events/event-hub.ts'
import { RetentionJob } from './lifecycle/retention-job.ts'
import { MeteredEventHub, Telemetry } from './metrics/telemetry.ts'
import { Overload } from './overload.ts'
import { commitStallReason, ReadinessProbe } from './readiness.ts'
import { WebhookDelivery } from './webhooks/webhook-delivery.ts'
import { Ledger } from './ledger/ledger.ts'
import { loadCheckpointSigner } from './ledger/checkpoint-signer.ts'

export interface GatewayDeps {
  store: Store
  logger: Logger
  /** Milliseconds since the epoch; injected so tests can move time. */
  now?: () => number
  /** Time-ordered ids (UUIDv7 by default). */
  newId?: () => string
  /** Replaces the event-loop delay sampler of load shedding (tests press the gateway with it). */
  eventLoopDelayMs?: () => number
}

export interface Gateway {
  readonly edge: VehicleEdge
  readonly http: FastifyInstance
  readonly log: CommitBatcher<TransactionRecord>
  readonly transitions: CommitBatcher<Transition>
  readonly dispatcher: Dispatcher
  readonly hub: EventHub
  readonly expiry: ExpiryJob
  /** The write-time ledger: every committed log row's leaf, chained and checkpointed (docs/legal-export.md). */
  readonly ledger: Ledger
  readonly telemetry: Telemetry
  /** The database half of /ready, probed once a second in the background (readiness.ts). */
  readonly readiness: ReadinessProbe
  /** Starts both listeners; resolves with the bound ports (useful with port 0). */
  listen(): Promise<{ mqttPort: number, httpPort: number }>
  /** Graceful drain: stop accepting, commit what is pending, close vehicles, stop listeners. */
  close(): Promise<void>
}

const PARTITION_MAINTENANCE_MS = 6 * 3600_000
const HTTP_CLOSE_GRACE_MS = 2000

/** Builds every part of a gateway without listening (STYLE: build, then listen). */
export async function buildGateway (config: GatewayConfig, deps: GatewayDeps): Promise<Gateway> {
  const now = deps.now ?? Date.now
  const newId = deps.newId ?? newUuidV7
  const logger = deps.logger
  const ctx = { now, newId }
  const telemetry = new Telemetry()
  const hub: EventHub = new MeteredEventHub({ events: config.streamRetain, bytes: config.streamRetainBytes, payloadMaxBytes: config.eventPayloadMaxBytes }, now, telemetry.metrics)
  // Committed rows, and only those, become stream events.
  const log = new CommitBatcher<TransactionRecord>({
    commit: telemetry.meteredCommit('log', async (records: TransactionRecord[]) => hub.publishRecords(await telemetry.appendCounted(deps.store, records))),
    maxSize: config.batch.maxSize,
    maxDelayMs: config.batch.maxDelayMs,
    maxConcurrent: config.batch.maxConcurrent,
    logger: logger.child({ part: 'log-batcher' }),
    // Raw envelope bytes dominate a row's memory; the rest is counted as a flat 512.
    sizeOf: (r) => 512 + (r.raw?.byteLength ?? 0)
  })
  // One batch at a time: a message's transitions must commit in the order they happened.
  const transitions = new CommitBatcher<Transition>({
    commit: telemetry.meteredCommit('status', async (items: Transition[]) => hub.publishRecords(await deps.store.messages.applyTransitions(items))),
    maxSize: config.batch.maxSize,
    maxDelayMs: config.batch.maxDelayMs,
    maxConcurrent: 1,
    logger: logger.child({ part: 'status-batcher' })
  })
  // Load shedding (overload.ts): the API pool's queue (and the send queue, http-app.ts) and the event loop.
  const overload = new Overload(config.overload, deps.eventLoopDelayMs !== undefined ? { loopDelayMs: deps.eventLoopDelayMs } : {})
  overload.watchQueue(() => deps.store.poolStats().find((p) => p.pool === 'api')?.waiting ?? 0)
  // Every live API key in memory (key-cache.ts); other gateways' key changes arrive on the bus.
  const keys = new ApiKeyCache(deps.store.apiKeys, config.api.keyCacheMs, { now, logger: logger.child({ part: 'api-keys' }) })
  // The edge reports to the dispatcher, and the dispatcher publishes through the edge.
  let dispatcher: Dispatcher | null = null
  const edge = await createVehicleEdge({
    observer: {
      connected: (vin, client) => dispatcher?.connected(vin, client),
      disconnected: (vin, client) => dispatcher?.disconnected(vin, client),
      subscribed: (vin, client) => dispatcher?.subscribed(vin, client),
      acknowledged: (vin, client, messageId) => dispatcher?.acknowledged(vin, client, messageId),
      downlinkWaiting: (vin) => dispatcher?.notify(vin),
      campaignQueued: (campaignId) => {
        // Only the campaign's vehicles connected here matter to this gateway: one query finds them.
        const here = edge.connections.clients().map((c) => c.id)
        if (here.length === 0) return
        deps.store.campaigns.vinsAmong(campaignId, here).then(
          (vins) => { for (const vin of vins) dispatcher?.notify(vin) },
          (err: unknown) => logger.warn({ err, campaignId }, 'campaign dispatch deferred to the next connection'))
      },
      events: (bodies) => hub.deliver(bodies as Array<Omit<StreamEvent, 'seq'>>),
      keysChanged: (change) => {
        keys.revoked(change.revoked)
        keys.refresh().catch((err: unknown) => logger.warn({ err }, 'API keys not read after a change elsewhere; the next periodic read applies it'))
      }
    },
    acknowledge: (vin, ack) => transitions.add({
      messageId: ack.correlationId, vin, status: 'acknowledged', ackStatus: ack.ackStatus, at: new Date(now()), logId: newId()
    }),
    store: deps.store,
    log,
    ctx,
    logger: logger.child({ part: 'edge' }),
    limits: config.envelope,
    maxPacketBytes: config.maxPacketBytes,
    maxTopicLevels: config.maxTopicLevels,
    maxPendingRecords: config.maxPendingRecords,
    maxPendingBytes: config.maxPendingBytes,
    vehicle: config.vehicle,
    edge: config.edge,
    ...(config.redisUrl !== undefined ? { redisUrl: config.redisUrl } : {}),
    crlPath: config.tls.crl,
    overloaded: () => overload.reason() !== null,
    ...(config.tlsSessions !== undefined ? { tlsSessions: config.tlsSessions } : {}),
    ...(config.clusterSecret !== undefined ? { clusterSecret: config.clusterSecret } : {}),
    tls: {
      ca: fs.readFileSync(config.tls.ca),
      cert: fs.readFileSync(config.tls.cert),
      key: fs.readFileSync(config.tls.key),
      crl: fs.readFileSync(config.tls.crl)
    }
  })
  // In cluster mode every gateway's stream carries every gateway's events.
  telemetry.attachEdge(edge, deps.store)
  if (config.redisUrl !== undefined) hub.useBroadcast((bodies) => edge.broadcastEvents(bodies))
  const dispatch = new Dispatcher({
    store: deps.store, transitions, publishToVehicle: edge.publishToVehicle, now, newId, logger: logger.child({ part: 'dispatcher' }), window: config.downlink.window
  })
  dispatcher = dispatch
  const retention = new RetentionJob(deps.store, config.retentionIntervalMs, now, logger.child({ part: 'retention' }))
  const expiry = new ExpiryJob({ store: deps.store, hub, now, intervalMs: config.downlink.expiryIntervalMs, logger: logger.child({ part: 'expiry' }) })
  const webhooks = new WebhookDelivery({ store: deps.store, settings: config.webhooks, payloadMaxBytes: config.eventPayloadMaxBytes, now, newId, logger: logger.child({ part: 'webhooks' }) })
  // Committed events wake caught-up webhooks, so that delivery does not wait for the next poll.
  hub.subscribe({}, () => webhooks.wake())
  let closing = false
  // /ready's one database round trip, made by this probe once a second, never by a request.
  const readiness = new ReadinessProbe({ check: async () => { await deps.store.ping(); return null } })
  const http = await buildHttpApp({
    store: deps.store,
    connections: edge.connections,
    hub,
    logger,
    now,
    newId,
    limits: config.envelope,
    downlink: config.downlink,
    notify: (vin, message) => {
      // Straight to this gateway's dispatcher (no query when the vehicle has nothing else waiting);
      // in a cluster every gateway, this one too, also hears of it: the vehicle may be connected to another.
      if (message === undefined) dispatch.notify(vin)
      else dispatch.offer(vin, message)
      if (config.redisUrl !== undefined) edge.announceDownlink(vin)
    },
    announceCampaign: (campaignId) => edge.announceCampaign(campaignId),
    keys,
    announceKeys: (change) => edge.announceKeys(change),
    clustered: config.redisUrl !== undefined,
    exports: config.exports,
    webhookAllow: config.webhooks.allow,
    eventPayloadMaxBytes: config.eventPayloadMaxBytes,
    api: config.api,
    telemetry,
    overload,
    notReadyReason: () => {
      if (closing) return 'the gateway is shutting down'
      if (!edge.server.listening) return 'the MQTT listener is not up'
      const crlStale = edge.revocation.staleReason()
      if (crlStale !== null) return crlStale
      const stalled = commitStallReason({ 'transaction log': log, 'message status': transitions }, config.commitStallMs)
      if (stalled !== null) return stalled
      return readiness.verdict
    }
  })
  telemetry.attachGauges({
    config, store: deps.store, connections: edge.connections, batchers: { log, status: transitions }, logger,
    // /ready's own answer (bounded there), so vgw_ready never disagrees with the balancer's probe.
    notReadyReason: async () => (await http.inject({ method: 'GET', url: '/ready' })).statusCode === 200 ? null : 'not ready',
    streamClients: () => http.websocketServer.clients.size
  })

  // Months are made ahead so that inserts never wait on DDL; a row outside them still gets its month on demand.
  const maintainPartitions = async (): Promise<void> => {
    const t = now()
    await deps.store.transactions.ensurePartitionRange(new Date(t - config.envelope.maxAgeMs), new Date(t + 62 * 24 * 3600_000))
  }
  let maintenance: NodeJS.Timeout | null = null
  const ledgerSettings = config.ledger ?? {
    keyFile: path.join(config.dataDir, 'ledger', 'ledger.key'), createKey: true, checkpointDir: path.join(config.dataDir, 'ledger', 'checkpoints'), checkpointIntervalMs: 10_000
  }
  const ledger = new Ledger({
    store: deps.store,
    signer: loadCheckpointSigner(ledgerSettings.keyFile, 'vgw-ledger', ledgerSettings.createKey),
    settings: { ...ledgerSettings, flushIntervalMs: 200 },
    epoch: newId(),
    gateway: os.hostname(),
    logger: logger.child({ part: 'ledger' })
  })

  return {
    edge,
    http,
    log,
    transitions,
    dispatcher: dispatch,
    hub,
    expiry,
    telemetry,
    ledger,
    readiness,
    async listen () {
      await maintainPartitions()
      // Before any row commits: the ledger must see every one.
      await ledger.start()
      maintenance = setInterval(() => {
        maintainPartitions().catch((err: unknown) => logger.warn({ err }, 'partition maintenance failed; retrying later'))
      }, PARTITION_MAINTENANCE_MS)
      maintenance.unref()
      expiry.start()
      retention.start()
      webhooks.start()
      telemetry.start()
      overload.start()
      await readiness.start()
      await keys.start()
      await new Promise<void>((resolve, reject) => {
        edge.server.once('error', reject)
        edge.server.listen(config.mqttPort, config.host, () => {
          edge.server.off('error', reject)
          resolve()
        })
      })
      await http.listen({ port: config.httpPort, host: config.host })
      const mqttPort = (edge.server.address() as AddressInfo).port
      const httpPort = (http.server.address() as AddressInfo).port
      logger.info({ mqttPort, httpPort, host: config.host }, 'gateway listening')
      return { mqttPort, httpPort }
    },
    async close () {
      if (closing) return
      closing = true
      if (maintenance !== null) clearInterval(maintenance)
      expiry.stop()
      retention.stop()
      // POSTs in flight are aborted and their leases given back: their batches stay, for whichever gateway leases them next.
      const webhooksStopped = webhooks.stop()
      telemetry.stop()
      overload.stop()
      readiness.stop()
      keys.stop()
      // Stop accepting first (vehicles, then REST), so nothing new arrives at a draining gateway;
      // /ready already answers 503 (closing), and fastify answers 503 to requests from here on.
      edge.stopAccepting()
      const httpClosed = http.close()
      const deadline = new Promise<void>((resolve) => setTimeout(resolve, Math.max(100, config.shutdownTimeoutMs / 3)).unref())
      // Commit what vehicles already sent, so that they get their PUBACKs before we close them.
      await Promise.race([Promise.all([log.flush(), transitions.flush()]), deadline])
      await edge.close()
      await Promise.all([log.close(), transitions.close()])
      // Responses still being written (an export ending as failed) get a moment; then what is left
      // is cut: a keep-alive connection that never sends another request would otherwise hold
      // close() until its keep-alive timeout (72 s).
      const cut = setTimeout(() => http.server.closeAllConnections(), HTTP_CLOSE_GRACE_MS)
      await httpClosed
      clearTimeout(cut)
      await webhooksStopped
      // Last: every commit (vehicles, REST, expiry) is done, so its leaves are stored and signed.
      await expiry.stopped()
      await ledger.close()
      logger.info('gateway closed')
    }
  }
}
