import AedesPersistenceRedis from 'aedes-persistence-redis'
import { Redis } from 'ioredis'
import MQEmitterRedis from 'mqemitter-redis'

/**
 * Cluster mode (VGW_REDIS_URL): the gateways of a fleet share Aedes' message bus and
 * session store through Redis (mqemitter-redis, aedes-persistence-redis). A vehicle that
 * connects to a second gateway closes its session on the first, and announcements of
 * waiting downlinks reach the gateway its vehicle is connected to. PostgreSQL stays the
 * queue: losing Redis loses no acknowledged message.
 */
export function clusterBrokerOptions (redisUrl: string): { mq: unknown, persistence: unknown } {
  return {
    mq: MQEmitterRedis({ connectionString: redisUrl }),
    persistence: AedesPersistenceRedis({ conn: new Redis(redisUrl, { maxRetriesPerRequest: null }) })
  }
}
