import { newUuidV7 } from '../protocol/index.ts'
import { openStore, runningEmbeddedUrl, startEmbeddedPostgres, type Store } from '../store/index.ts'
import type { GatewayConfig } from '../gateway/index.ts'

/**
 * Runs a CLI command against the gateway's database: DATABASE_URL when set, else the
 * embedded PostgreSQL of a running gateway, else the embedded one started for this
 * command alone and stopped afterwards.
 */
export async function withStore<T> (config: GatewayConfig, fn: (store: Store) => Promise<T>): Promise<T> {
  let url = config.databaseUrl ?? runningEmbeddedUrl(config.dataDir)
  let stopEmbedded: (() => Promise<void>) | null = null
  if (url === null) {
    const embedded = await startEmbeddedPostgres({ dataDir: config.dataDir })
    url = embedded.url
    stopEmbedded = () => embedded.stop()
  }
  const store = openStore({
    url,
    newId: newUuidV7,
    retentionFloors: config.retentionFloors,
    ...(config.appDatabaseUrl !== undefined ? { appUrl: config.appDatabaseUrl } : {})
  })
  try {
    await store.migrate()
    return await fn(store)
  } finally {
    await store.close()
    if (stopEmbedded !== null) await stopEmbedded()
  }
}
