import fs from 'node:fs'
import type { AddressInfo } from 'node:net'
import type { FastifyInstance } from 'fastify'
import type { Logger } from 'pino'
import { v7 as uuidv7 } from 'uuid'
import type { Store, TransactionRecord } from '../store/index.ts'
import { buildHttpApp } from './api/http-app.ts'
import { CommitBatcher } from './commit-batcher.ts'
import type { GatewayConfig } from './config.ts'
import { createVehicleEdge, type VehicleEdge } from './edge/vehicle-edge.ts'

export interface GatewayDeps {
  store: Store
  logger: Logger
  /** Milliseconds since the epoch; injected so tests can move time. */
  now?: () => number
  /** Time-ordered ids (UUIDv7 by default). */
  newId?: () => string
}

export interface Gateway {
  readonly edge: VehicleEdge
  readonly http: FastifyInstance
  readonly log: CommitBatcher<TransactionRecord>
  /** Starts both listeners; resolves with the bound ports (useful with port 0). */
  listen(): Promise<{ mqttPort: number, httpPort: number }>
  /** Graceful drain: stop accepting, commit what is pending, close vehicles, stop listeners. */
  close(): Promise<void>
}

const PARTITION_MAINTENANCE_MS = 6 * 3600_000

/** Builds every part of a gateway without listening (STYLE: build, then listen). */
export async function buildGateway (config: GatewayConfig, deps: GatewayDeps): Promise<Gateway> {
  const now = deps.now ?? Date.now
  const newId = deps.newId ?? uuidv7
  const logger = deps.logger
  const ctx = { now, newId }
  const log = new CommitBatcher<TransactionRecord>({
    commit: (records) => deps.store.transactions.append(records),
    maxSize: config.batch.maxSize,
    maxDelayMs: config.batch.maxDelayMs,
    maxConcurrent: config.batch.maxConcurrent,
    logger: logger.child({ part: 'log-batcher' })
  })
  const edge = await createVehicleEdge({
    store: deps.store,
    log,
    ctx,
    logger: logger.child({ part: 'edge' }),
    limits: config.envelope,
    maxPacketBytes: config.maxPacketBytes,
    tls: {
      ca: fs.readFileSync(config.tls.ca),
      cert: fs.readFileSync(config.tls.cert),
      key: fs.readFileSync(config.tls.key),
      crl: fs.readFileSync(config.tls.crl)
    }
  })
  let closing = false
  const http = await buildHttpApp({
    store: deps.store,
    connections: edge.connections,
    logger,
    now,
    notReadyReason: async () => {
      if (closing) return 'the gateway is shutting down'
      if (!edge.server.listening) return 'the MQTT listener is not up'
      try {
        await deps.store.ping()
      } catch {
        return 'the database is not reachable'
      }
      return null
    }
  })

  // Months are made ahead so that inserts never wait on DDL; a row outside them still gets its month on demand.
  const maintainPartitions = async (): Promise<void> => {
    const t = now()
    await deps.store.transactions.ensurePartitionRange(new Date(t - config.envelope.maxAgeMs), new Date(t + 62 * 24 * 3600_000))
  }
  let maintenance: NodeJS.Timeout | null = null

  return {
    edge,
    http,
    log,
    async listen () {
      await maintainPartitions()
      maintenance = setInterval(() => {
        maintainPartitions().catch((err: unknown) => logger.warn({ err }, 'partition maintenance failed; retrying later'))
      }, PARTITION_MAINTENANCE_MS)
      maintenance.unref()
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
      const deadline = new Promise<void>((resolve) => setTimeout(resolve, Math.max(100, config.shutdownTimeoutMs / 3)).unref())
      // Commit what vehicles already sent, so that they get their PUBACKs before we close them.
      await Promise.race([log.flush(), deadline])
      await edge.close()
      await log.close()
      await http.close()
      logger.info('gateway closed')
    }
  }
}
