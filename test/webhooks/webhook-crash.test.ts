import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import t from 'tap'
import { testDatabaseUrl } from '../helpers/database.ts'
import { gatewayEnv, startVgw, startVgwForTest, type GatewayProcess } from '../helpers/gateway-process.ts'
import { testPki } from '../helpers/pki.ts'
import { connectVehicle, envelope, publishEnvelope } from '../helpers/vehicle.ts'
import { startReceiver } from './receiver.ts'

const VIN = 'WVWZZZ1JZXW000420'
const SECRET = 'a-webhook-secret-of-some-length'

async function publish (port: number, pki: Awaited<ReturnType<typeof testPki>>, n: number): Promise<string[]> {
  const car = await connectVehicle(t, { port, ca: pki.ca, creds: await pki.vehicle(VIN) })
  const ids: string[] = []
  for (let i = 0; i < n; i++) {
    const e = envelope()
    await publishEnvelope(car, VIN, e)
    ids.push(e.messageId)
  }
  car.end(true)
  return ids
}

async function api (gw: GatewayProcess, key: string, route: string, body: unknown): Promise<{ status: number, body: unknown }> {
  const res = await fetch(`http://127.0.0.1:${gw.httpPort}${route}`, {
    method: 'POST', headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' }, body: JSON.stringify(body)
  })
  return { status: res.status, body: await res.json() }
}

t.test('a gateway SIGKILLed mid-delivery: another delivers the batch again, with its delivery id; every event arrives, signed', async (t) => {
  const pki = await testPki(t)
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'vgw-webhook-crash-'))
  t.teardown(() => fs.rmSync(dataDir, { recursive: true, force: true }))
  const env = gatewayEnv(pki.paths, {
    DATABASE_URL: await testDatabaseUrl(t),
    VGW_DATA_DIR: dataDir,
    // The receiver listens on 127.0.0.1, which the destination policy refuses unless it is allowed.
    VGW_WEBHOOK_ALLOW: '127.0.0.1/32',
    VGW_WEBHOOK_POLL_MS: '50',
    VGW_WEBHOOK_BACKOFF_MS: '50',
    VGW_WEBHOOK_BATCH_SIZE: '10',
    // The lease is twice this and a second: the second gateway takes over about 3 s after the kill.
    VGW_WEBHOOK_TIMEOUT_MS: '1000'
  })
  const first = await startVgw(env)
  const key = fs.readFileSync(path.join(dataDir, 'admin.key'), 'utf8').trim()
  const receiver = await startReceiver(t, SECRET)
  // Until the vehicle's uplinks are all acknowledged the receiver answers 500 (the batch stays in
  // progress); the next POST is never answered: the gateway is killed while it waits for it.
  let armed = false
  let killed = false
  receiver.behave(() => {
    if (!armed) return 'fail'
    if (killed) return 'ok'
    killed = true
    first.child.kill('SIGKILL')
    return 'hang'
  })
  const created = await api(first, key, '/v1/webhooks', { url: receiver.url, secret: SECRET, events: ['uplink'] })
  t.equal(created.status, 201)

  const before = await publish(first.mqttPort, pki, 25)
  armed = true
  t.equal((await first.exited).signal, 'SIGKILL')
  const hung = receiver.deliveries.find((d) => d.answered === 'hang')
  t.ok(hung !== undefined && receiver.deliveries.filter((d) => d.deliveryId === hung.deliveryId).length > 1, 'the kill came while a retried POST waited for its answer')

  const second = await startVgwForTest(t, env)
  const after = await publish(second.mqttPort, pki, 7)
  const all = [...before, ...after]
  const received = (): Set<string> => new Set(receiver.accepted().map((e) => e.messageId as string))
  await receiver.waitFor('every acknowledged uplink accepted', () => all.every((id) => received().has(id)), 30_000)
  t.pass(`${all.length} uplinks, each accepted at least once`)
  t.ok(receiver.deliveries.every((d) => d.verified), 'every POST, before and after the kill, carries a valid signature')
  const again = receiver.deliveries.find((d) => d.answered === 'ok' && d.deliveryId === hung?.deliveryId)
  t.same(again?.events.map((e) => e.id), hung?.events.map((e) => e.id), 'the second gateway sent the interrupted batch again, the same events with the same delivery id')
  const order = [...new Set(receiver.accepted().map((e) => e.messageId as string))]
  t.same(order, all, 'first arrivals keep the vehicle\'s order')
})
