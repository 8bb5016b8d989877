// Issue #20, 1: a flood of GET /ready without any key must not shed the gateway's real work.
// /ready answers from a verdict one background probe refreshes every second, so the flood costs
// no database round trip and cannot fill the API pool's queue that load shedding watches.
import net from 'node:net'
import t from 'tap'
import { register } from '../helpers/downlink.ts'
import { startTestGateway } from '../helpers/gateway.ts'
import { startFlood } from '../helpers/http-flood.ts'
import { attemptConnect, type Refusal } from '../helpers/vehicle.ts'

const VIN = 'WVWZZZ1JZXW002001'
const CONNECTIONS = 600

async function until (what: string, check: () => Promise<boolean>, ms = 20_000): Promise<void> {
  const deadline = Date.now() + ms
  while (!await check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
}

t.test(`${CONNECTIONS} keep-alive connections looping GET /ready: admin calls and vehicle connects still succeed`, async (t) => {
  // The event-loop bound is raised above this shared machine's noise (test files run in parallel on
  // two cores); the flood, whose every probe waited for a database connection, went past the
  // database-queue bound (500) by itself, and must not now block the loop for a second either.
  const gw = await startTestGateway(t, { VGW_OVERLOAD_MAX_EVENT_LOOP_DELAY_MS: '1000' })
  await register(gw, VIN)
  const creds = await gw.pki.vehicle(VIN)
  const flood = startFlood({ url: gw.baseUrl, path: '/ready', connections: CONNECTIONS })
  t.teardown(() => flood.stop())
  // The attack is in full swing once every connection has had answers for a while.
  await until('the flood to be answered', async () => ((await flood.statuses())['200'] ?? 0) >= CONNECTIONS * 5)

  const calls: number[] = []
  const connects: Refusal[] = []
  for (let i = 0; i < 8; i++) {
    calls.push((await gw.api(`/v1/vehicles/${VIN}`)).status)
    connects.push(await attemptConnect({ port: gw.mqttPort, ca: gw.pki.ca, creds }))
  }
  const answers = await flood.stop()
  t.comment(`flood answers by status: ${JSON.stringify(answers)}; admin calls ${JSON.stringify(calls)}; CONNACK codes ${JSON.stringify(connects.map((c) => c.returnCode))}`)
  t.ok((answers['200'] ?? 0) >= CONNECTIONS * 5, 'the flood was answered (a balancer still sees the gateway ready)')
  t.same(calls, calls.map(() => 200), 'every admin-key call during the flood got 200')
  t.same(connects.map((c) => c.returnCode), connects.map(() => 0), 'every vehicle connect during the flood got CONNACK 0')
})

t.test('/ready answers from a probe refreshed every second: the database is asked about once a second, whatever the request rate', async (t) => {
  const gw = await startTestGateway(t)
  const asked = (): number => gw.gateway.readiness.probes
  const before = asked()
  const started = Date.now()
  const flood = startFlood({ url: gw.baseUrl, path: '/ready', connections: 50 })
  t.teardown(() => flood.stop())
  await until('2,000 answers over 3 s', async () => ((await flood.statuses())['200'] ?? 0) >= 2000 && Date.now() - started >= 3000)
  const answers = await flood.stop()
  const seconds = (Date.now() - started) / 1000
  const probes = asked() - before
  t.comment(`${answers['200'] ?? 0} answers in ${seconds.toFixed(1)} s, ${probes} database probes`)
  t.ok(probes <= Math.ceil(seconds) + 1, `at most one probe a second (${probes} in ${seconds.toFixed(1)} s)`)
})

t.test('one address holds at most VGW_HTTP_MAX_CONNECTIONS_PER_ADDRESS REST connections; the next is closed at accept', async (t) => {
  const gw = await startTestGateway(t, { VGW_HTTP_MAX_CONNECTIONS_PER_ADDRESS: '4' })
  /** A raw connection that sends GET /health and reports the first bytes back, or null when closed without any. */
  const probe = (): { socket: net.Socket, answer: Promise<string | null> } => {
    const socket = net.connect(gw.httpPort, '127.0.0.1')
    t.teardown(() => socket.destroy())
    const answer = new Promise<string | null>((resolve) => {
      socket.once('data', (d: Buffer) => resolve(d.toString('latin1')))
      socket.once('close', () => resolve(null))
      socket.on('error', () => undefined)
    })
    socket.write('GET /health HTTP/1.1\r\nhost: x\r\n\r\n')
    return { socket, answer }
  }
  const held = Array.from({ length: 4 }, probe)
  for (const h of held) t.match(await h.answer, /^HTTP\/1\.1 200/, 'within the cap: answered, and kept alive')
  t.equal(await probe().answer, null, 'the fifth is closed without an answer')
  const gone = new Promise((resolve) => held[0]?.socket.once('close', resolve))
  held[0]?.socket.destroy()
  await gone
  // The gateway counts the close when its side of the socket closes: poll until a new one is admitted.
  const deadline = Date.now() + 5000
  let again: string | null = null
  while (again === null && Date.now() < deadline) again = await probe().answer
  t.match(again, /^HTTP\/1\.1 200/, 'once one closes, a new one is admitted')
  t.ok(gw.logs.some((l) => l.code === 'GW_ERR_CONNECTION_LIMIT'), 'the refusal is logged with its code')
})
