// Issue #20, 7: GHSA-52qw-whmv-87c5 (a client id or topic filter named after an Object.prototype
// property crashed Aedes, and in a cluster every peer) and GHSA-xxqp-5qx8-gj5q (a topic of very
// many levels threw in the topic trie), tried by a vehicle with a valid certificate through the
// vehicle ACL, and through the signed cluster bus. Aedes >= 1.1.3 fixes both; the gateway sets
// maxTopicLevels (VGW_MAX_TOPIC_LEVELS). The gateways stay up and other vehicles are untouched.
import { createHmac, randomUUID } from 'node:crypto'
import { Redis } from 'ioredis'
import type { MqttClient } from 'mqtt'
import t, { type Test } from 'tap'
import WebSocket from 'ws'
import { gatewayEnv, startVgwForTest, TEST_CLUSTER_SECRET, type GatewayProcess } from '../helpers/gateway-process.ts'
import type { TestPki, VehicleCredentials } from '../helpers/pki.ts'
import { REDIS_URL, redisTestOptions } from '../helpers/redis.ts'
import { sharedDeployment } from '../helpers/shared-database.ts'
import { attemptConnect, closed, connectVehicle, envelope, publishEnvelope } from '../helpers/vehicle.ts'

const ATTACKER = 'WVWZZZ1JZXW002401'
const BYSTANDER = 'WVWZZZ1JZXW002402'
const NAMES = ['constructor', '__proto__', 'toString', 'hasOwnProperty', 'valueOf']
const DEEP = Array.from({ length: 5000 }, (_, i) => `l${i}`).join('/')

interface AttackResult { connackCodes: Array<number | null>, subackCodes: number[], deepSubscribeClosed: boolean, deepPublishClosed: boolean }

/** The SUBACK return code for one filter (mqtt.js rejects on 0x80, the only failure code of MQTT 3.1.1 [MQTT-3.9.3-2]). */
async function subackCode (car: MqttClient, filter: string): Promise<number> {
  return await car.subscribeAsync(filter, { qos: 1 }).then((granted) => granted[0]?.qos ?? -1, () => 0x80)
}

/** Every attack of both advisories by a vehicle with a valid certificate of our CA. */
async function attack (t: Test, port: number, pki: TestPki, creds: VehicleCredentials): Promise<AttackResult> {
  const connackCodes: Array<number | null> = []
  for (const clientId of NAMES) connackCodes.push((await attemptConnect({ port, ca: pki.ca, creds, clientId })).returnCode)
  const car = await connectVehicle(t, { port, ca: pki.ca, creds })
  const subackCodes: number[] = []
  for (const filter of NAMES.flatMap((n) => [n, `${n}/${n}`, `vehicles/${n}/down`])) subackCodes.push(await subackCode(car, filter))
  await car.unsubscribeAsync(NAMES)
  if (!car.connected) subackCodes.push(-1) // the refusals must leave the session open
  const deepSubscribe = await connectVehicle(t, { port, ca: pki.ca, creds })
  const subscribeGone = closed(deepSubscribe, 5000).then(() => true, () => false)
  deepSubscribe.subscribe(DEEP, { qos: 1 })
  const deepPublish = await connectVehicle(t, { port, ca: pki.ca, creds })
  const publishGone = closed(deepPublish, 5000).then(() => true, () => false)
  deepPublish.publish(`vehicles/${creds.vin}/up/${DEEP}`, 'x', { qos: 1 })
  return { connackCodes, subackCodes, deepSubscribeClosed: await subscribeGone, deepPublishClosed: await publishGone }
}

function expectRefused (t: Test, r: AttackResult): void {
  t.same(r.connackCodes, NAMES.map(() => 5), `clientIds ${NAMES.join(', ')} with a valid certificate: CONNACK 5 (GW_ERR_CLIENT_ID_MISMATCH)`)
  t.ok(r.subackCodes.every((c) => c === 128), `subscriptions to filters named after Object.prototype properties: SUBACK 0x80 (${r.subackCodes.join(',')})`)
  t.ok(r.deepSubscribeClosed, 'a topic filter of 5,000 levels closes the connection')
  t.ok(r.deepPublishClosed, 'a publish to a topic of 5,000 levels closes the connection')
}

const alive = async (port: number): Promise<number> => (await fetch(`http://127.0.0.1:${port}/health`)).status

