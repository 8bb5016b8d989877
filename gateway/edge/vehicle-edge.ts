import type { EventEmitter } from 'node:events'
import os from 'node:os'
import type tls from 'node:tls'
import type { Aedes, Client } from 'aedes'
import type { Logger } from 'pino'
import type { Envelope, EnvelopeLimits } from '../../protocol/index.ts'
import type { ConnectRow, DisconnectRow, Store, TransactionRecord } from '../../store/index.ts'
import { CommitBatcher } from '../commit-batcher.ts'
import type { GatewayConfig } from '../config.ts'
import { createBroker } from './broker-hooks.ts'
import { ClusterBus, type ClusterBusHandlers } from './cluster-bus.ts'
import { ConnectionRegistry } from './connections.ts'
import type { DeviceIdentity } from './device-identity.ts'
import { DownlinkChannel } from './downlink-channel.ts'
import { connectionEvent, type RecordContext } from './records.ts'
import { SecurityRecorder } from './security-events.ts'
import type { Revocation } from './revocation.ts'
import { SessionTickets } from './session-tickets.ts'
import { createTlsListener, type TlsMaterial } from './tls-listener.ts'
import { handleUplink } from './uplink.ts'
import { RejectedRepeats } from './rejected-repeats.ts'
import { createUplinkGate } from './uplink-gate.ts'
import { VehicleQuotas } from './vehicle-quota.ts'

export type { TlsMaterial } from './tls-listener.ts'

/** This gateway process, as connection rows and message traces name it. */
export const GATEWAY_ID = `${os.hostname()}/${process.pid}`

/** What the downlink side learns from the edge. */
export interface EdgeObserver extends ClusterBusHandlers {
  connected(vin: string, client: Client): void
  disconnected(vin: string, client: Client): void
  /** The vehicle subscribed to its own down topic. */
  subscribed(vin: string, client: Client): void
  /** The vehicle's PUBACK for a message sent with publishToVehicle. */
  acknowledged(vin: string, client: Client, messageId: string): void
}

export interface VehicleEdgeDeps {
  observer: EdgeObserver
  /** Records an ACK envelope against its downlink message; resolves when committed. */
  acknowledge: (vin: string, ack: Envelope) => Promise<void>
  store: Store
  log: CommitBatcher<TransactionRecord>
  ctx: RecordContext
  logger: Logger
  limits: EnvelopeLimits
  maxPacketBytes: number
  /** VGW_MAX_TOPIC_LEVELS (broker-hooks.ts). */
  maxTopicLevels: number
  /** Commit backlog bounds (see GatewayConfig.maxPendingRecords and maxPendingBytes). */
  maxPendingRecords: number
  maxPendingBytes: number
  vehicle: GatewayConfig['vehicle']
  edge: GatewayConfig['edge']
  /** True while the gateway sheds load: new vehicle connections get CONNACK 3 (gateway/overload.ts). */
  overloaded?: () => boolean
  /** Cluster mode (see cluster.ts); undefined: one gateway. */
  redisUrl?: string
  clusterSecret?: string
  tls: TlsMaterial
  /** The CRL file, reloaded when it changes (revocation.ts). */
  crlPath: string
  /** TLS session resumption (GatewayConfig.tlsSessions); undefined or rotationMs 0: Node's per-process ticket keys. */
  tlsSessions?: { ticketRotationMs: number, lifetimeSeconds: number }
}

export interface VehicleEdge {
  readonly server: tls.Server
  readonly broker: Aedes
  readonly connections: ConnectionRegistry
  /** Live revocation: reload on SIGHUP, readiness when a CRL is past its nextUpdate. */
  readonly revocation: Revocation
  /**
   * Sends an envelope on the vehicle's down topic at QoS 1 over its connection here.
   * Resolves false when the vehicle is not connected and subscribed here. The PUBACK
   * is reported to the observer with `messageId` (null: nobody is told).
   */
  publishToVehicle(vin: string, payload: Buffer, messageId: string | null, onPublish?: () => void): Promise<boolean>
  /** Tells every gateway of the cluster (this one included) that a downlink waits for the vehicle. */
  announceDownlink(vin: string): void
  /** Tells every gateway of the cluster that a campaign was queued. */
  announceCampaign(campaignId: string): void
  /** Sends committed stream events to every gateway of the cluster. */
  broadcastEvents(bodies: unknown[]): void
  /** Tells every other gateway of the cluster that API keys changed here (cluster-bus.ts). */
  announceKeys(change: { revoked: string[] }): void
  /** Stops accepting new vehicle connections; those open stay. */
  stopAccepting(): void
  /** Closes every vehicle connection (they reconnect elsewhere). */
  disconnectAll(): Promise<void>
  close(): Promise<void>
}

/**
 * The vehicle edge (docs/architecture.md): the TLS listener (tls-listener.ts) hands verified
 * connections to the Aedes broker (broker-hooks.ts), whose publishes pass the uplink gate
 * (uplink-gate.ts) into the commit batcher; downlinks leave through the downlink channel
 * (downlink-channel.ts); gateways talk over the cluster bus (cluster-bus.ts).
 */
