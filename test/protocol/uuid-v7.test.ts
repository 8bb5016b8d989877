import t from 'tap'
import { isUuid, newUuidV7 } from '../../protocol/index.ts'

t.test('ids are version 7 UUIDs, distinct and in creation order, across pool refills', async (t) => {
  const ids = Array.from({ length: 2000 }, () => newUuidV7())
  t.ok(ids.every((id) => isUuid(id) && id[14] === '7' && '89ab'.includes(id[19] as string)), 'version 7, RFC 9562 variant')
  t.equal(new Set(ids).size, ids.length, 'no duplicates')
  t.same([...ids].sort(), ids, 'sorted as made')
})

t.test('the time prefix is the creation time in milliseconds', async (t) => {
  const before = Date.now()
  const id = newUuidV7()
  const ms = parseInt(id.replace(/-/g, '').slice(0, 12), 16)
  t.ok(ms >= before && ms <= Date.now() + 1, `${ms} within [${before}, now]`)
})
