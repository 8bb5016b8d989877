import t from 'tap'
import { inbox } from '../helpers/downlink.ts'
import { gatewayEnv, signalGroup, startVgwForTest, type GatewayProcess } from '../helpers/gateway-process.ts'
import { closed, connectVehicle } from '../helpers/vehicle.ts'
import { REDIS_URL, redisTestOptions } from '../helpers/redis.ts'
import { sharedDeployment } from '../helpers/shared-database.ts'

const VIN = 'WVWZZZ1JZXW001000'

const redis = await redisTestOptions(t)

t.test('two gateways on one PostgreSQL and one Redis serve one fleet', redis, async (t) => {
  const { url, store, adminKey, pki } = await sharedDeployment(t)
  const admin = { key: adminKey }
  const env = gatewayEnv(pki.paths, { DATABASE_URL: url, VGW_REDIS_URL: REDIS_URL })
  const a = await startVgwForTest(t, env)
  const b = await startVgwForTest(t, env)
  const send = async (gw: GatewayProcess, payload: string): Promise<string> => {
    const res = await fetch(`http://127.0.0.1:${gw.httpPort}/v1/vehicles/${VIN}/messages`, {
      method: 'POST', headers: { authorization: `Bearer ${admin.key}`, 'content-type': 'application/json' }, body: JSON.stringify({ type: 'service.reminder', payload })
    })
    t.equal(res.status, 202)
    return ((await res.json()) as { id: string }).id
  }
  const creds = await pki.vehicle(VIN)
  const listen = async (gw: GatewayProcess) => {
    const car = await connectVehicle(t, { port: gw.mqttPort, ca: pki.ca, creds })
    const box = inbox(car, VIN)
    await car.subscribeAsync(`vehicles/${VIN}/down`, { qos: 1 })
    return { car, box }
  }

  await t.test('a send accepted by A reaches the vehicle connected to B', async (t) => {
    const onB = await listen(b)
    const id = await send(a, 'from A')
    const [got] = await onB.box.next(1)
    t.equal(got?.messageId, id)
    onB.car.end(true)
  })

  await t.test('the same VIN connecting to A takes the session over from B, across the cluster', async (t) => {
    const onB = await listen(b)
    const gone = closed(onB.car, 10_000)
    const onA = await listen(a)
    await gone
    t.pass('the connection on B was closed')
    const id = await send(b, 'after the move')
    const [got] = await onA.box.next(1)
    t.equal(got?.messageId, id, 'and messages follow it to A')
    const view = await fetch(`http://127.0.0.1:${b.httpPort}/v1/vehicles/${VIN}`, { headers: { authorization: `Bearer ${admin.key}` } })
    t.match(await view.json(), { connected: true }, 'B knows the vehicle is connected, to A')
    onA.car.end(true)
  })

  await t.test('the stream of either gateway carries events committed by both', async (t) => {
    const WebSocket = (await import('ws')).default
    const other = 'WVWZZZ1JZXW001001'
    await store.vehicles.register(other, 'DE', new Date())
    const ws = new WebSocket(`ws://127.0.0.1:${a.httpPort}/v1/stream?vin=${other}&kind=MESSAGE`, { headers: { authorization: `Bearer ${admin.key}` } })
    const events: Array<{ messageId: string, status: string }> = []
    ws.on('message', (d) => events.push(JSON.parse(String(d)) as { messageId: string, status: string }))
    await new Promise((resolve) => ws.once('open', resolve))
    const res = await fetch(`http://127.0.0.1:${b.httpPort}/v1/vehicles/${other}/messages`, {
      method: 'POST', headers: { authorization: `Bearer ${admin.key}`, 'content-type': 'application/json' }, body: '{"type":"service.reminder","payload":"seen on A"}'
    })
    const { id } = await res.json() as { id: string }
    const deadline = Date.now() + 5000
    while (!events.some((e) => e.messageId === id && e.status === 'queued') && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50))
    t.ok(events.some((e) => e.messageId === id && e.status === 'queued'), 'A streams the queued event B committed')
    ws.close()
  })

  await t.test('a vehicle moving from A to B gets what was queued meanwhile; killing B sends it back to A with its messages', async (t) => {
    const onA = await listen(a)
    await onA.box.next(0)
    onA.car.end(true)
    await new Promise((resolve) => setTimeout(resolve, 300))
    const queued = [await send(a, 'one'), await send(a, 'two')]
    const onB = await listen(b)
    t.same((await onB.box.next(2)).map((e) => e.messageId), queued)
    // B dies without a word; the vehicle reconnects to A and gets what was sent meanwhile.
    signalGroup(b, 'SIGKILL')
    await closed(onB.car, 10_000)
    const later = await send(a, 'while B is dead')
    const back = await listen(a)
    // Messages whose PUBACK B had not recorded yet come again (vehicles deduplicate), then the new one.
    const deadline = Date.now() + 10_000
    while (!back.box.received.some((e) => e.messageId === later) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50))
    t.ok(back.box.received.some((e) => e.messageId === later), 'the message sent while B was dead arrives')
    t.ok(back.box.received.every((e) => [...queued, later].includes(e.messageId)), 'and nothing else')
    back.car.end(true)
  })
})