export async function createVehicleEdge (deps: VehicleEdgeDeps): Promise<VehicleEdge> {
  const { log, ctx, logger } = deps
  const identities = new WeakMap<object, DeviceIdentity>()
  const connectedAt = new WeakMap<object, Date>()
  const connections = new ConnectionRegistry()
  const security = new SecurityRecorder(log, ctx, logger, deps.edge.securityEventsPerMinute)
  const downlinks = new DownlinkChannel(connections)
  const identityOf = (client: Client): DeviceIdentity | undefined => identities.get(client.conn)

  const uplinkDeps = {
    log, ctx, logger, limits: deps.limits, acknowledge: deps.acknowledge,
    // A vehicle resends within its keep-alive and reconnect back-off; 10,000 × ~150 bytes at most.
    rejectedRepeats: new RejectedRepeats({ max: 10_000, ttlMs: 15 * 60_000, now: ctx.now }),
    publishDown: async (vin: string, payload: Buffer) => { await downlinks.publish(vin, payload, null) }
  }
  const gate = createUplinkGate({
    log,
    maxPendingRecords: deps.maxPendingRecords,
    maxPendingBytes: deps.maxPendingBytes,
    quotas: new VehicleQuotas(deps.vehicle, ctx.now),
    security,
    logger,
    handle: (who, payload, packet) => handleUplink(uplinkDeps, who, payload, packet)
  })
  const rows = sessionRowBatchers(deps.store, logger)
  const broker = await createBroker({
    identityOf,
    connections,
    security,
    recordConnect: rows.connect,
    now: ctx.now,
    logger,
    acceptUplink: (_client, who, packet) => gate(who, packet),
    sessionStarted: (client, at) => connectedAt.set(client, at),
    maxTopicLevels: deps.maxTopicLevels,
    ...(deps.overloaded !== undefined ? { overloaded: deps.overloaded } : {}),
    ...(deps.redisUrl !== undefined ? { redisUrl: deps.redisUrl, clusterSecret: deps.clusterSecret ?? '' } : {})
  })
  watchSessions(broker, { identityOf, connections, downlinks, observer: deps.observer, log, ctx, logger, recordDisconnect: rows.disconnect, connectedAt })
  const bus = new ClusterBus(broker)
  await bus.start(deps.observer, deps.redisUrl !== undefined, logger)

  const tickets = await startSessionTickets(deps, (key) => setTicketKey(key))
  const { server, revocation, setTicketKey } = createTlsListener({
    tls: deps.tls,
    crlPath: deps.crlPath,
    maxPacketBytes: deps.maxPacketBytes,
    maxInflight: deps.vehicle.maxInflight,
    edge: deps.edge,
    security,
    logger,
    onVehicle: (conn, who) => {
      identities.set(conn, who)
      broker.handle(conn)
    },
    ...(tickets !== null ? { sessions: { ticketKey: tickets.key, lifetimeSeconds: deps.tlsSessions?.lifetimeSeconds ?? 7200 } } : {})
  })
  // A revocation seen here closes the vehicle's session wherever in the cluster it is.
  revocation.onRevoked = (links) => bus.announceRevoked(links)
  await bus.onRevoked((links) => revocation.revokeAnnounced(links), logger)
  await revocation.start()

  const disconnectAll = async (): Promise<void> => {
    await Promise.all(connections.clients().map((c) => new Promise<void>((resolve) => c.close(() => resolve()))))
  }
  let serverClosed: Promise<void> | null = null
  const stopAccepting = (): Promise<void> => {
    // server.close() calls back only when every connection has ended; it stops accepting at once.
    serverClosed ??= new Promise<void>((resolve) => {
      if (!server.listening) return resolve()
      server.close(() => resolve())
    })
    return serverClosed
  }

  return {
    server,
    broker,
    connections,
    revocation,
    publishToVehicle: (vin, payload, messageId, onPublish) => downlinks.publish(vin, payload, messageId, onPublish),
    announceDownlink: (vin) => bus.announceDownlink(vin),
    announceCampaign: (campaignId) => bus.announceCampaign(campaignId),
    broadcastEvents: (bodies) => bus.broadcastEvents(bodies),
    announceKeys: (change) => bus.announceKeys(change),
    stopAccepting: () => { void stopAccepting() },
    disconnectAll,
    async close () {
      const closed = stopAccepting()
      await disconnectAll()
      await closed
      security.close()
      tickets?.rotation.close()
      await new Promise<void>((resolve) => broker.close(() => resolve()))
      await rows.close()
    }
  }
}

/** Cluster-wide session ticket keys from the database, rotated on schedule; null when turned off. */
async function startSessionTickets (deps: VehicleEdgeDeps, apply: (key: Buffer) => void): Promise<{ key: Buffer, rotation: SessionTickets } | null> {
  const rotationMs = deps.tlsSessions?.ticketRotationMs ?? 0
  if (rotationMs <= 0) return null
  const rotation = new SessionTickets({
    store: deps.store.ticketKeys, serverKey: deps.tls.key, rotationMs, apply, logger: deps.logger.child({ part: 'session-tickets' })
  })
  return { key: await rotation.start(), rotation }
}

