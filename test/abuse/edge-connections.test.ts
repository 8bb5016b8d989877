// #11 D: the MQTT port bounds what a client can hold or cost before it has proved anything:
// connections per address and in total, handshakes per second, a handshake deadline, and
// log lines for refusals and failed handshakes that are sampled, not one per attempt.
import net from 'node:net'
import tls from 'node:tls'
import t, { type Test } from 'tap'
import { startTestGateway, type LogLine, type TestGateway } from '../helpers/gateway.ts'
import type { VehicleCredentials } from '../helpers/pki.ts'
import { attemptConnect, connectVehicle } from '../helpers/vehicle.ts'

const A = 'WVWZZZ1JZXW000030'

interface Probe {
  socket: net.Socket
  /** Resolves when the connection closes, whoever closed it. */
  closed: Promise<void>
  isClosed(): boolean
}

/** A TCP connection to the MQTT port that never sends a byte; resolves once connected. Destroyed at teardown. */
async function silentSocket (t: Test, gw: TestGateway, localAddress = '127.0.0.1'): Promise<Probe> {
  const socket = net.connect({ host: '127.0.0.1', port: gw.mqttPort, localAddress })
  t.teardown(() => { socket.destroy() })
  socket.on('error', () => undefined) // a reset is one way the gateway closes it
  let isClosed = false
  const closed = new Promise<void>((resolve) => socket.once('close', () => { isClosed = true; resolve() }))
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve)
    socket.once('close', () => reject(new Error('closed before connect')))
  })
  return { socket, closed, isClosed: () => isClosed }
}

async function waitFor (what: string, check: () => boolean | Promise<boolean>, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 25))
  }
}

/** Whether the gateway closed the connection within a bound (a refusal is immediate; an admitted socket waits for its handshake). */
async function closedWithin (p: Probe, ms: number): Promise<boolean> {
  return await Promise.race([p.closed.then(() => true), new Promise<boolean>((resolve) => setTimeout(() => resolve(false), ms))])
}

function lines (gw: TestGateway, match: (l: LogLine) => boolean): LogLine[] {
  return gw.logs.filter(match)
}

/**
 * A TLS handshake (no MQTT): true when it completed, false when the gateway closed the
 * connection first. With `untilClosed` it waits for the gateway to close the connection
 * (under TLS 1.3 the client is done before the gateway has read its certificate).
 */
async function handshake (gw: TestGateway, creds: VehicleCredentials | null, untilClosed = false): Promise<boolean> {
  return await new Promise((resolve) => {
    const socket = tls.connect({ host: '127.0.0.1', port: gw.mqttPort, ca: gw.pki.ca, ...(creds !== null ? { key: creds.key, cert: creds.cert } : {}) })
    let secured = false
    socket.setTimeout(5000, () => socket.destroy())
    socket.on('secureConnect', () => { secured = true; if (!untilClosed) socket.destroy() })
    socket.on('error', () => undefined)
    socket.on('close', () => resolve(secured))
  })
}

t.test('silent and trickling TCP connections are closed at the handshake deadline, counted in one log line', async (t) => {
  const gw = await startTestGateway(t, { VGW_TLS_HANDSHAKE_TIMEOUT_MS: '500' })
  const silent = await Promise.all(Array.from({ length: 40 }, () => silentSocket(t, gw)))
  // One byte of a TLS record header every 100 ms: an idle timer would never fire for it.
  const trickle = await silentSocket(t, gw)
  const drip = setInterval(() => trickle.socket.write(Buffer.from([0x16])), 100)
  t.teardown(() => clearInterval(drip))

  await waitFor('every silent connection to be closed', () => silent.every((p) => p.isClosed()), 10_000)
  t.ok(await closedWithin(trickle, 5000), 'the trickling connection is closed too')
  t.pass('all 40 silent connections closed')
  const timeouts = lines(gw, (l) => l.code === 'GW_ERR_HANDSHAKE_TIMEOUT')
  t.equal(timeouts.length, 1, 'one sampled line for 41 timeouts from one address')
  t.equal(timeouts[0]?.remoteAddress, '127.0.0.1')

  // A vehicle that completes its handshake in time is not affected.
  const creds = await gw.pki.vehicle(A)
  const v = await connectVehicle(t, { port: gw.mqttPort, ca: gw.pki.ca, creds })
  await new Promise((resolve) => setTimeout(resolve, 800))
  t.ok(v.connected, 'a connected vehicle stays connected past the deadline')
})

