// The protocol part: envelope codec, topic names, VINs, ids and the error catalogue. Pure: no I/O.
export * from './envelope.ts'
export * from './errors.ts'
export * from './topics.ts'
export * from './vin.ts'
export * from './legal-export.ts'
export * from './uuid-v7.ts'
export * from './ledger.ts'
export * from './event-attributes.ts'
