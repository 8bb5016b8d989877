import fs from 'node:fs'
import { X509Crl } from '@peculiar/x509'
import type { Logger } from 'pino'
import type { LifecycleRepository, Store } from '../../store/index.ts'
import type { GatewayConfig } from '../config.ts'
import type { ConnectionRegistry } from '../edge/connections.ts'
import type { GatewayMetrics } from './gateway-metrics.ts'

/** How often the database-wide undelivered count is refreshed: a count, never one per scrape. */
const UNDELIVERED_REFRESH_MS = 15_000
const READY_TIMEOUT_MS = 1000

/** What a scrape reads of a commit batcher. */
export interface BacklogView {
  readonly pending: number
  readonly pendingBytes: number
  stalledForMs(now?: number): number
}

export interface ScrapeGaugeDeps {
  metrics: GatewayMetrics
  config: GatewayConfig
  store: Store
  connections: ConnectionRegistry
  batchers: Record<string, BacklogView>
  /** performance.now() of each batcher's last successful commit (meteredCommit keeps it). */
  lastCommit: Map<string, number>
  /** /ready's check: null when ready. */
  notReadyReason: () => Promise<unknown>
  streamClients: () => number
  logger: Logger
}

/** The CRL's dates, read once: the gateway reads the CRL at start (README, Configuration). */
function crlDates (path: string, logger: Logger): { thisUpdate: number, nextUpdate: number | null } | null {
  try {
    const crl = new X509Crl(fs.readFileSync(path, 'utf8'))
    return { thisUpdate: crl.thisUpdate.getTime(), nextUpdate: crl.nextUpdate?.getTime() ?? null }
  } catch (err) {
    logger.warn({ err, path }, 'CRL dates not readable: vgw_crl_* not exported')
    return null
  }
}

/**
 * Gauges set when Prometheus scrapes: each reads a value the gateway already holds (pool
 * counters, backlog sizes, the connection registry), so a scrape costs no database work
 * except /ready's own ping.
 */
export class ScrapeGauges {
  readonly #d: ScrapeGaugeDeps
  readonly #crl: { thisUpdate: number, nextUpdate: number | null } | null
  #timer: NodeJS.Timeout | null = null

  constructor (deps: ScrapeGaugeDeps) {
    this.#d = deps
    this.#crl = crlDates(deps.config.tls.crl, deps.logger)
    const { metrics: m, config } = deps
    m.pendingRowsLimit.set(config.maxPendingRecords)
    m.pendingBytesLimit.set(config.maxPendingBytes)
    m.stallLimit.set(config.commitStallMs / 1000)
    m.poolMax.set({ pool: 'commit' }, config.database.commitPoolSize)
    m.poolMax.set({ pool: 'api' }, config.database.poolSize)
    m.poolMax.set({ pool: 'export' }, config.exports.maxConcurrent)
  }

  /** Refreshes the undelivered count now and every 15 s (unref'd). */
  start (): void {
    const refresh = (): void => {
      this.#d.store.ops.countUndelivered().then(
        (n) => this.#d.metrics.undelivered.set(n),
        (err: unknown) => this.#d.logger.debug({ err }, 'undelivered count not refreshed'))
    }
    refresh()
    this.#timer ??= setInterval(refresh, UNDELIVERED_REFRESH_MS)
    this.#timer.unref()
  }

  stop (): void {
    if (this.#timer !== null) clearInterval(this.#timer)
    this.#timer = null
  }

  async sample (): Promise<void> {
    const { metrics: m } = this.#d
    this.#sampleConnections()
    const now = performance.now()
    for (const [name, b] of Object.entries(this.#d.batchers)) {
      m.pendingRows.set({ batcher: name }, b.pending)
      m.pendingBytes.set({ batcher: name }, b.pendingBytes)
      m.stalled.set({ batcher: name }, b.stalledForMs(now) / 1000)
      const last = this.#d.lastCommit.get(name)
      if (last !== undefined) m.lastCommitAge.set({ batcher: name }, (now - last) / 1000)
    }
    for (const p of this.#d.store.poolStats()) {
      m.poolTotal.set({ pool: p.pool }, p.total)
      m.poolIdle.set({ pool: p.pool }, p.idle)
      m.poolWaiting.set({ pool: p.pool }, p.waiting)
    }
    if (this.#crl !== null) {
      m.crlAge.set((Date.now() - this.#crl.thisUpdate) / 1000)
      if (this.#crl.nextUpdate !== null) m.crlNextUpdate.set((this.#crl.nextUpdate - Date.now()) / 1000)
    }
    m.streamClients.set(this.#d.streamClients())
    m.ready.set(await this.#ready() ? 1 : 0)
  }

  // Bounded like /ready: a database that does not answer makes a scrape say 0, never hang.
  async #ready (): Promise<boolean> {
    let timer: NodeJS.Timeout | undefined
    const timeout = new Promise<string>((resolve) => { timer = setTimeout(() => resolve('timeout'), READY_TIMEOUT_MS) })
    try {
      return (await Promise.race([this.#d.notReadyReason(), timeout])) === null
    } finally {
      clearTimeout(timer)
    }
  }

  // One pass over this process's connections; markets are a short list of country codes.
  #sampleConnections (): void {
    const byMarket = new Map<string, number>()
    for (const client of this.#d.connections.clients()) {
      const market = this.#d.connections.get(client.id)?.identity.market ?? 'unknown'
      byMarket.set(market, (byMarket.get(market) ?? 0) + 1)
    }
    this.#d.metrics.connections.reset()
    for (const [market, n] of byMarket) this.#d.metrics.connections.set({ market: /^[A-Z]{2,3}$/.test(market) ? market : 'other' }, n)
  }
}

const metered = new WeakSet<LifecycleRepository>()

/**
 * Retention runs (the gateway's own job, POST /v1/retention/run) all go through the store's
 * runRetention; it is wrapped once per store, so that its runs are counted whoever started them.
 */
export function meterRetention (lifecycle: LifecycleRepository, m: GatewayMetrics): void {
  if (metered.has(lifecycle)) return
  metered.add(lifecycle)
  const run = lifecycle.runRetention.bind(lifecycle)
  lifecycle.runRetention = async (...args) => {
    const end = m.retentionSeconds.startTimer()
    try {
      const report = await run(...args)
      end()
      m.retentionRuns.inc({ outcome: report.skipped !== undefined ? 'skipped' : 'ok' })
      m.retentionRemoved.inc(report.totalRemoved)
      return report
    } catch (err) {
      m.retentionRuns.inc({ outcome: 'failed' })
      throw err
    }
  }
}
