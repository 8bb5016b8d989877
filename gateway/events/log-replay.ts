import { decodeFeedCursor, type FeedPosition, type FeedRepository } from '../../store/index.ts'
import { eventOf, type StreamFilter } from './event-hub.ts'

const PAGE = 500
// While an older transaction is still open the feed cannot pass it; look again this often.
const WAIT_MS = 20

export interface LogReplay {
  /** Pages of events read from the log after the cursor, up to every row committed before the replay began. */
  pages: AsyncIterable<Array<Record<string, unknown>>>
  /** Whether a live event is one the replay already carried (its position is at or before the last read). */
  alreadySent: (e: object) => boolean
}

function atOrBefore (p: FeedPosition, last: FeedPosition): boolean {
  const a = BigInt(p.xid)
  const b = BigInt(last.xid)
  return a < b || (a === b && p.id <= last.id)
}

/**
 * A stream's resume from the durable feed (README, "The stream"): reads until the feed has passed
 * every transaction that had been assigned an id when the replay began, so that an event committed
 * before the client subscribed, and so never live for it, is in the replay.
 */
export function replayFromLog (feed: FeedRepository, after: FeedPosition, filter: StreamFilter, payloadMaxBytes?: number): LogReplay {
  let last = after
  const horizon = feed.horizon()
  async function * pages (): AsyncGenerator<Array<Record<string, unknown>>> {
    const until = BigInt(await horizon)
    // The cursor's own row is gone only when retention removed it, and maybe rows after it too.
    if (after.xid !== '0' && !await feed.exists(after)) {
      yield [{ event: 'gap', message: 'the event at since was removed by retention; events after it may have been too' }]
    }
    for (;;) {
      const page = await feed.read({ after: last, limit: PAGE, ...filter, ...(payloadMaxBytes !== undefined ? { payloadMaxBytes } : {}) })
      last = page.next
      if (page.items.length > 0) yield page.items.map((r) => eventOf(r, payloadMaxBytes))
      if (page.more) continue
      if (BigInt(page.finishedBelow) >= until) return
      await new Promise((resolve) => setTimeout(resolve, WAIT_MS))
    }
  }
  return {
    pages: pages(),
    alreadySent: (e) => {
      const cursor = (e as { cursor?: unknown }).cursor
      return typeof cursor === 'string' && atOrBefore(decodeFeedCursor(cursor), last)
    }
  }
}
