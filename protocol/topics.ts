/** Topic names (README, "Vehicles: topics, identity, envelope"). A vehicle has exactly these two. */
export type TopicDirection = 'up' | 'down'

export function upTopic (vin: string): string {
  return `vehicles/${vin}/up`
}

export function downTopic (vin: string): string {
  return `vehicles/${vin}/down`
}

export interface VehicleTopic {
  readonly vin: string
  readonly direction: TopicDirection
}

/** Parses `vehicles/{vin}/up|down`; anything else (extra levels, wildcards) is null. */
export function parseVehicleTopic (topic: string): VehicleTopic | null {
  const parts = topic.split('/')
  if (parts.length !== 3 || parts[0] !== 'vehicles') return null
  const vin = parts[1] ?? ''
  const direction = parts[2]
  if (vin.length === 0 || (direction !== 'up' && direction !== 'down')) return null
  return { vin, direction }
}

export function hasWildcard (topic: string): boolean {
  return topic.includes('#') || topic.includes('+')
}
