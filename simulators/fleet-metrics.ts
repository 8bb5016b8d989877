import * as hdr from 'hdr-histogram-js'

export const HISTOGRAMS = ['connect', 'uplink', 'downlinkReceipt', 'downlinkDelivered', 'downlinkAcknowledged'] as const
export type HistogramName = typeof HISTOGRAMS[number]

/** Latencies in microseconds, 1 µs to 1 hour, 3 significant digits. */
export function newHistogram (): hdr.Histogram {
  return hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 3_600_000_000, numberOfSignificantValueDigits: 3 })
}

export function encodeHistogram (h: hdr.Histogram): string {
  return hdr.encodeIntoCompressedBase64(h)
}

export function mergeInto (target: hdr.Histogram, encoded: string): void {
  target.add(hdr.decodeFromCompressedBase64(encoded))
}

export interface Percentiles {
  count: number
  p50: number
  p90: number
  p99: number
  p999: number
  max: number
}

/** Milliseconds, three decimals. */
export function percentiles (h: hdr.Histogram): Percentiles {
  const ms = (us: number): number => Math.round(us) / 1000
  return {
    count: h.totalCount,
    p50: ms(h.getValueAtPercentile(50)),
    p90: ms(h.getValueAtPercentile(90)),
    p99: ms(h.getValueAtPercentile(99)),
    p999: ms(h.getValueAtPercentile(99.9)),
    max: ms(h.maxValue)
  }
}

/** Counters a worker reports; summed over workers. */
export interface FleetCounters {
  connected: number
  connects: number
  /** Of `connects`, those whose TLS handshake resumed a session (a ticket from an earlier connection). */
  resumedConnects: number
  connectFailures: number
  disconnects: number
  uplinkSent: number
  uplinkAcked: number
  uplinkQueued: number
  downlinkReceived: number
  downlinkDuplicates: number
  acksSent: number
  rejectsSent: number
  errorNotices: number
}

export const zeroCounters = (): FleetCounters => ({
  connected: 0, connects: 0, resumedConnects: 0, connectFailures: 0, disconnects: 0, uplinkSent: 0, uplinkAcked: 0, uplinkQueued: 0,
  downlinkReceived: 0, downlinkDuplicates: 0, acksSent: 0, rejectsSent: 0, errorNotices: 0
})

/** Wall-clock microseconds comparable across processes on one machine. */
export function nowMicros (): number {
  return Math.round((performance.timeOrigin + performance.now()) * 1000)
}
