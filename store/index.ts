// The store part: owns every SQL statement and the PostgreSQL lifecycle.
import type { Logger } from 'pino'
import { ApiKeyRepository } from './api-key-repository.ts'
import { APP_ROLE, openDatabase, type Database } from './database.ts'
import { runMigrations } from './migrate.ts'
import { derivedAppUrl, ensureAppLogin } from './app-login.ts'
import { translateError } from './store-errors.ts'
import { TransactionLog } from './transaction-log.ts'
import { VehicleRepository } from './vehicle-repository.ts'
import { MessageRepository } from './message-repository.ts'
import { CampaignRepository } from './campaign-repository.ts'
import { LifecycleRepository } from './lifecycle-repository.ts'
import { ExportReader } from './export-reader.ts'
import { OpsRepository } from './ops-repository.ts'
import { FeedRepository } from './feed-repository.ts'
import { WebhookRepository } from './webhook-repository.ts'
import { TicketKeyRepository } from './ticket-key-repository.ts'
import { LedgerRepository } from './ledger-repository.ts'
import { LogCommitted, type CommittedLeaf } from './log-committed.ts'

export { startEmbeddedPostgres, runningEmbeddedUrl, lockDataDir, type EmbeddedPostgres } from './embedded-postgres.ts'
export { SCOPES, isScope, grants, type Scope, type ApiKeyIdentity, type CreatedApiKey, type ApiKeyInfo, type RotatedApiKey, type LiveApiKey, ApiKeyRepository, hashKey, isApiKeyShaped } from './api-key-repository.ts'
export { TransactionLog, type TransactionRecord, type TransactionQuery, type TransactionPage, type Direction } from './transaction-log.ts'
export { VehicleRepository, type VehicleRow, type ConnectRow, type DisconnectRow } from './vehicle-repository.ts'
export { MessageRepository, MESSAGE_STATUSES, type MessageStatus, type MessageRow, type NewMessage, type MessageContent, type Transition, type EnqueueResult } from './message-repository.ts'
export { actorName, type Actor } from './actor.ts'
export { LifecycleRepository, type RetentionPolicy, type LegalHold, type AuditEntry, type RetentionReport } from './lifecycle-repository.ts'
export { ExportReader } from './export-reader.ts'
export { FeedRepository, FEED_START, encodeFeedCursor, decodeFeedCursor, feedPositionOf, type FeedPosition, type FeedQuery, type FeedPage, type FeedItem } from './feed-repository.ts'
export { WebhookRepository, type Webhook, type WebhookBatch, type LeasedWebhook, type NewWebhook, type WebhookFailure } from './webhook-repository.ts'
export { CampaignRepository, type NewCampaign, type CreatedCampaign, type CampaignReport } from './campaign-repository.ts'
export { TicketKeyRepository, TICKET_SECRET_BYTES } from './ticket-key-repository.ts'
export { LedgerRepository, type LedgerBatch, type LedgerBatchRow, type LedgerBlock } from './ledger-repository.ts'
export { LogCommitted, type CommittedLeaf } from './log-committed.ts'
export { OpsRepository, type MessageTraceRows, type TransactionWithCommit } from './ops-repository.ts'

/** Connections per pool; each pool is a bulkhead (docs/architecture.md, "Bulkheads"). */
export interface StorePools {
  /** Uplink batches, status transitions, connect and disconnect rows: what PUBACK and CONNACK wait for. */
  commit: number
  /** REST reads and sends, the dispatcher's queue reads, expiry, campaigns, holds and policies. */
  api: number
  /** Legal exports' long cursors, one connection each. */
  export: number
}

export const DEFAULT_POOLS: StorePools = { commit: 8, api: 10, export: 2 }

export interface PoolStats {
  pool: keyof StorePools
  total: number
  idle: number
  waiting: number
}

export interface StoreOptions {
  /** The owner's URL (DATABASE_URL): migrations, retention and retention policies only. */
  url: string
  /** The pools' login, a member of vgw_app only; default: derived from `url` and set up by migrate(). */
  appUrl?: string
  /** Retention no call can go below, in days per market (`*`: every other). */
  retentionFloors?: Record<string, number>
  newId: () => string
  logger?: Logger
  pools?: Partial<StorePools>
  statementTimeoutMs?: number
  idleInTransactionTimeoutMs?: number
}

