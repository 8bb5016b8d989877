import path from 'node:path'
import { DEV_CERT_DIR, loadConfig, startGateway, type ConfigInput } from '../gateway/index.ts'
import { createLogger } from './logger.ts'

/**
 * `vgw start` (what `npm start` runs): reads config, starts, and handles signals.
 * SIGINT/SIGTERM drain gracefully; a second signal exits at once.
 */
export async function runStart (flags: ConfigInput): Promise<void> {
  const config = loadConfig(process.env, flags)
  const logger = createLogger(config.logLevel)
  const running = await startGateway(config, logger, path.resolve(DEV_CERT_DIR))
  if (running.createdAdminKey !== null) {
    process.stdout.write(`\nAdmin API key (shown once, also written to ${path.join(config.dataDir, 'admin.key')}):\n  ${running.createdAdminKey}\n\n`)
  }
  process.stdout.write(`vgw ready: MQTT over mutual TLS on ${config.host}:${running.mqttPort}, HTTP on ${config.host}:${running.httpPort}\n`)

  let stopping = false
  const stop = (signal: NodeJS.Signals): void => {
    if (stopping) {
      logger.warn({ signal }, 'second signal: exiting without drain')
      process.exit(1)
    }
    stopping = true
    logger.info({ signal }, 'draining')
    const force = setTimeout(() => {
      logger.error({ timeoutMs: config.shutdownTimeoutMs }, 'drain took too long; exiting')
      process.exit(1)
    }, config.shutdownTimeoutMs)
    force.unref()
    running.stop().then(() => {
      logger.info('stopped')
      process.exit(0)
    }, (err: unknown) => {
      logger.error({ err }, 'error while stopping')
      process.exit(1)
    })
  }
  process.on('SIGINT', stop)
  process.on('SIGTERM', stop)
}
