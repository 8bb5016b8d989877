import { GatewayError } from '../../protocol/index.ts'

const UNIT_MS: Record<string, number> = { s: 1000, h: 3600_000, d: 86_400_000, w: 7 * 86_400_000, y: 365 * 86_400_000 }

/** A key lifetime or grace period: `90d`, `12h`, `2w`, `1y` (`s` for seconds) → milliseconds. */
export function parseLifetime (what: string, text: string): number {
  const m = /^(\d{1,6})([shdwy])$/.exec(text.trim())
  const ms = m === null ? Number.NaN : Number(m[1]) * (UNIT_MS[m[2] as string] ?? Number.NaN)
  if (!(ms > 0) || ms > 100 * UNIT_MS.y) throw new GatewayError('GW_ERR_VALIDATION', `${what} ${JSON.stringify(text)}: expected a number and a unit (s, h, d, w, y) such as 90d, up to 100y`)
  return ms
}

/** Default grace period of a rotated key: long enough to roll the new secret out. */
export const DEFAULT_ROTATION_GRACE = '24h'
