// Webhooks as a way into the gateway's network (issue #20, item 4): a webhook URL naming the
// database port, the metadata service, loopback or a private network, or a host name that
// resolves to one of them, must never get a connection; and what a failed POST reports must be
// a class, not socket text that tells an open port from a closed one. No test here sends a packet
// to anything but 127.0.0.1: every refusal happens before a connection is made.
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import t, { type Test } from 'tap'
import { DestinationPolicy } from '../../gateway/webhooks/destination-policy.ts'
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts'
import { connectVehicle, envelope, publishEnvelope } from '../helpers/vehicle.ts'

const VIN = 'WVWZZZ1JZXW000431'
const FAST = { VGW_WEBHOOK_POLL_MS: '50', VGW_WEBHOOK_BACKOFF_MS: '50', VGW_WEBHOOK_TIMEOUT_MS: '2000' }

interface Listener { port: number, connections: number, requests: number }

/** A plain HTTP server on 127.0.0.1 that counts the TCP connections it gets and answers 204. */
async function listener (t: Test): Promise<Listener> {
  const state = { port: 0, connections: 0, requests: 0 }
  const server = http.createServer((req, res) => { state.requests++; req.resume(); res.writeHead(204).end() })
  server.on('connection', () => { state.connections++ })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()) }))
  state.port = (server.address() as AddressInfo).port
  return state
}

/** A port on 127.0.0.1 nobody listens on (it was free a moment ago). */
async function closedPort (): Promise<number> {
  const server = http.createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  await new Promise<void>((resolve) => server.close(() => resolve()))
  return port
}

async function register (gw: TestGateway, url: string): Promise<{ status: number, body: { id?: string, error?: { code: string, message: string } } }> {
  const res = await gw.api('/v1/webhooks', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ url, events: ['uplink'] }) })
  return res as { status: number, body: { id?: string, error?: { code: string, message: string } } }
}

async function uplink (t: Test, gw: TestGateway): Promise<void> {
  const car = await connectVehicle(t, { port: gw.mqttPort, ca: gw.pki.ca, creds: await gw.pki.vehicle(VIN) })
  await publishEnvelope(car, VIN, envelope())
}

