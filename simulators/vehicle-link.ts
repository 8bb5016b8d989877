// What both kinds of simulated vehicle do to their link: back off between reconnects, and stall.

/** Exponential backoff from 250 ms up to 30 s, with jitter (0.5–1.5×), so a fleet does not reconnect in step. */
export function reconnectDelayMs (attempt: number): number {
  return Math.min(30_000, 250 * 2 ** attempt) * (0.5 + Math.random())
}

/** Stops reading from a socket for a while, as a stalled radio link would. */
export function stallReads (stream: { pause(): unknown, resume(): unknown }, ms: number): void {
  stream.pause()
  setTimeout(() => stream.resume(), ms).unref()
}
