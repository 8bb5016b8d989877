// The store part: owns every SQL statement and the PostgreSQL lifecycle.
import type { Logger } from 'pino'
import { ApiKeyRepository } from './api-key-repository.ts'
import { openDatabase, type Database } from './database.ts'
import { runMigrations } from './migrate.ts'
import { translateError } from './store-errors.ts'
import { TransactionLog } from './transaction-log.ts'
import { VehicleRepository } from './vehicle-repository.ts'
import { MessageRepository } from './message-repository.ts'
import { CampaignRepository } from './campaign-repository.ts'

export { startEmbeddedPostgres, runningEmbeddedUrl, type EmbeddedPostgres } from './embedded-postgres.ts'
export { SCOPES, isScope, type Scope, type ApiKeyIdentity, type CreatedApiKey, ApiKeyRepository } from './api-key-repository.ts'
export { TransactionLog, type TransactionRecord, type TransactionQuery, type TransactionPage, type Direction } from './transaction-log.ts'
export { VehicleRepository, type VehicleRow } from './vehicle-repository.ts'
export { isUnavailable } from './store-errors.ts'
export { MessageRepository, MESSAGE_STATUSES, type MessageStatus, type MessageRow, type NewMessage, type Transition, type EnqueueResult } from './message-repository.ts'
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
  migrate(): Promise<void>
  /** Resolves when the database answers; rejects with GW_ERR_STORE_UNAVAILABLE otherwise. */
  ping(): Promise<void>
  close(): Promise<void>
}

export function openStore (opts: StoreOptions): Store {
  const db: Database = openDatabase({
    url: opts.url,
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
    async migrate () {
      try {
        await runMigrations(db.pool)
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
