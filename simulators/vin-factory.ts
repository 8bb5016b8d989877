import { vinCheckDigit } from '../protocol/index.ts'

// World manufacturer identifiers that look like each market's own makes; VGW elsewhere.
const WMI: Record<string, string> = { DE: 'WVW', US: '1FT', CN: 'LSV', JP: 'JT2', FR: 'VF1', GB: 'SAJ', KR: 'KMH', IT: 'ZFA', SE: 'YV1' }

/**
 * A valid, distinct ISO 3779 VIN for a simulated vehicle: WMI by market, `FLEET` as
 * descriptor, the check digit in position 9, model year R, plant S, then the serial.
 * The same (market, serial) always gives the same VIN, so cached certificates are reused.
 */
export function fleetVin (market: string, serial: number): string {
  const draft = `${WMI[market] ?? 'VGW'}FLEET0RS${String(serial).padStart(6, '0')}`
  return draft.slice(0, 8) + vinCheckDigit(draft) + draft.slice(9)
}

/** Markets spread by weight over the fleet, deterministically by index. */
export function marketFor (index: number, total: number, markets: ReadonlyArray<{ market: string, weight: number }>): string {
  const sum = markets.reduce((s, m) => s + m.weight, 0)
  const position = (index + 0.5) / total * sum
  let acc = 0
  for (const m of markets) {
    acc += m.weight
    if (position < acc) return m.market
  }
  return markets[markets.length - 1]?.market ?? 'DE'
}
