import http from 'node:http'
import { randomBytes } from 'node:crypto'
import pg from 'pg'
import t from 'tap'
import { register } from '../helpers/downlink.ts'
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts'

const VIN = 'WVWZZZ1JZXW000901'

interface Answer { status: number, retryAfter: string | undefined, body: string }

/** Many requests over a few keep-alive connections, as a flood from one address looks. */
async function flood (gw: TestGateway, requests: Array<{ path: string, token?: string }>, concurrency = 16): Promise<Answer[]> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency })
  const answers: Answer[] = new Array<Answer>(requests.length)
  let next = 0
  const one = (i: number): Promise<void> => new Promise((resolve, reject) => {
    const r = requests[i] as { path: string, token?: string }
    const headers: Record<string, string> = r.token !== undefined ? { authorization: `Bearer ${r.token}` } : {}
    const req = http.request({ host: '127.0.0.1', port: gw.httpPort, path: r.path, headers, agent }, (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (chunk: string) => { body += chunk })
      res.on('end', () => {
        answers[i] = { status: res.statusCode ?? 0, retryAfter: res.headers['retry-after'] as string | undefined, body }
        resolve()
      })
    })
    req.on('error', reject)
    req.end()
  })
  const worker = async (): Promise<void> => {
    while (next < requests.length) await one(next++)
  }
  await Promise.all(Array.from({ length: concurrency }, worker))
  agent.destroy()
  return answers
}

function count (answers: Answer[], status: number): number {
  return answers.filter((a) => a.status === status).length
}

/**
 * Scans of api_keys as PostgreSQL counts them. A session flushes its table statistics when
 * it ends, so the gateway's sessions are ended first (its pools replace them) and the count is
 * read once they are gone: every lookup the gateway ran is in it, none is still pending.
 */
async function apiKeyScans (dbUrl: string): Promise<number> {
  const c = new pg.Client({ connectionString: dbUrl })
  await c.connect()
  try {
    const { rows } = await c.query<{ pid: number }>(
      'SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid() AND backend_type = \'client backend\'')
    const pids = rows.map((r) => r.pid)
    await c.query('SELECT pg_terminate_backend(pid) FROM unnest($1::int[]) AS pid', [pids])
    const deadline = Date.now() + 10_000
    for (;;) {
      const left = await c.query<{ n: number }>('SELECT count(*)::int AS n FROM pg_stat_activity WHERE pid = ANY($1::int[])', [pids])
      if (left.rows[0]?.n === 0) break
      if (Date.now() > deadline) throw new Error('the gateway\'s sessions did not end')
      await new Promise((resolve) => setTimeout(resolve, 20))
    }
    const stats = await c.query<{ n: string }>(
      "SELECT (coalesce(seq_scan, 0) + coalesce(idx_scan, 0))::text AS n FROM pg_stat_user_tables WHERE relname = 'api_keys'")
    return Number(stats.rows[0]?.n ?? 0)
  } finally {
    await c.end()
  }
}

const wellFormed = (): string => `vgw_${randomBytes(32).toString('base64url')}`

