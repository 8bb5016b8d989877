// The store part: owns every SQL statement and the PostgreSQL lifecycle.
import type { Logger } from 'pino'
import { ApiKeyRepository } from './api-key-repository.ts'
import { APP_ROLE, openDatabase, type Database } from './database.ts'
import { runMigrations } from './migrate.ts'
import { translateError } from './store-errors.ts'
import { TransactionLog } from './transaction-log.ts'
import { VehicleRepository } from './vehicle-repository.ts'
import { MessageRepository } from './message-repository.ts'
import { CampaignRepository } from './campaign-repository.ts'
import { LifecycleRepository } from './lifecycle-repository.ts'
import { ExportReader } from './export-reader.ts'

export { startEmbeddedPostgres, runningEmbeddedUrl, lockDataDir, type EmbeddedPostgres } from './embedded-postgres.ts'
export { SCOPES, isScope, type Scope, type ApiKeyIdentity, type CreatedApiKey, ApiKeyRepository } from './api-key-repository.ts'
export { TransactionLog, type TransactionRecord, type TransactionQuery, type TransactionPage, type Direction } from './transaction-log.ts'
export { VehicleRepository, type VehicleRow } from './vehicle-repository.ts'
export { MessageRepository, MESSAGE_STATUSES, type MessageStatus, type MessageRow, type NewMessage, type MessageContent, type Transition, type EnqueueResult } from './message-repository.ts'
export { LifecycleRepository, type RetentionPolicy, type LegalHold, type AuditEntry, type RetentionReport } from './lifecycle-repository.ts'
export { ExportReader } from './export-reader.ts'
export { CampaignRepository, type NewCampaign, type CreatedCampaign, type CampaignReport } from './campaign-repository.ts'

export interface StoreOptions {
  url: string
  newId: () => string
  logger?: Logger
  maxConnections?: number
  statementTimeoutMs?: number
}

export interface Store {
  readonly transactions: TransactionLog
  readonly vehicles: VehicleRepository
  readonly apiKeys: ApiKeyRepository
  readonly messages: MessageRepository
  readonly campaigns: CampaignRepository
  readonly lifecycle: LifecycleRepository
  readonly exports: ExportReader
  /** The role the pool's connections work as (the app role after migration 0005). */
  currentRole(): Promise<string>
  migrate(): Promise<void>
  /** Resolves when the database answers; rejects with GW_ERR_STORE_UNAVAILABLE otherwise. */
  ping(): Promise<void>
  close(): Promise<void>
}

export function openStore (opts: StoreOptions): Store {
  const db: Database = openDatabase({
    url: opts.url,
    role: APP_ROLE,
    ...(opts.logger !== undefined ? { logger: opts.logger } : {}),
    ...(opts.maxConnections !== undefined ? { maxConnections: opts.maxConnections } : {}),
    ...(opts.statementTimeoutMs !== undefined ? { statementTimeoutMs: opts.statementTimeoutMs } : {})
  })
  return {
    transactions: new TransactionLog(db.pool),
    vehicles: new VehicleRepository(db.orm),
    apiKeys: new ApiKeyRepository(db.orm, opts.newId),
    messages: new MessageRepository(db.pool),
    campaigns: new CampaignRepository(db.pool),
    lifecycle: new LifecycleRepository(db.pool, opts.url, opts.newId),
    exports: new ExportReader(db.pool),
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
    close: () => db.close()
  }
}
