import { downTopic, hasWildcard, upTopic, type ErrorCode } from '../../protocol/index.ts'

/**
 * A vehicle may publish only to its own up topic and subscribe only to its own
 * down topic (README, "Vehicles: topics, identity, envelope"). Returns the denial code, or null when allowed.
 */
export function checkPublish (vin: string, topic: string, retain: boolean): ErrorCode | null {
  if (topic.startsWith('$')) return 'GW_ERR_SYS_DENIED'
  if (topic !== upTopic(vin)) return 'GW_ERR_TOPIC_DENIED'
  if (retain) return 'GW_ERR_RETAIN_DENIED'
  return null
}

export function checkSubscribe (vin: string, topic: string): ErrorCode | null {
  if (topic.startsWith('$')) return 'GW_ERR_SYS_DENIED'
  if (hasWildcard(topic)) return 'GW_ERR_WILDCARD_DENIED'
  if (topic !== downTopic(vin)) return 'GW_ERR_TOPIC_DENIED'
  return null
}
