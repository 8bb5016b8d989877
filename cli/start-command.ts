import cluster from 'node:cluster'
import path from 'node:path'
import type { Logger } from 'pino'
import { DEV_CERT_DIR, loadConfig, prepareDeployment, startGateway, startGatewayProcess, type ConfigInput, type GatewayConfig } from '../gateway/index.ts'
import { createLogger } from './logger.ts'

/**
 * SIGINT/SIGTERM run `stop` once, bounded by the shutdown timeout; a second signal exits
 * at once. A worker ignores the second: Ctrl-C reaches it from the terminal and again from its primary.
 */
function onSignals (logger: Logger, timeoutMs: number, stop: () => Promise<void>, secondSignalExits = true): void {
  // pino writes asynchronously: flush before exiting, or the last lines (`stopped`) can be lost.
  const exit = (code: number): void => logger.flush(() => process.exit(code))
  let stopping = false
  const handle = (signal: NodeJS.Signals): void => {
    if (stopping && !secondSignalExits) return
    if (stopping) {
      logger.warn({ signal }, 'second signal: exiting without drain')
      exit(1)
    }
    stopping = true
    logger.info({ signal }, 'draining')
    setTimeout(() => {
      logger.error({ timeoutMs }, 'drain took too long; exiting')
      process.exit(1) // no flush: it could wait on a stuck stdout, which this bound is here to cut
    }, timeoutMs).unref()
    stop().then(() => {
      logger.info('stopped')
      exit(0)
    }, (err: unknown) => {
      logger.error({ err }, 'error while stopping')
      exit(1)
    })
  }
  process.on('SIGINT', handle)
  process.on('SIGTERM', handle)
}

function printAdminKey (config: GatewayConfig, key: string | null): void {
  if (key !== null) process.stdout.write(`\nAdmin API key (shown once, also written to ${path.join(config.dataDir, 'admin.key')}):\n  ${key}\n\n`)
}

/**
 * `--workers N`: this process prepares the deployment (database, migrations, key) and
 * runs N gateway processes that share the listening ports (cluster module) and one fleet
 * (Redis). A worker that dies is replaced; a signal drains them all, then the database stops.
 */
async function runPrimary (config: GatewayConfig, logger: Logger): Promise<void> {
  const prepared = await prepareDeployment(config, logger, path.resolve(DEV_CERT_DIR))
  printAdminKey(config, prepared.createdAdminKey)
  let stopping = false
  let listening = 0
  const fork = (): void => {
    const worker = cluster.fork({ ...process.env, DATABASE_URL: prepared.databaseUrl })
    worker.on('message', (m: { type?: string, mqttPort?: number, httpPort?: number }) => {
      if (m.type === 'listening' && ++listening === config.workers) {
        process.stdout.write(`vgw ready: ${config.workers} gateway processes, MQTT over mutual TLS on ${config.host}:${m.mqttPort ?? '?'}, HTTP on ${config.host}:${m.httpPort ?? '?'}\n`)
      }
    })
    worker.on('exit', (code, signal) => {
      if (stopping) return
      logger.error({ pid: worker.process.pid, code, signal }, 'gateway process died; starting another')
      fork()
    })
  }
  for (let i = 0; i < config.workers; i++) fork()
  onSignals(logger, config.shutdownTimeoutMs, async () => {
    stopping = true
    const workers = Object.values(cluster.workers ?? {}).filter((w) => w !== undefined)
    await Promise.all(workers.map((w) => new Promise<void>((resolve) => {
      if (w.isDead()) return resolve()
      w.once('exit', () => resolve())
      w.process.kill('SIGTERM')
    })))
    await prepared.stop()
  })
}

async function runWorker (config: GatewayConfig, logger: Logger): Promise<void> {
  if (config.databaseUrl === undefined) throw new Error('a gateway worker needs DATABASE_URL from its primary')
  const running = await startGatewayProcess(config, logger, config.databaseUrl)
  process.send?.({ type: 'listening', mqttPort: running.mqttPort, httpPort: running.httpPort })
  onSignals(logger, config.shutdownTimeoutMs, async () => {
    await running.gateway.close()
    await running.store.close()
  }, false)
}

/** `vgw start` (what `npm start` runs): reads config, starts, and handles signals. */
export async function runStart (flags: ConfigInput): Promise<void> {
  const config = loadConfig(process.env, flags)
  const logger = createLogger(config.logLevel)
  if (config.workers > 1) {
    await (cluster.isPrimary ? runPrimary(config, logger) : runWorker(config, logger))
    return
  }
  const running = await startGateway(config, logger, path.resolve(DEV_CERT_DIR))
  printAdminKey(config, running.createdAdminKey)
  process.stdout.write(`vgw ready: MQTT over mutual TLS on ${config.host}:${running.mqttPort}, HTTP on ${config.host}:${running.httpPort}\n`)
  onSignals(logger, config.shutdownTimeoutMs, () => running.stop())
}
