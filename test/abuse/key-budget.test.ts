// Issue #20, 3: made-up tokens from one address use up that address's budget, and must not
// lock out a valid key used from the same address, however rarely it is used.
import t from 'tap'
import { register } from '../helpers/downlink.ts'
import { startTestGateway } from '../helpers/gateway.ts'
import { startFlood } from '../helpers/http-flood.ts'

const VIN = 'WVWZZZ1JZXW002101'

t.test('a junk-token flood from one address: a rarely used key from that address still gets 200, the junk 401/429', async (t) => {
  const gw = await startTestGateway(t)
  await register(gw, VIN)
  // A Prometheus scrape or an operator's console: used now and then, so never warm in a per-key cache.
  const created = await gw.api('/v1/keys', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name: 'scraper', scopes: ['vehicles:read'] }) })
  const rare = created.body as { key: string }
  const flood = startFlood({ url: gw.baseUrl, path: `/v1/vehicles/${VIN}`, connections: 8, junkTokens: true, ratePerSecond: 190 })
  t.teardown(() => flood.stop())
  const answered = async (): Promise<number> => Object.values(await flood.statuses()).reduce((a, b) => a + b, 0)
  const floodPast = async (n: number): Promise<void> => {
    const deadline = Date.now() + 20_000
    while (await answered() < n) {
      if (Date.now() > deadline) throw new Error(`the flood did not reach ${n} answers`)
      await new Promise((resolve) => setTimeout(resolve, 50))
    }
  }
  const deadline = Date.now() + 20_000
  while (((await flood.statuses())['429'] ?? 0) === 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50))

  const statuses: number[] = []
  for (let i = 0; i < 5; i++) {
    // A call now and then, each after another 150 junk requests (most of a second of the flood).
    await floodPast(await answered() + 150)
    statuses.push((await gw.api(`/v1/vehicles/${VIN}`, { key: rare.key })).status)
  }
  const junk = await flood.stop()
  t.comment(`junk answers by status: ${JSON.stringify(junk)}; the rare key's calls: ${JSON.stringify(statuses)}`)
  t.same(statuses, [200, 200, 200, 200, 200], 'every call with the valid key got 200')
  t.ok((junk['429'] ?? 0) > 0, 'the junk met the address budget (429)')
  t.equal((junk['401'] ?? 0) + (junk['429'] ?? 0), Object.values(junk).reduce((a, b) => a + b, 0), 'and every junk request was refused: 401 or 429')
})