/** The webhook's lastError once an attempt has failed. */
async function lastError (gw: TestGateway, id: string): Promise<string | null> {
  const deadline = Date.now() + 10_000
  for (;;) {
    const w = (await gw.api(`/v1/webhooks/${id}`)).body as { delivery: { lastError: string | null } | null }
    if (w.delivery?.lastError != null || Date.now() > deadline) return w.delivery?.lastError ?? null
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
}

t.test('registering a webhook to a literal loopback, private, link-local or metadata address is refused', async (t) => {
  const gw = await startTestGateway(t)
  const urls = [
    'http://127.0.0.1:5432/', // the database
    `http://127.0.0.1:${gw.httpPort}/v1/keys`, // the gateway itself
    'http://[::1]:8080/',
    'http://169.254.169.254/latest/meta-data/iam/security-credentials/',
    'http://[fd00:ec2::254]/latest/meta-data/',
    'http://10.1.2.3/',
    'http://172.20.0.5:6379/',
    'http://192.168.1.1/',
    'http://[::ffff:127.0.0.1]:5432/', // IPv4-mapped IPv6
    'http://[::ffff:a9fe:a9fe]/', // 169.254.169.254, mapped
    'http://[fe80::1]/',
    'http://0x7f.1:5432/', // 127.0.0.1 in another spelling (the URL parser normalises it)
    'http://2130706433/',
    'http://0.0.0.0:5432/'
  ]
  for (const url of urls) {
    const res = await register(gw, url)
    t.equal(res.status, 400, `${url}: 400`)
    t.equal(res.body.error?.code, 'GW_ERR_WEBHOOK_DESTINATION_FORBIDDEN', `${url}: GW_ERR_WEBHOOK_DESTINATION_FORBIDDEN`)
  }
  t.same(((await gw.api('/v1/webhooks')).body as { items: unknown[] }).items, [], 'no webhook was created')
})

t.test('a host name that resolves to loopback is refused at connect time: no connection, and the class is reported', async (t) => {
  const target = await listener(t)
  const gw = await startTestGateway(t, FAST)
  const res = await register(gw, `http://localhost:${target.port}/hook`)
  t.equal(res.status, 201, 'a host name is accepted at registration (it is checked on every address it resolves to, when connecting)')
  await uplink(t, gw)
  t.equal(await lastError(gw, res.body.id ?? ''), 'destination_forbidden', 'lastError is the class destination_forbidden')
  t.equal(target.connections, 0, 'the receiver on 127.0.0.1 never got a connection')
})

t.test('errors are classes, not socket text: a closed port is connect_refused', async (t) => {
  const port = await closedPort()
  const gw = await startTestGateway(t, { ...FAST, VGW_WEBHOOK_ALLOW: '127.0.0.1/32' })
  const res = await register(gw, `http://127.0.0.1:${port}/hook`)
  t.equal(res.status, 201, 'allowed by VGW_WEBHOOK_ALLOW')
  await uplink(t, gw)
  t.equal(await lastError(gw, res.body.id ?? ''), 'connect_refused')
})

t.test('a destination listed in VGW_WEBHOOK_ALLOW is delivered to; another port of the same host is not', async (t) => {
  const target = await listener(t)
  const other = await listener(t)
  const gw = await startTestGateway(t, { ...FAST, VGW_WEBHOOK_ALLOW: `127.0.0.1:${target.port}` })
  t.equal((await register(gw, `http://127.0.0.1:${other.port}/hook`)).status, 400, 'another port of 127.0.0.1 is refused')
  t.equal((await register(gw, `http://127.0.0.1:${target.port}/hook`)).status, 201, 'the listed host:port is accepted')
  t.equal((await register(gw, `http://localhost:${target.port}/hook`)).status, 201, 'and so is a name, checked when connecting')
  await uplink(t, gw)
  const deadline = Date.now() + 10_000
  while (target.requests < 2 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50))
  t.equal(target.requests, 2, 'both webhooks delivered to the listed destination (localhost through its 127.0.0.1 address)')
  t.equal(other.connections, 0, 'the unlisted port got nothing')
})

t.test('the policy: IPv4 and IPv6, IPv4 inside IPv6, and the allow list', async (t) => {
  const none = new DestinationPolicy([])
  const forbidden = ['127.0.0.1', '10.0.0.1', '172.31.255.255', '192.168.0.1', '169.254.169.254', '100.100.100.200', '168.63.129.16', '0.0.0.0',
    '::1', '::', 'fe80::1', 'fd00:ec2::254', 'fc00::1', '::ffff:127.0.0.1', '::ffff:7f00:1', '::ffff:10.0.0.1', '64:ff9b::a9fe:a9fe', '2002:7f00:1::1', '::127.0.0.1', 'ff02::1']
  for (const a of forbidden) t.notOk(none.permits(a, 80, a), `${a} is forbidden`)
  for (const a of ['93.184.215.14', '2606:2800:21f:cb07:6820:80da:af6b:8b2c', '::ffff:93.184.215.14']) t.ok(none.permits(a, 80, a), `${a} is public`)
  const allow = new DestinationPolicy(['10.0.0.0/8', '[::1]:8443', 'hooks.internal:443'])
  t.ok(allow.permits('10.9.8.7', 80, '10.9.8.7'), 'a CIDR allows every port')
  t.ok(allow.permits('::ffff:10.9.8.7', 80, 'x'), 'also through a mapped address')
  t.ok(allow.permits('::1', 8443, '::1'), 'host:port allows that port')
  t.notOk(allow.permits('::1', 8444, '::1'), 'and no other')
  t.ok(allow.permits('192.168.1.5', 443, 'hooks.internal'), 'a name listed with its port may resolve to an internal address')
  t.throws(() => new DestinationPolicy(['10.0.0.0/33']), /expected a CIDR/)
  t.throws(() => new DestinationPolicy(['nonsense entry']), /expected a CIDR/)
})
