import cluster, { type Worker } from 'node:cluster'
import path from 'node:path'
import type { Logger } from 'pino'
import { GatewayError } from '../protocol/index.ts'
import { DEV_CERT_DIR, loadConfig, prepareDeployment, startGateway, startGatewayProcess, type ConfigInput, type GatewayConfig } from '../gateway/index.ts'
import { createLogger } from './logger.ts'

/** How long a last log line may take to leave before the process exits anyway. */
const FLUSH_BOUND_MS = 500

/**
 * Flushes pino (it writes asynchronously, and the last lines, `stopped`, would be lost),
 * then exits; at most once, and within FLUSH_BOUND_MS even when stdout is stuck.
 */
function exiter (logger: Logger): (code: number) => void {
  let exiting = false
  return (code) => {
    if (exiting) return
    exiting = true
    setTimeout(() => process.exit(code), FLUSH_BOUND_MS).unref()
    logger.flush(() => process.exit(code))
  }
}

interface SignalPlan {
  /** The graceful shutdown; runs once. */
  stop: () => Promise<void>
  /** A second signal exits at once (after `beforeExit`); false: it is ignored. */
  secondSignalExits: boolean
  /** Runs on the second signal just before the exit, synchronously. */
  beforeExit?: () => void
}

/**
 * SIGINT/SIGTERM run `stop` once, bounded by the shutdown timeout. A second signal exits
 * at once and never starts the shutdown again (README, "When things fail"). A worker
 * ignores the second: Ctrl-C reaches it from the terminal and again from its primary.
 */
function onSignals (logger: Logger, timeoutMs: number, plan: SignalPlan): void {
  const exit = exiter(logger)
  let stopping = false
  const handle = (signal: NodeJS.Signals): void => {
    if (stopping) {
      if (!plan.secondSignalExits) return
      logger.warn({ signal }, 'second signal: exiting without drain')
      plan.beforeExit?.()
      exit(1)
      return
    }
    stopping = true
    logger.info({ signal }, 'draining')
    setTimeout(() => {
      logger.error({ timeoutMs }, 'drain took too long; exiting')
      process.exit(1) // no flush: it could wait on a stuck stdout, which this bound is here to cut
    }, timeoutMs).unref()
    plan.stop().then(() => {
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

/** SIGHUP re-reads the CRL file now (it is also watched); a primary passes it to its gateway processes. */
function onHangup (logger: Logger, reload: () => Promise<unknown>): void {
  process.on('SIGHUP', () => {
    logger.info('SIGHUP: reloading the revocation list')
    reload().catch((err: unknown) => logger.error({ err }, 'revocation list reload failed'))
  })
}

/**
 * The first start's admin key is in `admin.key` (mode 0600). It is printed only to a terminal:
 * stdout under a process manager or in a container is a log pipeline, which must never hold a secret.
 */
function printAdminKey (config: GatewayConfig, key: string | null): void {
  if (key === null) return
  const file = path.join(config.dataDir, 'admin.key')
  if (process.stdout.isTTY) process.stdout.write(`\nAdmin API key (shown once, also written to ${file}):\n  ${key}\n\n`)
  else process.stdout.write(`admin key created in ${file} (mode 0600); not printed: stdout is not a terminal\n`)
}

/** Time the primary allows, past the workers' own drain bound, to stop the database after them. */
const DATABASE_STOP_MARGIN_MS = 5000

function liveWorkers (): Worker[] {
  return Object.values(cluster.workers ?? {}).filter((w): w is Worker => w !== undefined && !w.isDead())
}

/** SIGTERM to every gateway process; resolves once each has exited. */
async function drainWorkers (): Promise<void> {
  await Promise.all(liveWorkers().map((w) => new Promise<void>((resolve) => {
    w.once('exit', () => resolve())
    w.process.kill('SIGTERM')
  })))
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
  onHangup(logger, async () => { for (const w of liveWorkers()) w.process.kill('SIGHUP') })
  onSignals(logger, config.shutdownTimeoutMs + DATABASE_STOP_MARGIN_MS, {
    secondSignalExits: true,
    // The database stops only after every gateway process has exited: never under one still draining.
    async stop () {
      stopping = true
      await drainWorkers()
      logger.info('gateway processes stopped; stopping the database')
      await prepared.stop()
    },
    // Out at once: no gateway process may go on without its primary. The embedded database is
    // left running and stopped by the next start, as after a SIGKILL.
    beforeExit () {
      stopping = true
      for (const w of liveWorkers()) w.process.kill('SIGKILL')
    }
  })
}

async function runWorker (config: GatewayConfig, logger: Logger): Promise<void> {
  if (config.databaseUrl === undefined) throw new Error('a gateway worker needs DATABASE_URL from its primary')
  const running = await startGatewayProcess(config, logger, config.databaseUrl)
  process.send?.({ type: 'listening', mqttPort: running.mqttPort, httpPort: running.httpPort })
  onHangup(logger, () => running.gateway.edge.revocation.reload('signal'))
  onSignals(logger, config.shutdownTimeoutMs, {
    secondSignalExits: false,
    async stop () {
      await running.gateway.close()
      await running.store.close()
    }
  })
}

/**
 * The dev PKI's CA key sits beside the gateway: anyone who reads it can mint vehicles. It is
 * used only when asked for (`npm start` asks); a production start must name its own TLS files.
 */
function requireTlsChoice (config: GatewayConfig, devPki: boolean): void {
  if (config.devCerts && !devPki) {
    throw new GatewayError('GW_ERR_CONFIG_INVALID', 'no TLS files configured: set VGW_TLS_CA, VGW_TLS_CERT, VGW_TLS_KEY and VGW_TLS_CRL (or their flags), ' +
      'or pass --dev-pki to create and use the development PKI under certs/dev (development and tests only: its CA key sits beside the gateway)')
  }
}

/** `vgw start` (what `npm start` runs): reads config, starts, and handles signals. */
export async function runStart (flags: ConfigInput, opts: { devPki?: boolean } = {}): Promise<void> {
  const config = loadConfig(process.env, flags)
  requireTlsChoice(config, opts.devPki === true)
  const logger = createLogger(config.logLevel)
  if (config.workers > 1) {
    await (cluster.isPrimary ? runPrimary(config, logger) : runWorker(config, logger))
    return
  }
  const running = await startGateway(config, logger, path.resolve(DEV_CERT_DIR))
  printAdminKey(config, running.createdAdminKey)
  process.stdout.write(`vgw ready: MQTT over mutual TLS on ${config.host}:${running.mqttPort}, HTTP on ${config.host}:${running.httpPort}\n`)
  onHangup(logger, () => running.gateway.edge.revocation.reload('signal'))
  onSignals(logger, config.shutdownTimeoutMs, { secondSignalExits: true, stop: () => running.stop() })
}
