// Packages without type definitions of their own; only what vgw calls is declared.
declare module 'mqemitter-redis' {
  interface MQEmitterRedisOptions { connectionString?: string }
  function MQEmitterRedis (opts: MQEmitterRedisOptions): unknown
  export default MQEmitterRedis
}

declare module 'aedes-persistence-redis' {
  import type { Redis } from 'ioredis'
  interface PersistenceOptions { conn?: Redis, maxSessionDelivery?: number }
  function AedesPersistenceRedis (opts: PersistenceOptions): unknown
  export default AedesPersistenceRedis
}
