// Every path built from data (a VIN, a message id from the URL or from an API answer) goes through
// here: the value is checked for its shape and encoded as one path segment, so that a crafted URL such
// as /console/vehicles/VIN%2Fexport%3Ffrom%3D… can never make the console call another API route
// with the operator's key (README, "The operator console").
const VIN = /^[A-HJ-NPR-Z0-9]{17}$/
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i

export const isVin = (v) => typeof v === 'string' && VIN.test(v)
export const isUuid = (v) => typeof v === 'string' && UUID.test(v)

/** One path segment: encoded, whatever it holds. */
export const segment = (v) => encodeURIComponent(String(v))

export const vehiclePath = (vin) => `/v1/vehicles/${segment(vin)}`
export const messagePath = (id) => `/v1/messages/${segment(id)}`
export const vehiclePage = (vin) => `/console/vehicles/${segment(vin)}`
export const messagePage = (id) => `/console/messages/${segment(id)}`
