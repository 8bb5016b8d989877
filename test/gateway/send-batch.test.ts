import pg from 'pg'
import t from 'tap'
import { GatewayError } from '../../protocol/index.ts'
import { SendBatcher } from '../../gateway/api/send-batcher.ts'
import { send } from '../helpers/downlink.ts'
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts'

// Concurrent REST sends are committed together (gateway/api/send-batcher.ts): one statement for
// every send that waited for a commit slot. Each send keeps its own answer.

const VINS = ['WVWZZZ1JZXW000301', 'WVWZZZ1JZXW000302', 'WVWZZZ1JZXW000303']
const UNKNOWN = 'WVWZZZ1JZXW000399'

async function rows (gw: TestGateway, sql: string, values: unknown[] = []): Promise<Array<Record<string, unknown>>> {
  const db = new pg.Client({ connectionString: gw.dbUrl })
  await db.connect()
  try {
    return (await db.query(sql, values)).rows as Array<Record<string, unknown>>
  } finally {
    await db.end()
  }
}

t.test('sends committed together keep per-request answers: idempotency keys exact, unknown vehicles refused alone', async (t) => {
  // One commit slot: every send that arrives while one commits waits for it and goes in the next statement.
  const gw = await startTestGateway(t, { VGW_API_SEND_CONCURRENCY: '1' })
  for (const vin of VINS) await gw.store.vehicles.register(vin, 'DE', new Date())
  const body = { type: 'service.reminder', payload: 'hello' }
  const sends = await Promise.all([
    ...Array.from({ length: 30 }, (_, i) => send(gw, VINS[i % VINS.length] as string, { ...body, payload: `plain ${i}` })),
    ...Array.from({ length: 10 }, () => send(gw, VINS[0] as string, body, { 'idempotency-key': 'same-key' })),
    send(gw, UNKNOWN, body),
    send(gw, UNKNOWN, body, { 'idempotency-key': 'unknown-vehicle-key' })
  ])
  const plain = sends.slice(0, 30)
  const keyed = sends.slice(30, 40)
  const unknown = sends.slice(40)
  t.ok(plain.every((r) => r.status === 202 && r.body.status === 'queued'), 'every plain send answered 202 queued')
  t.equal(new Set(plain.map((r) => r.body.id)).size, 30, 'each plain send has its own id')
  t.ok(keyed.every((r) => r.status === 202), 'every send with the key answered 202')
  t.equal(new Set(keyed.map((r) => r.body.id)).size, 1, 'one id for one idempotency key')
  t.same(unknown.map((r) => [r.status, (r.body.error as { code: string } | undefined)?.code]), [[404, 'GW_ERR_VEHICLE_NOT_FOUND'], [404, 'GW_ERR_VEHICLE_NOT_FOUND']])

  const messages = await rows(gw, 'SELECT id::text, vin FROM messages ORDER BY id')
  t.equal(messages.length, 31, '30 plain messages and one for the key')
  t.same(new Set(messages.map((m) => m.id)), new Set([...plain, keyed[0]].map((r) => r?.body.id)), 'the rows are the answered ids')
  const queued = await rows(gw, "SELECT message_id, count(*)::int AS n FROM transactions WHERE status = 'queued' GROUP BY message_id")
  t.equal(queued.length, 31, 'one queued log row per message')
  t.ok(queued.every((q) => q.n === 1), 'and only one')

  const again = await send(gw, VINS[0] as string, body, { 'idempotency-key': 'same-key' })
  t.same([again.status, again.body.id], [202, keyed[0]?.body.id], 'the key still answers the same id later')
})

t.test('the send batcher: sends waiting for a slot go in one commit, a refused send fails alone, an unavailable store fails the batch', async (t) => {
  const commits: number[][] = []
  let release: () => void = () => undefined
  const batcher = new SendBatcher<number, string>({
    maxSize: 100,
    maxConcurrent: 1,
    commit: async (items) => {
      commits.push(items)
      if (items.length === 1 && items[0] === 0) await new Promise<void>((resolve) => { release = resolve })
      if (items.includes(13)) throw new Error('the store refuses 13')
      if (items.includes(99)) throw new GatewayError('GW_ERR_STORE_UNAVAILABLE')
      return items.map((i) => `ok ${i}`)
    }
  })
  const first = batcher.add(0)
  await new Promise((resolve) => setImmediate(resolve))
  const rest = [1, 2, 13, 4, 5].map((i) => batcher.add(i).then((r) => r, (err: Error) => err.message))
  t.equal(batcher.waiting, 5, 'five wait while the only slot commits')
  release()
  t.equal(await first, 'ok 0')
  t.same(await Promise.all(rest), ['ok 1', 'ok 2', 'the store refuses 13', 'ok 4', 'ok 5'], 'only the refused send fails')
  t.same(commits.slice(0, 2), [[0], [1, 2, 13, 4, 5]], 'the waiting five went in one statement')
  t.same(commits.slice(2), [[1, 2, 13], [1, 2], [13], [4, 5]], 'the refused batch was split until the offender was alone')

  commits.length = 0
  const down = await Promise.all([7, 99, 8].map((i) => batcher.add(i).then((r) => r, (err: GatewayError) => err.code)))
  t.same(down, ['GW_ERR_STORE_UNAVAILABLE', 'GW_ERR_STORE_UNAVAILABLE', 'GW_ERR_STORE_UNAVAILABLE'], 'an unavailable store fails every send of the batch at once')
  t.same(commits, [[7, 99, 8]], 'and nothing is retried')
})
