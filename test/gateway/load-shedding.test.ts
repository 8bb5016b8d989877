import pg from 'pg'
import t from 'tap'
import { send } from '../helpers/downlink.ts'
import { startTestGateway } from '../helpers/gateway.ts'
import { attemptConnect, connectVehicle, envelope, publishEnvelope } from '../helpers/vehicle.ts'

// Load shedding (gateway/overload.ts, gateway/api/load-shedding.ts): past a bound the gateway
// answers REST 503 GW_ERR_OVERLOADED with Retry-After at once, and new vehicles CONNACK 3;
// what it already accepted carries on, and it takes work again once the pressure ends.

const VIN = 'WVWZZZ1JZXW000401'
const OTHER = 'WVWZZZ1JZXW000402'
const BODY = { type: 'service.reminder', payload: 'hello' }

interface Answer { status: number, retryAfter: string | null, body: { error?: { code: string, message: string } } }

/** A POST's answer; null when none came within `timeoutMs`. */
async function post (baseUrl: string, key: string, path: string, body: unknown, timeoutMs = 10_000): Promise<Answer | null> {
  try {
    const res = await fetch(baseUrl + path, {
      method: 'POST', headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' }, body: JSON.stringify(body), signal: AbortSignal.timeout(timeoutMs)
    })
    return { status: res.status, retryAfter: res.headers.get('retry-after'), body: await res.json() as Answer['body'] }
  } catch (err) {
    if (err instanceof Error && err.name === 'TimeoutError') return null
    throw err
  }
}

t.test('sends waiting for the database past the bound: the next request gets 503 GW_ERR_OVERLOADED with Retry-After at once; the accepted ones commit; recovery', async (t) => {
  // One send slot and a queue bound of 2: one send commits, two wait, the fourth is refused.
  const gw = await startTestGateway(t, { VGW_API_SEND_CONCURRENCY: '1', VGW_OVERLOAD_MAX_DB_QUEUE: '2', VGW_OVERLOAD_RETRY_AFTER_S: '3' })
  await gw.store.vehicles.register(VIN, 'DE', new Date())
  // The pressure: a lock that holds every insert into messages until the test lets go.
  const locker = new pg.Client({ connectionString: gw.dbUrl })
  await locker.connect()
  t.teardown(() => locker.end())
  await locker.query('BEGIN')
  await locker.query('LOCK TABLE messages IN EXCLUSIVE MODE')

  const path = `/v1/vehicles/${VIN}/messages`
  const first = post(gw.baseUrl, gw.adminKey, path, BODY)
  await waitFor(async () => (await lockWaiters(locker)) === 1)
  // Each further send waits in the send queue (the slot is held) until one finds the queue past its bound.
  // A send still waiting after 300 ms is left waiting server-side (the client gives up on its answer).
  let queued = 0
  let refused: Answer | null = null
  try {
    while (refused === null && queued < 10) {
      const r = await post(gw.baseUrl, gw.adminKey, path, BODY, 300)
      if (r === null) queued++
      else if (r.status === 503) refused = r
      else throw new Error(`a send was answered ${r.status} while the database was held`)
    }
  } catch (err) {
    await locker.query('ROLLBACK')
    throw err
  }
  t.equal(queued, 2, `two sends waited (the bound), the third was refused: ${queued} waited`)
  t.match(refused, { status: 503, retryAfter: '3', body: { error: { code: 'GW_ERR_OVERLOADED', message: /overloaded.*wait for the database/ } } }, '503, catalogue body, Retry-After')
  const health = await fetch(`${gw.baseUrl}/health`)
  t.equal(health.status, 200, '/health still answers')
  const ready = await fetch(`${gw.baseUrl}/ready`)
  t.equal(ready.status, 200, '/ready still answers')
  const metrics = await fetch(`${gw.baseUrl}/metrics`, { headers: { authorization: `Bearer ${gw.adminKey}` } })
  t.equal(metrics.status, 200, '/metrics still answers')
  const read = await fetch(`${gw.baseUrl}/v1/vehicles/${VIN}`, { headers: { authorization: `Bearer ${gw.adminKey}` } })
  t.equal(read.status, 503, 'other API calls are shed too')

  await locker.query('ROLLBACK')
  t.equal((await first)?.status, 202, 'the send held in the database commits')
  const count = async (): Promise<number> => (await locker.query<{ n: number }>('SELECT count(*)::int AS n FROM messages')).rows[0]?.n ?? -1
  await waitFor(async () => await count() === 3)
  t.equal((await send(gw, VIN, BODY)).status, 202, 'once the queue drained, sends are accepted again')
  t.equal(await count(), 4, 'the held and queued sends committed; the refused one left no row')
})

t.test('event-loop delay past the bound: REST 503, new vehicles CONNACK 3 over mTLS, open sessions untouched; recovery', async (t) => {
  let delayMs = 0
  const gw = await startTestGateway(t, { VGW_OVERLOAD_MAX_EVENT_LOOP_DELAY_MS: '100' }, { eventLoopDelayMs: () => delayMs })
  await gw.store.vehicles.register(VIN, 'DE', new Date())
  const open = await connectVehicle(t, { port: gw.mqttPort, ca: gw.pki.ca, creds: await gw.pki.vehicle(VIN) })
  const otherCreds = await gw.pki.vehicle(OTHER)

  delayMs = 150
  const refused = await post(gw.baseUrl, gw.adminKey, `/v1/vehicles/${VIN}/messages`, BODY)
  t.match(refused, { status: 503, retryAfter: '1', body: { error: { code: 'GW_ERR_OVERLOADED', message: /event-loop delay 150 ms/ } } }, 'REST: 503 with Retry-After')
  const connack = await attemptConnect({ port: gw.mqttPort, ca: gw.pki.ca, creds: otherCreds })
  t.match(connack, { connected: false, returnCode: 3 }, 'a new vehicle connection: CONNACK 3, server unavailable')
  await publishEnvelope(open, VIN, envelope())
  t.ok(open.connected, 'the open session still publishes and gets its PUBACK')

  delayMs = 0
  t.equal((await send(gw, VIN, BODY)).status, 202, 'REST accepted again')
  t.match(await attemptConnect({ port: gw.mqttPort, ca: gw.pki.ca, creds: otherCreds }), { connected: true }, 'vehicles connect again')
})

async function lockWaiters (db: pg.Client): Promise<number> {
  const { rows } = await db.query<{ n: number }>("SELECT count(*)::int AS n FROM pg_locks WHERE NOT granted AND relation = 'messages'::regclass")
  return rows[0]?.n ?? 0
}

async function waitFor (check: () => Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!await check()) {
    if (Date.now() > deadline) throw new Error('condition not reached in time')
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
}