/** Waits until the address's window has passed (a request without a key is answered 401, not 429). */
async function windowPassed (gw: TestGateway): Promise<void> {
  const deadline = Date.now() + 5000
  while ((await gw.api(`/v1/vehicles/${VIN}`, { key: null })).status === 429) {
    if (Date.now() > deadline) throw new Error('still limited')
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
}

t.test('10,000 requests with made-up tokens run no database query and meet 429s', async (t) => {
  // Misses stay cached for the whole flood, however long the machine takes for it.
  const gw = await startTestGateway(t, { VGW_API_KEY_CACHE_MS: '600000' })
  const unknown = wellFormed()
  const tokens = ['vgw_not-a-key', 'garbage', `${unknown}x`, 'a'.repeat(300), unknown]
  const requests = Array.from({ length: 10_000 }, (_, i) => ({ path: `/v1/vehicles/${VIN}/transactions`, token: tokens[i % tokens.length] as string }))

  const before = await apiKeyScans(gw.dbUrl)
  const answers = await flood(gw, requests)
  const after = await apiKeyScans(gw.dbUrl)

  t.equal(count(answers, 401) + count(answers, 429), answers.length, 'every one refused: 401 or 429')
  t.ok(count(answers, 429) > 0, `429s met: ${count(answers, 429)}`)
  const limited = answers.find((a) => a.status === 429) as Answer
  t.match(JSON.parse(limited.body), { error: { code: 'GW_ERR_RATE_LIMITED', message: /per second/ } })
  t.ok(Number(limited.retryAfter) >= 1, 'with Retry-After')
  // The one well-formed unknown token is looked up once, its miss cached; the others cannot be keys.
  t.ok(after - before <= 1, `api_keys scanned ${after - before} time(s) for 10,000 requests`)

  // The measure sees a lookup when there is one: a fresh well-formed token costs exactly one.
  await windowPassed(gw)
  const base = await apiKeyScans(gw.dbUrl)
  t.equal((await gw.api(`/v1/vehicles/${VIN}`, { key: wellFormed() })).status, 401)
  t.equal(await apiKeyScans(gw.dbUrl) - base, 1, 'one lookup counted')
})

t.test('the per-address limit comes before the key lookup: a 429 costs no query', async (t) => {
  const gw = await startTestGateway(t, { VGW_API_RATE_LIMIT_PER_ADDRESS: '20' })
  const requests = Array.from({ length: 2000 }, () => ({ path: `/v1/vehicles/${VIN}`, token: wellFormed() }))
  const before = await apiKeyScans(gw.dbUrl)
  const answers = await flood(gw, requests)
  const scans = await apiKeyScans(gw.dbUrl) - before
  t.ok(count(answers, 429) > 0, `${count(answers, 429)} of 2,000 distinct made-up keys limited`)
  t.equal(count(answers, 401) + count(answers, 429), answers.length)
  t.ok(scans <= count(answers, 401), `${scans} lookups, no more than the ${count(answers, 401)} requests let through`)
})

t.test('authenticated requests are limited per API key, with Retry-After; health is never limited', async (t) => {
  const gw = await startTestGateway(t, { VGW_API_RATE_LIMIT_PER_KEY: '5', VGW_API_RATE_LIMIT_PER_ADDRESS: '2' })
  await register(gw, VIN)
  const other = await gw.store.apiKeys.create('other', ['vehicles:read'], 'test')
  // One request makes each key known; from then on it is counted per key, not per address.
  t.equal((await gw.api(`/v1/vehicles/${VIN}`, { key: other.key })).status, 200)
  await windowPassed(gw)

  const answers = await flood(gw, Array.from({ length: 40 }, () => ({ path: `/v1/vehicles/${VIN}`, token: gw.adminKey })), 40)
  t.ok(count(answers, 200) >= 1, 'a window lets some pass')
  t.ok(count(answers, 429) > 0, `${count(answers, 429)} of 40 limited`)
  t.equal(count(answers, 200) + count(answers, 429), 40)
  const limited = answers.find((a) => a.status === 429) as Answer
  t.match(JSON.parse(limited.body), { error: { code: 'GW_ERR_RATE_LIMITED', message: /API key/ } })
  t.ok(Number(limited.retryAfter) >= 1, 'Retry-After in seconds')

  const others = await flood(gw, Array.from({ length: 4 }, () => ({ path: `/v1/vehicles/${VIN}`, token: other.key })), 4)
  t.equal(count(others, 200), 4, 'another key has its own budget, above the per-address one')

  const probes = await flood(gw, Array.from({ length: 200 }, (_, i) => ({ path: i % 2 === 0 ? '/health' : '/ready' })), 20)
  t.equal(count(probes, 200), 200, '/health and /ready are never limited')
})
