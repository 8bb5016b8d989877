/**
 * Vehicle identification numbers (ISO 3779): 17 characters, digits and capital
 * letters except I, O and Q. The check digit (position 9, North American use)
 * is not required by ISO 3779, so validity here does not demand it; fleets we
 * generate carry one anyway.
 */
const VIN_PATTERN = /^[A-HJ-NPR-Z0-9]{17}$/

export function isValidVin (value: string): boolean {
  return VIN_PATTERN.test(value)
}

const TRANSLITERATION: Record<string, number> = {
  A: 1, B: 2, C: 3, D: 4, E: 5, F: 6, G: 7, H: 8,
  J: 1, K: 2, L: 3, M: 4, N: 5, P: 7, R: 9,
  S: 2, T: 3, U: 4, V: 5, W: 6, X: 7, Y: 8, Z: 9
}
const WEIGHTS = [8, 7, 6, 5, 4, 3, 2, 10, 0, 9, 8, 7, 6, 5, 4, 3, 2]

/** The check digit (0-9 or X) for a VIN, computed over all 17 positions with weight 0 at position 9. */
export function vinCheckDigit (vin: string): string {
  let sum = 0
  for (let i = 0; i < 17; i++) {
    const ch = vin[i] ?? '0'
    const value = ch >= '0' && ch <= '9' ? Number(ch) : (TRANSLITERATION[ch] ?? 0)
    sum += value * (WEIGHTS[i] ?? 0)
  }
  const rest = sum % 11
  return rest === 10 ? 'X' : String(rest)
}

export function hasValidCheckDigit (vin: string): boolean {
  return isValidVin(vin) && vin[8] === vinCheckDigit(vin)
}