t.test('connections per source address are capped before TLS; other addresses still get in', async (t) => {
  const gw = await startTestGateway(t, { VGW_MAX_CONNECTIONS_PER_ADDRESS: '5', VGW_TLS_HANDSHAKE_TIMEOUT_MS: '30000' })
  const held = await Promise.all(Array.from({ length: 5 }, () => silentSocket(t, gw)))
  const extra = await Promise.all(Array.from({ length: 20 }, () => silentSocket(t, gw)))
  await waitFor('the 20 over the cap to be closed', () => extra.every((p) => p.isClosed()))
  t.notOk(held.some((p) => p.isClosed()), 'the first five stay open (they still have time for their handshake)')

  const creds = await gw.pki.vehicle(A)
  const refused = await attemptConnect({ port: gw.mqttPort, ca: gw.pki.ca, creds })
  t.match(refused, { connected: false, returnCode: null }, 'a vehicle from the same address sees the connection closed, no CONNACK')

  const other = await silentSocket(t, gw, '127.0.0.2')
  t.notOk(await closedWithin(other, 300), 'another source address is admitted')

  const limit = lines(gw, (l) => l.code === 'GW_ERR_CONNECTION_LIMIT')
  t.equal(limit.length, 1, `one sampled line for 21 refusals from one address (got ${limit.length})`)
  t.match(limit[0], { remoteAddress: '127.0.0.1', msg: 'MQTT connection refused', detail: /from this address, at most 5/ })

  for (const p of held) p.socket.destroy()
  // Ten sessions one after the other, twice the cap: each one that ends gives its place back.
  for (let i = 0; i < 10; i++) {
    await waitFor(`session ${i} to get in once the address is under its cap`, async () => (await attemptConnect({ port: gw.mqttPort, ca: gw.pki.ca, creds })).connected)
  }
})

t.test('connections in total are capped', async (t) => {
  const gw = await startTestGateway(t, { VGW_MAX_CONNECTIONS: '4', VGW_MAX_CONNECTIONS_PER_ADDRESS: '3', VGW_TLS_HANDSHAKE_TIMEOUT_MS: '30000' })
  const held = await Promise.all([
    silentSocket(t, gw, '127.0.0.1'), silentSocket(t, gw, '127.0.0.1'), silentSocket(t, gw, '127.0.0.1'), silentSocket(t, gw, '127.0.0.2')
  ])
  const over = await Promise.all([silentSocket(t, gw, '127.0.0.2'), silentSocket(t, gw, '127.0.0.3')])
  await waitFor('both connections over the total to be closed', () => over.every((p) => p.isClosed()))
  t.notOk(held.some((p) => p.isClosed()), 'the four admitted stay open')
  t.match(lines(gw, (l) => l.code === 'GW_ERR_CONNECTION_LIMIT'), [{ detail: /4 connections open, at most 4/ }])

  held[3]?.socket.destroy()
  await held[3]?.closed
  await waitFor('a new connection once one closed', async () => !(await closedWithin(await silentSocket(t, gw, '127.0.0.3'), 300)))
})

t.test('TLS handshakes per second per address are capped, and the bucket refills', async (t) => {
  const gw = await startTestGateway(t, { VGW_HANDSHAKE_RATE_PER_ADDRESS: '5' })
  const creds = await gw.pki.vehicle(A)
  const results = await Promise.all(Array.from({ length: 30 }, () => handshake(gw, creds)))
  const completed = results.filter(Boolean).length
  t.ok(completed >= 1 && completed <= 15, `about a second's worth of handshakes complete, not all (${completed} of 30)`)
  const rate = lines(gw, (l) => l.code === 'GW_ERR_HANDSHAKE_RATE')
  t.equal(rate.length, 1, `one sampled line for ${30 - completed} refusals`)
  t.match(rate[0], { remoteAddress: '127.0.0.1', detail: /over 5 TLS handshakes per second/ })
  await waitFor('a vehicle to get in once the bucket has refilled', async () => (await attemptConnect({ port: gw.mqttPort, ca: gw.pki.ca, creds })).connected)
})

t.test('failed handshakes and refused peers are counted and logged sampled, with a summary', async (t) => {
  const gw = await startTestGateway(t)
  // Not TLS at all: each is a failed handshake.
  const garbage = await Promise.all(Array.from({ length: 30 }, () => silentSocket(t, gw)))
  for (const p of garbage) p.socket.write('GET / HTTP/1.1\r\nhost: x\r\n\r\n')
  await waitFor('every non-TLS connection to be closed', () => garbage.every((p) => p.isClosed()))
  // TLS without a client certificate: the handshake completes, the peer is refused.
  for (let i = 0; i < 10; i++) t.ok(await handshake(gw, null, true))

  const failed = lines(gw, (l) => l.msg === 'TLS handshake failed')
  t.equal(failed.length, 1, `one line for 30 failed handshakes from one address (got ${failed.length})`)
  t.equal(lines(gw, (l) => l.code === 'GW_ERR_CERT_MISSING').length, 1, 'one line for 10 refused peers from one address')

  await gw.gateway.close()
  const summary = lines(gw, (l) => l.msg === 'MQTT port refusals in the last window')
  t.equal(summary.length, 1, 'the window ends in one summary line')
  t.match(summary[0], { counts: { 'handshake.failed': 30, GW_ERR_CERT_MISSING: 10 }, addresses: 1, top: { '127.0.0.1': 40 } })
})