t.test('one gateway: a vehicle with a valid certificate tries both advisories; the gateway and another vehicle carry on', async (t) => {
  const { url, pki, store } = await sharedDeployment(t)
  await store.vehicles.register(BYSTANDER, 'DE', new Date())
  const gw = await startVgwForTest(t, gatewayEnv(pki.paths, { DATABASE_URL: url }))
  const bystander = await connectVehicle(t, { port: gw.mqttPort, ca: pki.ca, creds: await pki.vehicle(BYSTANDER) })
  expectRefused(t, await attack(t, gw.mqttPort, pki, await pki.vehicle(ATTACKER)))
  await bystanderCarriesOn(t, gw, bystander)
})

async function bystanderCarriesOn (t: Test, gw: GatewayProcess, bystander: MqttClient): Promise<void> {
  t.equal(gw.child.exitCode, null, 'the gateway process lives')
  t.equal(await alive(gw.httpPort), 200, 'and answers /health')
  t.ok(bystander.connected, 'the other vehicle stays connected')
  await publishEnvelope(bystander, BYSTANDER, envelope())
  t.pass('and its uplink is acknowledged')
}

/** A bus message signed with the cluster's secret, as a gateway sends it (gateway/edge/cluster.ts). */
function signed (topic: string, payload: string): Buffer {
  const body = Buffer.from(JSON.stringify({ id: randomUUID(), at: Date.now(), msg: { cmd: 'publish', topic, qos: 0, retain: false, dup: false }, payload: Buffer.from(payload).toString('base64') }))
  const mac = createHmac('sha256', TEST_CLUSTER_SECRET).update(topic).update('\0').update(body).digest()
  return Buffer.concat([mac, body])
}

const redis = await redisTestOptions(t)

t.test('a cluster: the same attacks on one gateway, and the names sent over the signed bus, crash no peer', redis, async (t) => {
  const { url, pki, store, adminKey } = await sharedDeployment(t)
  await store.vehicles.register(BYSTANDER, 'DE', new Date())
  const env = gatewayEnv(pki.paths, { DATABASE_URL: url, VGW_REDIS_URL: REDIS_URL })
  const one = await startVgwForTest(t, env)
  const two = await startVgwForTest(t, env)
  const bystander = await connectVehicle(t, { port: two.mqttPort, ca: pki.ca, creds: await pki.vehicle(BYSTANDER) })
  expectRefused(t, await attack(t, one.mqttPort, pki, await pki.vehicle(ATTACKER)))
  // What a peer (or anyone holding the secret) could announce: session takeovers and heartbeats of
  // clients and brokers named after Object.prototype properties, and a topic of 5,000 levels.
  const bus = new Redis(REDIS_URL)
  t.teardown(() => bus.disconnect())
  for (const name of NAMES) {
    await bus.publish(`$SYS/${name}/new/clients`, signed(`$SYS/${name}/new/clients`, name))
    await bus.publish(`$SYS/${name}/heartbeat`, signed(`$SYS/${name}/heartbeat`, name))
    await bus.publish(`$vgw/downlink/${name}`, signed(`$vgw/downlink/${name}`, ''))
  }
  await bus.publish(`$vgw/${DEEP}`, signed(`$vgw/${DEEP}`, ''))
  // Redis delivers one connection's messages in order: once this last one reaches both streams,
  // both gateways have handled every message above.
  const marker = `marker-${randomUUID()}`
  await Promise.all([one, two].map(async (gw) => await new Promise<void>((resolve, reject) => {
    const ws = new WebSocket(`ws://127.0.0.1:${gw.httpPort}/v1/stream`, { headers: { authorization: `Bearer ${adminKey}` } })
    t.teardown(() => ws.close())
    const timer = setTimeout(() => reject(new Error(`gateway on ${gw.httpPort}: the marker never came`)), 10_000)
    ws.on('message', (data: Buffer) => { if (data.toString('utf8').includes(marker)) { clearTimeout(timer); resolve() } })
    ws.once('open', () => { void bus.publish('$vgw/events', signed('$vgw/events', JSON.stringify([{ event: 'vehicle.connected', vin: BYSTANDER, marker }]))) })
    ws.once('error', reject)
  })))
  t.pass('both gateways read the bus past every message above')
  await bystanderCarriesOn(t, two, bystander)
  t.equal(one.child.exitCode, null, 'the gateway the attacker used lives')
  t.equal(await alive(one.httpPort), 200, 'and answers /health')
})