export interface Store {
  readonly transactions: TransactionLog
  readonly vehicles: VehicleRepository
  readonly apiKeys: ApiKeyRepository
  readonly messages: MessageRepository
  readonly campaigns: CampaignRepository
  readonly lifecycle: LifecycleRepository
  readonly exports: ExportReader
  /** The durable feed (README, "Integrating a backend"). */
  readonly feed: FeedRepository
  /** Webhooks and their delivery state, on the API pool. */
  readonly webhooks: WebhookRepository
  /** Operators' reads: the undelivered gauge, message and transaction traces. */
  readonly ops: OpsRepository
  /** TLS session ticket secrets shared by a cluster, on the API pool (never on CONNACK's path). */
  readonly ticketKeys: TicketKeyRepository
  /** The write-time ledger's batches, epochs and checkpoints (migration 0015). */
  readonly ledger: LedgerRepository
  /** Called with every committed log row's leaf, all of one transaction together (the ledger listens). */
  onLogCommitted(listener: (rows: readonly CommittedLeaf[]) => void): () => void
  /** The role the pool's connections work as (the app role after migration 0005). */
  currentRole(): Promise<string>
  migrate(): Promise<void>
  /** Resolves when the database answers (on the API pool; the commit path has its own stall watch); rejects with GW_ERR_STORE_UNAVAILABLE otherwise. */
  ping(): Promise<void>
  /** Connections in use and waiting, per pool. */
  poolStats(): PoolStats[]
  close(): Promise<void>
}

export function openStore (opts: StoreOptions): Store {
  const sizes: StorePools = { ...DEFAULT_POOLS, ...opts.pools }
  const appUrl = opts.appUrl ?? derivedAppUrl(opts.url)
  const open = (name: keyof StorePools, extra: { statementTimeoutMs?: number } = {}): Database => openDatabase({
    url: appUrl,
    name,
    role: APP_ROLE,
    maxConnections: sizes[name],
    ...(opts.logger !== undefined ? { logger: opts.logger } : {}),
    ...(opts.statementTimeoutMs !== undefined ? { statementTimeoutMs: opts.statementTimeoutMs } : {}),
    ...(opts.idleInTransactionTimeoutMs !== undefined ? { idleInTransactionTimeoutMs: opts.idleInTransactionTimeoutMs } : {}),
    ...extra
  })
  const commit = open('commit')
  const db = open('api')
  const exportDb = open('export')
  const all = [commit, db, exportDb]
  const committed = new LogCommitted()
  return {
    onLogCommitted: (listener) => committed.on(listener),
    ledger: new LedgerRepository(commit.pool, db.pool),
    transactions: new TransactionLog(commit.pool, db.pool, committed),
    vehicles: new VehicleRepository(commit.pool, db.orm),
    apiKeys: new ApiKeyRepository(db.pool, opts.newId),
    messages: new MessageRepository(commit.pool, db.pool, committed),
    campaigns: new CampaignRepository(db.pool, committed),
    lifecycle: new LifecycleRepository(db.pool, opts.url, opts.newId, opts.retentionFloors ?? {}),
    exports: new ExportReader(exportDb.pool),
    feed: new FeedRepository(db.pool),
    webhooks: new WebhookRepository(db.pool),
    ops: new OpsRepository(db.pool),
    ticketKeys: new TicketKeyRepository(db.pool),
    async currentRole () {
      try {
        return (await db.pool.query<{ r: string }>('SELECT current_user AS r')).rows[0]?.r ?? ''
      } catch (err) {
        throw translateError(err)
      }
    },
    async migrate () {
      try {
        await runMigrations(opts.url)
        if (opts.appUrl === undefined) await ensureAppLogin(opts.url, appUrl)
      } catch (err) {
        throw translateError(err)
      }
    },
    async ping () {
      try {
        await db.pool.query('SELECT 1')
      } catch (err) {
        throw translateError(err)
      }
    },
    poolStats: () => all.map((d) => ({ pool: d.name as keyof StorePools, total: d.pool.totalCount, idle: d.pool.idleCount, waiting: d.pool.waitingCount })),
    close: async () => { await Promise.all(all.map((d) => d.close())) }
  }
}
