import pg from 'pg'
import t from 'tap'
import { v7 as uuidv7 } from 'uuid'
import type { FeedPosition, Store } from '../../store/index.ts'
import { testStore } from '../helpers/database.ts'
import { logRow } from '../helpers/records.ts'

const VIN = 'WVWZZZ1JZXW000301'

/** Reads the feed from `after` to its head; returns the ids seen and the position reached. */
async function drain (store: Store, after: FeedPosition | null): Promise<{ ids: string[], next: FeedPosition | null }> {
  const ids: string[] = []
  let next = after
  for (;;) {
    const page = await store.feed.read({ after: next, limit: 50 })
    ids.push(...page.items.map((r) => r.id))
    next = page.next
    if (!page.more) return { ids, next }
  }
}

/** A transaction that inserts one log row and stays open until `commit` is called. */
async function openInsert (url: string, id: string): Promise<{ commit: () => Promise<void> }> {
  const client = new pg.Client({ connectionString: url })
  await client.connect()
  await client.query('BEGIN')
  await client.query(
    `INSERT INTO transactions (id, occurred_at, received_at, vin, direction, kind, type, status)
     VALUES ($1, now(), now(), $2, 'up', 'TELEMETRY', 'telemetry.held', 'accepted')`, [id, VIN])
  return {
    async commit () {
      await client.query('COMMIT')
      await client.end()
    }
  }
}

t.test('a row that commits after later rows is not stepped over: the feed stops before the open transaction', async (t) => {
  const { store, url } = await testStore(t)
  await store.transactions.ensurePartitions([new Date()])
  await store.transactions.append([logRow(VIN, 'DE', new Date())])
  const first = await drain(store, null)
  t.equal(first.ids.length, 1)

  // The held row takes its transaction id first; later rows commit before it does.
  const heldId = uuidv7()
  const held = await openInsert(url, heldId)
  t.teardown(async () => { await held.commit().catch(() => undefined) })
  const later = [logRow(VIN, 'DE', new Date()), logRow(VIN, 'DE', new Date())]
  await store.transactions.append([later[0] as ReturnType<typeof logRow>])
  await store.transactions.append([later[1] as ReturnType<typeof logRow>])

  const whileOpen = await drain(store, first.next)
  t.same(whileOpen.ids, [], 'nothing past the open transaction is served, though later rows have committed')
  t.same(whileOpen.next, first.next, 'the cursor does not move past the open transaction')

  await held.commit()
  const after = await drain(store, whileOpen.next)
  t.same(after.ids, [heldId, ...later.map((r) => r.id)], 'after it commits, the held row comes first, then the later ones, each once')
})

t.test('concurrent committers with random commit order: a consumer polling all along sees every row exactly once', async (t) => {
  const { store, url } = await testStore(t)
  await store.transactions.ensurePartitions([new Date()])
  const writers = 6
  const perWriter = 15
  const written: string[] = []
  let done = false
  const seen: string[] = []
  const consumer = (async () => {
    let next: FeedPosition | null = null
    for (;;) {
      const finished = done
      const r = await drain(store, next)
      seen.push(...r.ids)
      next = r.next
      if (finished) return
      await new Promise((resolve) => setTimeout(resolve, 3))
    }
  })()
  // Each writer holds its insert open for a random time, so transactions commit out of xid order.
  await Promise.all(Array.from({ length: writers }, async () => {
    const client = new pg.Client({ connectionString: url })
    await client.connect()
    try {
      for (let i = 0; i < perWriter; i++) {
        const id = uuidv7()
        await client.query('BEGIN')
        await client.query(
          `INSERT INTO transactions (id, occurred_at, received_at, vin, direction, kind, status) VALUES ($1, now(), now(), $2, 'up', 'TELEMETRY', 'accepted')`, [id, VIN])
        await client.query('SELECT pg_sleep($1)', [Math.random() * 0.03])
        await client.query('COMMIT')
        written.push(id)
      }
    } finally {
      await client.end()
    }
  }))
  done = true
  await consumer
  t.equal(seen.length, written.length, 'as many rows seen as written')
  t.same(new Set(seen), new Set(written), 'every written row seen')
  t.equal(new Set(seen).size, seen.length, 'none twice')
})

t.test('filters keep the cursor moving: a read examines a bounded range and says when more follows', async (t) => {
  const { store } = await testStore(t)
  await store.transactions.ensurePartitions([new Date()])
  const other = 'WVWZZZ1JZXW000302'
  await store.transactions.append(Array.from({ length: 30 }, () => logRow(other, 'DE', new Date())))
  const mine = logRow(VIN, 'DE', new Date(), { type: 'telemetry.mine' })
  await store.transactions.append([mine])
  const page = await store.feed.read({ after: null, limit: 10, vin: VIN })
  t.same(page.items.map((r) => r.id), [mine.id])
  t.equal(page.items[0]?.xid !== undefined, true, 'items carry their position')
  const again = await store.feed.read({ after: page.next, limit: 10, vin: VIN })
  t.same(again.items, [], 'nothing after the last row examined')
  t.equal(again.more, false)
})
