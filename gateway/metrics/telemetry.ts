import type { Store, TransactionRecord } from '../../store/index.ts'
import type { VehicleEdge } from '../edge/vehicle-edge.ts'
import { countDuplicates, meteredCommit } from './committed-rows.ts'
import { probeBroker, probeTls } from './edge-probes.ts'
import { createGatewayMetrics, type GatewayMetrics } from './gateway-metrics.ts'
import { ScrapeGauges, meterRetention, type ScrapeGaugeDeps } from './scrape-gauges.ts'

export { MeteredEventHub } from './committed-rows.ts'
export type { GatewayMetrics } from './gateway-metrics.ts'

/**
 * One gateway's metrics and the seams that feed them (README, "Operating vgw"). build-gateway.ts
 * creates it first, hands the parts to it as they are built, and the /metrics route reads it.
 */
export class Telemetry {
  readonly metrics: GatewayMetrics = createGatewayMetrics()
  readonly #lastCommit = new Map<string, number>()
  #gauges: ScrapeGauges | null = null

  /** A batcher's commit function, metered (size, duration, retries, last success). */
  meteredCommit<T> (batcher: string, commit: (items: T[]) => Promise<void>): (items: T[]) => Promise<void> {
    return meteredCommit(this.metrics, batcher, commit, this.#lastCommit)
  }

  /** Appends log rows and counts the uplinks the log already held (retries stored once). */
  async appendCounted (store: Store, records: TransactionRecord[]): Promise<TransactionRecord[]> {
    const stored = await store.transactions.append(records)
    countDuplicates(this.metrics, records, stored)
    return stored
  }

  attachEdge (edge: VehicleEdge, store: Store): void {
    probeBroker(edge.broker, this.metrics)
    probeTls(edge.server, this.metrics)
    meterRetention(store.lifecycle, this.metrics)
  }

  attachGauges (deps: Omit<ScrapeGaugeDeps, 'metrics' | 'lastCommit'>): void {
    this.#gauges = new ScrapeGauges({ ...deps, metrics: this.metrics, lastCommit: this.#lastCommit })
  }

  start (): void {
    this.#gauges?.start()
  }

  stop (): void {
    this.#gauges?.stop()
  }

  /** The Prometheus text exposition, gauges sampled now. */
  async scrape (): Promise<string> {
    await this.#gauges?.sample()
    return await this.metrics.registry.metrics()
  }

  get contentType (): string {
    return this.metrics.registry.contentType
  }
}
