import type { ErrorCode } from '../protocol/index.ts'

/** Why the gateway is not ready: a catalogue code and a sentence for the operator. */
export interface NotReady {
  code: ErrorCode
  message: string
}

/** What readiness needs of a commit batcher (CommitBatcher). */
export interface CommitProgress {
  readonly pending: number
  stalledForMs(now?: number): number
}

/**
 * GW_ERR_COMMIT_STALLED when a batcher has held work for `stallMs` without any commit
 * succeeding (a locked table, a wedged database): /ready then answers 503 so a balancer
 * drains this gateway, and answers 200 again by itself once commits progress.
 */
export function commitStallReason (batchers: Readonly<Record<string, CommitProgress>>, stallMs: number, now = performance.now()): NotReady | null {
  for (const [name, batcher] of Object.entries(batchers)) {
    const stalled = batcher.stalledForMs(now)
    if (stalled >= stallMs) {
      return {
        code: 'GW_ERR_COMMIT_STALLED',
        message: `no ${name} commit has succeeded for ${Math.round(stalled / 1000)} s while ${batcher.pending} items wait (VGW_COMMIT_STALL_MS ${stallMs})`
      }
    }
  }
  return null
}
