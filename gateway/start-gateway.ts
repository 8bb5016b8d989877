import fs from 'node:fs'
import path from 'node:path'
import type { Logger } from 'pino'
import { initDevPki } from '../certs/index.ts'
import { GatewayError, newUuidV7 } from '../protocol/index.ts'
import { lockDataDir, openStore, startEmbeddedPostgres, type EmbeddedPostgres, type Store, type StoreOptions } from '../store/index.ts'
import { buildGateway, type Gateway } from './build-gateway.ts'
import type { GatewayConfig } from './config.ts'

export interface RunningGateway {
  gateway: Gateway
  mqttPort: number
  httpPort: number
  /** The admin key when this start created it (first start), else null. */
  createdAdminKey: string | null
  /** Drains the gateway, closes the store, then stops the database; a second call waits on the first. */
  stop(): Promise<void>
}

export interface PreparedDeployment {
  /** The database every gateway process uses. */
  databaseUrl: string
  createdAdminKey: string | null
  /** Stops what prepare started (the embedded database, the data-dir lock). */
  stop(): Promise<void>
}

function requireFiles (config: GatewayConfig): void {
  const names = { ca: 'VGW_TLS_CA', cert: 'VGW_TLS_CERT', key: 'VGW_TLS_KEY', crl: 'VGW_TLS_CRL' } as const
  for (const [k, env] of Object.entries(names) as Array<[keyof typeof names, string]>) {
    if (!fs.existsSync(config.tls[k])) throw new GatewayError('GW_ERR_CONFIG_INVALID', `${env}: no file at ${config.tls[k]}`)
  }
}

/** A new file only its owner can read: any old one (or a symlink in its place) is removed first, never written through. */
function writeSecretFile (file: string, content: string): void {
  fs.mkdirSync(path.dirname(file), { recursive: true })
  fs.rmSync(file, { force: true })
  fs.writeFileSync(file, content, { mode: 0o600, flag: 'wx' })
}

class Cleanups {
  readonly #steps: Array<() => Promise<void> | void> = []
  readonly logger: Logger
  // A plain field, not a parameter property: Node's type stripping runs only erasable syntax.
  constructor (logger: Logger) { this.logger = logger }
  push (step: () => Promise<void> | void): void { this.#steps.push(step) }
  async run (): Promise<void> {
    for (const step of this.#steps.splice(0).reverse()) {
      try {
        await step()
      } catch (err) {
        this.logger.error({ err }, 'clean-up step failed')
      }
    }
  }
}

/**
 * What happens once per deployment on this machine, before any gateway process listens:
 * dev certificates when the defaults are in use, the database (embedded unless
 * DATABASE_URL), migrations, the first admin key. Undone if a step fails.
 */
export async function prepareDeployment (config: GatewayConfig, logger: Logger, certDir: string): Promise<PreparedDeployment> {
  const cleanups = new Cleanups(logger)
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
    const store = openStore({ url, newId: newUuidV7, logger, ...storePoolOptions(config) })
    let createdAdminKey: string | null = null
    try {
      await store.migrate()
      if (await store.apiKeys.count() === 0) {
        const admin = await store.apiKeys.create('admin', ['admin'], 'gateway:first-start')
        createdAdminKey = admin.key
        writeSecretFile(path.join(config.dataDir, 'admin.key'), admin.key + '\n')
      }
    } finally {
      await store.close()
    }
    return { databaseUrl: url, createdAdminKey, stop: () => cleanups.run() }
  } catch (err) {
    await cleanups.run()
    throw err
  }
}

/** The store's pools and timeouts as configured (docs/architecture.md, "Bulkheads"), its login and retention floors (README, "Security"). */
export function storePoolOptions (config: GatewayConfig): Pick<StoreOptions, 'pools' | 'statementTimeoutMs' | 'idleInTransactionTimeoutMs' | 'appUrl' | 'retentionFloors'> {
  return {
    ...(config.appDatabaseUrl !== undefined ? { appUrl: config.appDatabaseUrl } : {}),
    retentionFloors: config.retentionFloors,
    pools: { commit: config.database.commitPoolSize, api: config.database.poolSize, export: config.exports.maxConcurrent },
    statementTimeoutMs: config.database.statementTimeoutMs,
    idleInTransactionTimeoutMs: config.database.idleInTransactionTimeoutMs
  }
}

/** One gateway process on a prepared deployment: build, then listen. */
export async function startGatewayProcess (config: GatewayConfig, logger: Logger, databaseUrl: string): Promise<{ gateway: Gateway, store: Store, mqttPort: number, httpPort: number }> {
  const store: Store = openStore({ url: databaseUrl, newId: newUuidV7, logger, ...storePoolOptions(config) })
  try {
    const gateway = await buildGateway(config, { store, logger })
    try {
      return { gateway, store, ...await gateway.listen() }
    } catch (err) {
      await gateway.close()
      throw err
    }
  } catch (err) {
    await store.close()
    throw err
  }
}

/** What `vgw start` does with one process: prepare, then run the gateway here. */
export async function startGateway (config: GatewayConfig, logger: Logger, certDir: string): Promise<RunningGateway> {
  const prepared = await prepareDeployment(config, logger, certDir)
  try {
    const running = await startGatewayProcess(config, logger, prepared.databaseUrl)
    // In this order, and once: the database stops only after the gateway has drained and let go of it.
    let stopped: Promise<void> | null = null
    const stopInOrder = async (): Promise<void> => {
      await running.gateway.close()
      await running.store.close()
      await prepared.stop()
    }
    return {
      gateway: running.gateway,
      mqttPort: running.mqttPort,
      httpPort: running.httpPort,
      createdAdminKey: prepared.createdAdminKey,
      stop: () => (stopped ??= stopInOrder())
    }
  } catch (err) {
    await prepared.stop()
    throw err
  }
}
