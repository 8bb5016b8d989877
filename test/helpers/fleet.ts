import { defaultFleetOptions, type FleetOptions } from '../../simulators/index.ts'
import type { TestGateway } from './gateway.ts'

/** A small fleet against a test gateway: the fleet tests' common options. */
export function fleetOptions (gw: TestGateway, over: Partial<FleetOptions> = {}): FleetOptions {
  return {
    ...defaultFleetOptions(),
    vehicles: 12,
    durationMs: 3000,
    mqttUrl: `mqtts://127.0.0.1:${gw.mqttPort}`,
    apiUrl: gw.baseUrl,
    apiKey: gw.adminKey,
    certDir: gw.pki.dir,
    uplinkRatePerVehicle: 3,
    downlinkRate: 8,
    ackDelayMs: [20, 200],
    rejectShare: 0.2,
    workers: 2,
    verify: true,
    ...over
  }
}
