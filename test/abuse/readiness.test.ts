// Readiness that tells the truth (issue #11, B): a wedged commit path takes the gateway out
// of the balancer (/ready 503 GW_ERR_COMMIT_STALLED) and it comes back by itself.
import pg from 'pg'
import t from 'tap'
import { register } from '../helpers/downlink.ts'
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts'
import { connectVehicle, envelope, publishEnvelope } from '../helpers/vehicle.ts'

const VIN = 'WVWZZZ1JZXW000821'

/** Polls /ready until `accept` holds, or returns the last answer at the deadline. */
async function readyUntil (gw: TestGateway, accept: (r: { status: number, body: unknown }) => boolean, ms = 15_000): Promise<{ status: number, body: unknown }> {
  const deadline = Date.now() + ms
  for (;;) {
    const r = await gw.api('/ready', { key: null })
    if (accept(r) || Date.now() > deadline) return r
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
}

t.test('a wedged commit path makes /ready answer 503 GW_ERR_COMMIT_STALLED, and it recovers by itself', async (t) => {
  const gw = await startTestGateway(t, { VGW_COMMIT_STALL_MS: '500' })
  await register(gw, VIN)
  const car = await connectVehicle(t, { port: gw.mqttPort, ca: gw.pki.ca, creds: await gw.pki.vehicle(VIN) })
  t.match(await gw.api('/ready', { key: null }), { status: 200, body: { status: 'ready' } })

  // Another session holds the log's table: every commit of the gateway waits behind it.
  const locker = new pg.Client({ connectionString: gw.dbUrl })
  await locker.connect()
  t.teardown(() => locker.end())
  await locker.query('BEGIN')
  await locker.query('LOCK TABLE transactions IN ACCESS EXCLUSIVE MODE')
  let acked = false
  const uplink = publishEnvelope(car, VIN, envelope()).then(() => { acked = true })

  const stalled = await readyUntil(gw, (r) => r.status === 503)
  t.match(stalled, { status: 503, body: { error: { code: 'GW_ERR_COMMIT_STALLED', message: /transaction log commit/ } } }, '/ready names the stall')
  t.equal(acked, false, 'the uplink is not acknowledged while its commit cannot happen')
  t.equal((await gw.api('/health', { key: null })).status, 200, '/health still answers: the process lives')

  await locker.query('ROLLBACK')
  await uplink
  t.match(await readyUntil(gw, (r) => r.status === 200), { status: 200, body: { status: 'ready' } }, 'ready again once commits progress, without a restart')
})
