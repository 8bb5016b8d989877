import { GatewayError } from '../protocol/index.ts'

// SQLSTATE classes that mean "the database is not there right now" rather than "this statement is wrong".
const UNAVAILABLE_CLASSES = ['08', '53', '57', '58']
const UNAVAILABLE_NODE_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH'])

/**
 * True when an error from pg means the database is unreachable (retry later), not that
 * the query is wrong. Looks through wrappers: drizzle's query error and AggregateError.
 */
export function isUnavailable (err: unknown, depth = 0): boolean {
  if (typeof err !== 'object' || err === null || depth > 5) return false
  const cause = (err as { cause?: unknown }).cause
  if (cause !== undefined && isUnavailable(cause, depth + 1)) return true
  const inner = (err as { errors?: unknown }).errors
  if (Array.isArray(inner) && inner.some((e) => isUnavailable(e, depth + 1))) return true
  const code = (err as { code?: unknown }).code
  if (typeof code === 'string') {
    if (UNAVAILABLE_NODE_CODES.has(code)) return true
    if (/^[0-9A-Z]{5}$/.test(code) && UNAVAILABLE_CLASSES.includes(code.slice(0, 2))) return true
  }
  const message = (err as { message?: unknown }).message
  return typeof message === 'string' && /timeout|terminated|Connection terminated|not queryable|Client has encountered a connection error/i.test(message)
}

/** pg errors never leave store/: translate them into catalogue errors. */
export function translateError (err: unknown): GatewayError {
  if (err instanceof GatewayError) return err
  if (isUnavailable(err)) return new GatewayError('GW_ERR_STORE_UNAVAILABLE', undefined, { cause: err })
  // An owner-run function (migration 0013) refused what the acting key may not do.
  const { code, hint, message } = err as { code?: unknown, hint?: unknown, message?: unknown }
  if (code === '42501' && hint === 'vgw:scope' && typeof message === 'string') return new GatewayError('GW_ERR_FORBIDDEN', message, { cause: err })
  return new GatewayError('GW_ERR_INTERNAL', 'database error', { cause: err })
}
