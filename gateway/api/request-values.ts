import { GatewayError, isUuid, isValidVin } from '../../protocol/index.ts'

/** Refuses a VIN in a path with GW_ERR_INVALID_VIN (400) before anything is looked up. */
export function requireVin (vin: string): void {
  if (!isValidVin(vin)) throw new GatewayError('GW_ERR_INVALID_VIN', `"${vin.slice(0, 40)}" is not a valid VIN: 17 characters, digits and capital letters except I, O and Q`)
}

/** A message id that is not a UUID names no message: 404 before anything is looked up. */
export function requireMessageId (id: string): void {
  if (!isUuid(id)) throw new GatewayError('GW_ERR_MESSAGE_NOT_FOUND', `no message ${id.slice(0, 40)}`)
}

/** A query-string time: ISO 8601 or epoch milliseconds. */
export function parseTime (name: string, value: string): Date {
  const date = /^\d+$/.test(value) ? new Date(Number(value)) : new Date(value)
  if (Number.isNaN(date.getTime())) throw new GatewayError('GW_ERR_VALIDATION', `querystring.${name}: expected an ISO 8601 time or epoch milliseconds`)
  return date
}
