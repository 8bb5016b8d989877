import type { FleetCounters } from './fleet-metrics.ts'
import type { Scenario } from './fleet-options.ts'
import type { VehicleBehaviour } from './simulated-vehicle.ts'

/** Messages between the fleet orchestrator and its worker processes (IPC). */
export interface StartCommand {
  type: 'start'
  behaviour: Omit<VehicleBehaviour, 'ca'>
  certDir: string
  vehicles: Array<{ vin: string, market: string }>
  connectRatePerSecond: number
  uplinkBudget: number | null
  scenario: Scenario
  durationMs: number
  /** Wait for 'start-uplinks' before publishing. */
  holdUplinks: boolean
  lean: boolean
  flakyShare: number
}

export type ToWorker =
  | StartCommand
  | { type: 'offline', vins: string[] }
  | { type: 'online', vins: string[] }
  | { type: 'storm' }
  | { type: 'start-uplinks' }
  | { type: 'stop-uplinks' }
  /** Stop; wait (up to drainMs) until connected vehicles got `expect` (vin, message id) and answered everything. */
  | { type: 'finish', drainMs: number, expect: Array<[string, string]> }

export interface VehicleFinal {
  vin: string
  connected: boolean
  acked: string[]
  answers: Array<[string, string]>
}

export type FromWorker =
  | { type: 'ready', certSeconds: number }
  | { type: 'tick', counters: FleetCounters, connect: string, uplink: string, received: Array<[string, number]>, errors: Record<string, number>, budgetReached: boolean }
  | { type: 'final', vehicles: VehicleFinal[], cpuSeconds: number }
  | { type: 'failed', message: string }
