import { GatewayError } from '../../protocol/index.ts'

const DAYS: Record<string, number> = { d: 1, w: 7, m: 30, y: 365 }

/** `10y`, `7y`, `18m`, `90d`, `2w` → days. A month counts 30 days, a year 365. */
export function parsePeriod (text: string): number {
  const m = /^(\d{1,4})([dwmy])$/.exec(text.trim())
  if (m === null) throw new GatewayError('GW_ERR_VALIDATION', `period ${JSON.stringify(text)}: expected a number and a unit, such as 10y, 18m, 90d`)
  const days = Number(m[1]) * (DAYS[m[2] as string] ?? 1)
  if (days < 1 || days > 100 * 365) throw new GatewayError('GW_ERR_VALIDATION', `period ${JSON.stringify(text)}: between 1 day and 100 years`)
  return days
}

export function formatPeriod (days: number): string {
  if (days % 365 === 0) return `${days / 365}y`
  if (days % 30 === 0) return `${days / 30}m`
  return `${days}d`
}

/** A market code, or `*` / `default` for every market without a policy of its own. */
export function parseMarket (text: string): string {
  if (text === '*' || text === 'default') return '*'
  if (!/^[A-Z]{2}$/.test(text)) throw new GatewayError('GW_ERR_VALIDATION', `market ${JSON.stringify(text)}: an ISO 3166-1 alpha-2 code such as DE, or "default"`)
  return text
}
