// Issue #20, 9: a key revoked through REST on one gateway (or worker) stops working on every
// other one at once, announced on the signed cluster bus, not after the snapshot's bound.
import http from 'node:http'
import t from 'tap'
import { gatewayEnv, signalGroup, startVgw, startVgwForTest } from '../helpers/gateway-process.ts'
import { REDIS_URL, redisTestOptions } from '../helpers/redis.ts'
import { sharedDeployment } from '../helpers/shared-database.ts'

const VIN = 'WVWZZZ1JZXW002201'
const redis = await redisTestOptions(t)
// Far beyond the test: only the bus can tell the other gateway in time.
const BOUND = '600000'

/** One request on a connection of its own (with --workers, each new connection may land on another worker). */
const statusOf = (url: string, key: string): Promise<number> => new Promise((resolve, reject) => {
  http.get(`${url}/v1/vehicles/${VIN}`, { agent: false, headers: { authorization: `Bearer ${key}` } }, (res) => {
    res.resume()
    res.on('end', () => resolve(res.statusCode ?? 0))
  }).on('error', reject)
})

/** Polls `url` with the key until 401 or `ms` passed; the ms it took, or null. */
async function refusedWithin (url: string, key: string, ms: number): Promise<number | null> {
  const started = performance.now()
  while (performance.now() - started < ms) {
    if (await statusOf(url, key) === 401) return performance.now() - started
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
  return null
}

t.test('two gateways on one database: a key revoked through one is refused by the other at once', redis, async (t) => {
  // Two gateway processes, as a cluster runs them (each its own broker and Redis connections).
  const { url, pki, store } = await sharedDeployment(t)
  const env = gatewayEnv(pki.paths, { DATABASE_URL: url, VGW_REDIS_URL: REDIS_URL, VGW_API_KEY_CACHE_MS: BOUND })
  const [one, two] = await Promise.all([startVgwForTest(t, env), startVgwForTest(t, env)])
  const a = `http://127.0.0.1:${one.httpPort}`
  const b = `http://127.0.0.1:${two.httpPort}`
  const admin = await store.apiKeys.create('ops', ['admin'], 'test')
  const headers = { authorization: `Bearer ${admin.key}`, 'content-type': 'application/json' }
  const res = await fetch(`${a}/v1/keys`, { method: 'POST', headers, body: JSON.stringify({ name: 'crm', scopes: ['vehicles:read'] }) })
  const k = await res.json() as { id: string, key: string }
  t.equal(res.status, 201, JSON.stringify(k))
  t.equal(await statusOf(b, k.key), 404, 'a key created through one gateway works on the other at once (the vehicle is unknown)')
  t.equal((await fetch(`${a}/v1/keys/${k.id}`, { method: 'DELETE', headers: { authorization: `Bearer ${admin.key}` } })).status, 200)
  t.equal(await statusOf(a, k.key), 401, 'refused where it was revoked')
  const ms = await refusedWithin(b, k.key, 1000)
  t.ok(ms !== null, `refused on the other gateway within 1 s (VGW_API_KEY_CACHE_MS is ${BOUND})`)
  if (ms !== null) t.comment(`refused on the other gateway ${Math.round(ms)} ms after the DELETE answered`)
})

t.test('vgw start --workers 2: a key revoked through REST is refused by every worker at once', redis, async (t) => {
  const { url, pki, store } = await sharedDeployment(t)
  const gw = await startVgw(gatewayEnv(pki.paths, { DATABASE_URL: url, VGW_REDIS_URL: REDIS_URL, VGW_API_KEY_CACHE_MS: BOUND }), ['--workers', '2'])
  t.teardown(async () => { signalGroup(gw, 'SIGTERM'); await gw.exited })
  const deadline = Date.now() + 30_000
  while (!gw.output.some((l) => l.startsWith('vgw ready: 2 gateway processes')) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 100))
  const base = `http://127.0.0.1:${gw.httpPort}`
  const admin = await store.apiKeys.create('ops', ['admin'], 'test')
  const k = await store.apiKeys.create('crm', ['vehicles:read'], 'test')
  // Fresh connections are spread over both workers: each has read the key (404: the vehicle is unknown).
  const seen = async (): Promise<boolean> => {
    const answers = await Promise.all(Array.from({ length: 8 }, async () => await statusOf(base, k.key)))
    return answers.every((s) => s === 404)
  }
  const until = Date.now() + 10_000
  while (!await seen() && Date.now() < until) await new Promise((resolve) => setTimeout(resolve, 100))
  const res = await fetch(`${base}/v1/keys/${k.id}`, { method: 'DELETE', headers: { authorization: `Bearer ${admin.key}` } })
  t.equal(res.status, 200)
  const answers: number[] = []
  const started = performance.now()
  // Every worker must refuse it: keep asking on fresh connections until 20 refusals in a row, or 1 s.
  let inARow = 0
  while (inARow < 20 && performance.now() - started < 1000) {
    const s = await statusOf(base, k.key)
    answers.push(s)
    inARow = s === 401 ? inARow + 1 : 0
  }
  t.comment(`answers after the revocation: ${JSON.stringify(answers)}`)
  t.equal(inARow, 20, 'refused by every worker within 1 s')
  const pids = new Set(gw.output.filter((l) => l.includes('"msg":"gateway listening"')).map((l) => (JSON.parse(l) as { pid: number }).pid))
  t.equal(pids.size, 2, 'two workers served')
})
