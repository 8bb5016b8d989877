import t, { type Test } from 'tap'
import type { MqttClient } from 'mqtt'
import type { TransactionRecord } from '../../store/index.ts'
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts'
import { closed, connectVehicle, envelope, publishEnvelope } from '../helpers/vehicle.ts'
import { encodeEnvelope } from '../../protocol/index.ts'

const VIN = 'WVWZZZ1JZXW000030'
const OTHER = 'WVWZZZ1JZXW000031'

async function securityRows (gw: TestGateway): Promise<TransactionRecord[]> {
  await gw.gateway.log.flush()
  return (await gw.store.transactions.listForVehicle({ vin: VIN, kind: 'SECURITY', limit: 100 })).items
}

async function car (t: Test, gw: TestGateway): Promise<MqttClient> {
  return await connectVehicle(t, { port: gw.mqttPort, ca: gw.pki.ca, creds: await gw.pki.vehicle(VIN) })
}

const publishDenials: Array<[string, string, boolean, string]> = [
  ['another vehicle\'s up topic', `vehicles/${OTHER}/up`, false, 'GW_ERR_TOPIC_DENIED'],
  ['its own down topic', `vehicles/${VIN}/down`, false, 'GW_ERR_TOPIC_DENIED'],
  ['an unrelated topic', 'fleet/broadcast', false, 'GW_ERR_TOPIC_DENIED'],
  ['$SYS', '$SYS/broker/clients', false, 'GW_ERR_SYS_DENIED'],
  ['a retained message on its own up topic', `vehicles/${VIN}/up`, true, 'GW_ERR_RETAIN_DENIED']
]

for (const [what, topic, retain, code] of publishDenials) {
  t.test(`publishing to ${what} closes the connection and is recorded`, async (t) => {
    const gw = await startTestGateway(t)
    const c = await car(t, gw)
    const gone = closed(c)
    c.publish(topic, Buffer.from(encodeEnvelope(envelope())), { qos: 1, retain })
    await gone
    const rows = await securityRows(gw)
    t.equal(rows.length, 1)
    t.match(rows[0], { type: 'publish.denied', errorCode: code, status: 'denied' })
    const up = await gw.store.transactions.listForVehicle({ vin: VIN, direction: 'up', limit: 10 })
    t.equal(up.items.length, 0, 'the payload was not stored as an uplink')
  })
}

const subscribeDenials: Array<[string, string, string]> = [
  ['its own up topic', `vehicles/${VIN}/up`, 'GW_ERR_TOPIC_DENIED'],
  ['another vehicle\'s down topic', `vehicles/${OTHER}/down`, 'GW_ERR_TOPIC_DENIED'],
  ['a wildcard', 'vehicles/+/down', 'GW_ERR_WILDCARD_DENIED'],
  ['a multi-level wildcard', '#', 'GW_ERR_WILDCARD_DENIED'],
  ['$SYS', '$SYS/#', 'GW_ERR_SYS_DENIED']
]

for (const [what, topic, code] of subscribeDenials) {
  t.test(`subscribing to ${what} is refused in SUBACK (0x80) and recorded`, async (t) => {
    const gw = await startTestGateway(t)
    const c = await car(t, gw)
    const err = await c.subscribeAsync(topic, { qos: 1 }).then(() => null, (e: { packet?: { granted?: number[] } }) => e)
    t.same(err?.packet?.granted, [128], 'SUBACK return code 0x80')
    const rows = await securityRows(gw)
    t.match(rows[0], { type: 'subscribe.denied', errorCode: code })
  })
}

t.test('its own down topic may be subscribed', async (t) => {
  const gw = await startTestGateway(t)
  const c = await car(t, gw)
  // Aedes 1.x echoes the requested QoS in SUBACK even when authorizeSubscribe lowers it;
  // deliveries use the lowered QoS 1 (see README, "Known limitations").
  const granted = await c.subscribeAsync(`vehicles/${VIN}/down`, { qos: 1 })
  t.same(granted.map((g) => g.qos), [1])
  await publishEnvelope(c, VIN, envelope())
  t.same(await securityRows(gw), [])
})
