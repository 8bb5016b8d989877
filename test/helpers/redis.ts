import { Redis } from 'ioredis'

export const REDIS_URL = process.env.VGW_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379/7'

/**
 * Cluster tests need Redis. With CI=true a missing Redis fails the run; elsewhere the
 * tests are skipped with a message that says what to start (README, "Tests").
 */
export async function redisAvailability (): Promise<'available' | 'fail' | 'skip'> {
  const r = new Redis(REDIS_URL, { lazyConnect: true, connectTimeout: 1000, maxRetriesPerRequest: 0, retryStrategy: () => null })
  let ok = false
  try {
    await r.connect()
    ok = (await r.ping()) === 'PONG'
  } catch {
    ok = false
  } finally {
    r.disconnect()
  }
  if (ok) return 'available'
  return process.env.CI === 'true' ? 'fail' : 'skip'
}

export const REDIS_MISSING = `cluster tests need Redis at ${REDIS_URL}: start redis-server (or set VGW_TEST_REDIS_URL)`

/**
 * The options for each Redis test: `{ skip: false }` when Redis answers; otherwise
 * `{ skip: reason }`, so that tap reports the tests as skipped, never as passed. With
 * CI=true a missing Redis also fails `t`.
 */
export async function redisTestOptions (t: { fail(message: string): void, comment(message: string): void }): Promise<{ skip: string | false }> {
  const availability = await redisAvailability()
  if (availability === 'available') return { skip: false }
  if (availability === 'fail') t.fail(REDIS_MISSING)
  else t.comment(`SKIPPED: ${REDIS_MISSING}`)
  return { skip: REDIS_MISSING }
}