/** A batch of session rows: a batch's failure is each of its items' (no retry: CONNACK 3 says so at once). */
interface SessionRowItem<T> { row: T, error?: Error }

const SESSION_BATCH = { maxSize: 500, maxDelayMs: 2, maxConcurrent: 2 } as const

/**
 * Vehicle rows of connects and disconnects, many to a statement (store/vehicle-repository.ts):
 * under a reconnect storm one round trip serves hundreds of CONNACKs. A failed batch fails each
 * of its connects (CONNACK 3, the vehicle retries) instead of being retried behind their backs.
 */
function sessionRowBatchers (store: Store, logger: Logger): {
  connect: (row: ConnectRow) => Promise<void>
  disconnect: (row: DisconnectRow) => Promise<void>
  close: () => Promise<void>
} {
  const batcher = <T>(name: string, commit: (rows: T[]) => Promise<void>): { add: (row: T) => Promise<void>, close: () => Promise<void> } => {
    const b = new CommitBatcher<SessionRowItem<T>>({
      ...SESSION_BATCH,
      logger: logger.child({ part: name }),
      commit: async (items) => {
        try {
          await commit(items.map((i) => i.row))
        } catch (err) {
          for (const i of items) i.error = err instanceof Error ? err : new Error(String(err))
        }
      }
    })
    return {
      add: async (row) => {
        const item: SessionRowItem<T> = { row }
        await b.add(item)
        if (item.error !== undefined) throw item.error
      },
      close: () => b.close()
    }
  }
  const connects = batcher<ConnectRow>('connect-batcher', (rows) => store.vehicles.recordConnects(rows))
  const disconnects = batcher<DisconnectRow>('disconnect-batcher', (rows) => store.vehicles.recordDisconnects(rows))
  return {
    connect: connects.add,
    disconnect: disconnects.add,
    close: async () => { await Promise.all([connects.close(), disconnects.close()]) }
  }
}

interface SessionDeps {
  identityOf: (client: Client) => DeviceIdentity | undefined
  connections: ConnectionRegistry
  downlinks: DownlinkChannel
  observer: EdgeObserver
  log: CommitBatcher<TransactionRecord>
  ctx: RecordContext
  logger: Logger
  recordDisconnect: (row: DisconnectRow) => Promise<void>
  connectedAt: WeakMap<object, Date>
}

/** Connection rows, the registry, and the downlink side's view of each vehicle's session. */
function watchSessions (broker: Aedes, d: SessionDeps): void {
  const { logger } = d
  broker.on('client', (client) => {
    const who = d.identityOf(client)
    if (who === undefined) return
    d.connections.add(client, who, new Date(d.ctx.now()))
    d.observer.connected(who.vin, client)
    logger.info({ vin: who.vin, remoteAddress: who.remoteAddress }, 'vehicle connected')
    d.log.add(connectionEvent(d.ctx, who, 'connect', { clientId: client.id, gateway: GATEWAY_ID }))
      .catch((err: unknown) => logger.error({ err, vin: who.vin }, 'connect event not recorded'))
  })
  broker.on('clientDisconnect', (client) => {
    const who = d.identityOf(client)
    if (who === undefined) return
    d.connections.remove(client, who.vin)
    d.observer.disconnected(who.vin, client)
    logger.info({ vin: who.vin }, 'vehicle disconnected')
    d.log.add(connectionEvent(d.ctx, who, 'disconnect', { clientId: client.id }))
      .catch((err: unknown) => logger.error({ err, vin: who.vin }, 'disconnect event not recorded'))
    d.recordDisconnect({ vin: who.vin, at: new Date(d.ctx.now()), sessionConnectedAt: d.connectedAt.get(client) ?? new Date(0) })
      .catch((err: unknown) => logger.warn({ err, vin: who.vin }, 'disconnect time not recorded'))
  })
  broker.on('subscribe', (subscriptions, client) => {
    const who = d.identityOf(client)
    if (who !== undefined && d.downlinks.subscribed(client, who.vin, subscriptions)) d.observer.subscribed(who.vin, client)
  })
  broker.on('ack', (_packet, client) => {
    const who = d.identityOf(client)
    const messageId = d.downlinks.acknowledged(client)
    if (who !== undefined && messageId !== undefined && messageId !== null) d.observer.acknowledged(who.vin, client, messageId)
  })
  broker.on('clientError', (client, err) => {
    logger.info({ vin: d.identityOf(client)?.vin, clientId: client.id, err: err.message }, 'vehicle connection error')
  })
  broker.on('connectionError', (client, err) => {
    logger.info({ vin: d.identityOf(client)?.vin, err: err.message }, 'connection error before CONNECT')
  })
  ;(broker as unknown as EventEmitter).on('error', (err: Error) => logger.error({ err }, 'broker error'))
}
