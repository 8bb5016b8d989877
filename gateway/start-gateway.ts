import fs from 'node:fs'
import path from 'node:path'
import type { Logger } from 'pino'
import { v7 as uuidv7 } from 'uuid'
import { initDevPki } from '../certs/index.ts'
import { GatewayError } from '../protocol/index.ts'
import { lockDataDir, openStore, startEmbeddedPostgres, type EmbeddedPostgres, type Store } from '../store/index.ts'
import { buildGateway, type Gateway } from './build-gateway.ts'
import type { GatewayConfig } from './config.ts'

export interface RunningGateway {
  gateway: Gateway
  mqttPort: number
  httpPort: number
  /** The admin key when this start created it (first start), else null. */
  createdAdminKey: string | null
  stop(): Promise<void>
}

function requireFiles (config: GatewayConfig): void {
  const names = { ca: 'VGW_TLS_CA', cert: 'VGW_TLS_CERT', key: 'VGW_TLS_KEY', crl: 'VGW_TLS_CRL' } as const
  for (const [k, env] of Object.entries(names) as Array<[keyof typeof names, string]>) {
    if (!fs.existsSync(config.tls[k])) throw new GatewayError('GW_ERR_CONFIG_INVALID', `${env}: no file at ${config.tls[k]}`)
  }
}

/**
 * What `vgw start` does before listening: dev certificates when the defaults are in
 * use, the database (embedded unless DATABASE_URL), migrations, the first admin key.
 * Anything started is stopped again if a later step fails.
 */
export async function startGateway (config: GatewayConfig, logger: Logger, certDir: string): Promise<RunningGateway> {
  const cleanups: Array<() => Promise<void> | void> = []
  const undo = async (): Promise<void> => {
    for (const c of cleanups.reverse()) {
      try {
        await c()
      } catch (err) {
        logger.error({ err }, 'clean-up step failed')
      }
    }
    cleanups.length = 0
  }
  try {
    if (config.devCerts) {
      const { created } = await initDevPki(certDir)
      if (created.length > 0) logger.info({ created }, 'dev certificates created')
    }
    requireFiles(config)

    let url = config.databaseUrl
    if (url === undefined) {
      cleanups.push(lockDataDir(config.dataDir))
      const embedded: EmbeddedPostgres = await startEmbeddedPostgres({ dataDir: config.dataDir, logger })
      cleanups.push(() => embedded.stop())
      url = embedded.url
    }
    const store: Store = openStore({ url, newId: uuidv7, logger, maxConnections: config.database.poolSize, statementTimeoutMs: config.database.statementTimeoutMs })
    cleanups.push(() => store.close())
    await store.migrate()

    let createdAdminKey: string | null = null
    if (await store.apiKeys.count() === 0) {
      const admin = await store.apiKeys.create('admin', ['admin'])
      createdAdminKey = admin.key
      fs.mkdirSync(config.dataDir, { recursive: true })
      fs.writeFileSync(path.join(config.dataDir, 'admin.key'), admin.key + '\n', { mode: 0o600 })
    }

    const gateway = await buildGateway(config, { store, logger })
    cleanups.push(() => gateway.close())
    const ports = await gateway.listen()
    return { gateway, ...ports, createdAdminKey, stop: undo }
  } catch (err) {
    await undo()
    throw err
  }
}
