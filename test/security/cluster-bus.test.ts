import { createRequire } from 'node:module'
import { Redis } from 'ioredis'
import t from 'tap'
import WebSocket from 'ws'
import { gatewayEnv, startVgwForTest, type GatewayProcess } from '../helpers/gateway-process.ts'
import { REDIS_URL, redisTestOptions } from '../helpers/redis.ts'
import { sharedDeployment } from '../helpers/shared-database.ts'
import { connectVehicle } from '../helpers/vehicle.ts'

// mqemitter-redis' own wire format (msgpack of {id, msg}): what the forger of the issue sent.
const msgpack = createRequire(import.meta.url)('msgpack-lite') as { encode(value: unknown): Buffer }
const VIN = 'WVWZZZ1JZXW000301'

const redis = await redisTestOptions(t)

t.test('a Redis client that is not a gateway can neither deliver, forge events, close sessions nor crash a gateway', redis, async (t) => {
  const { url, pki, adminKey, store } = await sharedDeployment(t)
  await store.vehicles.register(VIN, 'DE', new Date())
  const env = gatewayEnv(pki.paths, { DATABASE_URL: url, VGW_REDIS_URL: REDIS_URL })
  const one = await startVgwForTest(t, env)
  const two = await startVgwForTest(t, env)
  const car = await connectVehicle(t, { port: one.mqttPort, ca: pki.ca, creds: await pki.vehicle(VIN) })
  const received: string[] = []
  car.on('message', (_topic, payload: Buffer) => received.push(payload.toString('latin1')))
  await car.subscribeAsync(`vehicles/${VIN}/down`, { qos: 1 })
  const events: string[] = []
  const ws = new WebSocket(`ws://127.0.0.1:${two.httpPort}/v1/stream`, { headers: { authorization: `Bearer ${adminKey}` } })
  t.teardown(() => ws.close())
  ws.on('message', (data: Buffer) => events.push(data.toString('utf8')))
  await new Promise((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject) })

  const forger = new Redis(REDIS_URL)
  t.teardown(() => forger.disconnect())
  const forged = (topic: string, payload: string): Buffer => msgpack.encode({ id: `forged-${Math.random()}`, msg: { cmd: 'publish', topic, payload: Buffer.from(payload), qos: 0, retain: false, dup: false } })
  const fakeEvent = JSON.stringify([{ event: 'message.status', vin: VIN, status: 'FORGED-EVENT' }])
  await forger.publish(`vehicles/${VIN}/down`, forged(`vehicles/${VIN}/down`, 'FORGED-BY-REDIS'))
  await forger.publish('$vgw/events', forged('$vgw/events', fakeEvent))
  await forger.publish('$vgw/events', Buffer.concat([Buffer.alloc(32), Buffer.from(JSON.stringify({ id: 'x', at: Date.now(), msg: { topic: '$vgw/events' }, payload: Buffer.from(fakeEvent).toString('base64') }))]))
  await forger.publish(`$SYS/forged-broker/new/clients`, forged('$SYS/forged-broker/new/clients', VIN))
  await forger.publish('$vgw/revoked', forged('$vgw/revoked', '[]'))
  for (const channel of [`vehicles/${VIN}/down`, '$vgw/events', '$vgw/downlink/' + VIN, '$SYS/x/new/clients']) {
    await forger.publish(channel, Buffer.from([0xc1, 0xc1, 0xc1, 0xc1]))
  }
  // A negative can only be shown by waiting: long enough for a bus message to arrive many times over.
  await new Promise((resolve) => setTimeout(resolve, 1500))
  t.same(received, [], 'nothing forged reached the vehicle')
  t.notOk(events.some((e) => e.includes('FORGED')), 'nothing forged reached the stream')
  t.ok(car.connected, 'the forged session close closed nothing')
  const alive = async (gw: GatewayProcess): Promise<number> => (await fetch(`http://127.0.0.1:${gw.httpPort}/health`)).status
  t.same([await alive(one), await alive(two)], [200, 200], 'both gateways keep serving')
  t.equal(one.child.exitCode, null)
  t.equal(two.child.exitCode, null)

  const res = await fetch(`http://127.0.0.1:${two.httpPort}/v1/vehicles/${VIN}/messages`, {
    method: 'POST', headers: { authorization: `Bearer ${adminKey}`, 'content-type': 'application/json' }, body: JSON.stringify({ type: 'service.reminder', payload: 'genuine' })
  })
  t.equal(res.status, 202)
  const deadline = Date.now() + 10_000
  while (!received.some((p) => p.includes('genuine')) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50))
  t.ok(received.some((p) => p.includes('genuine')), 'a genuine send through the other gateway still arrives over the signed bus')
  // The stream's frames travel on their own socket: wait for them as for the vehicle's message.
  const sent = (await res.json()) as { id: string }
  while (!events.some((e) => e.includes(sent.id)) && Date.now() < deadline + 5_000) await new Promise((resolve) => setTimeout(resolve, 50))
  t.ok(events.some((e) => e.includes(sent.id)), 'and the stream still carries the genuine send\'s events')
})
