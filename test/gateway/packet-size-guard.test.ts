import t from 'tap'
import mqttPacket from 'mqtt-packet'
import { MqttFrameScanner } from '../../gateway/edge/packet-size-guard.ts'
import { startTestGateway } from '../helpers/gateway.ts'
import { closed, connectVehicle, envelope, publishEnvelope } from '../helpers/vehicle.ts'

const VIN = 'WVWZZZ1JZXW000050'

function publishBytes (payloadBytes: number): Buffer {
  return mqttPacket.generate({ cmd: 'publish', topic: `vehicles/${VIN}/up`, payload: Buffer.alloc(payloadBytes), qos: 1, messageId: 1, retain: false, dup: false })
}

t.test('the scanner follows frames across chunk boundaries', async (t) => {
  const scanner = new MqttFrameScanner(1000)
  const stream = Buffer.concat([publishBytes(900), publishBytes(10), mqttPacket.generate({ cmd: 'pingreq' }), publishBytes(0)])
  for (let i = 0; i < stream.length; i += 7) t.equal(scanner.scan(stream.subarray(i, i + 7)), null)
  const big = publishBytes(1200)
  t.ok((scanner.scan(big.subarray(0, 3)) ?? 0) > 1000, 'an oversized announcement is seen in the header, before the body')
})

t.test('a remaining length of more than four bytes is malformed', async (t) => {
  const scanner = new MqttFrameScanner(1 << 30)
  t.equal(scanner.scan(Buffer.from([0x30, 0xff, 0xff, 0xff, 0xff, 0x01])), Number.POSITIVE_INFINITY)
})

t.test('an oversized packet closes the connection and is recorded; others are unaffected', async (t) => {
  const gw = await startTestGateway(t, { VGW_MAX_ENVELOPE_BYTES: '4096', VGW_MAX_PACKET_BYTES: '16384' })
  const creds = await gw.pki.vehicle(VIN)
  const car = await connectVehicle(t, { port: gw.mqttPort, ca: gw.pki.ca, creds })
  const gone = closed(car)
  car.publish(`vehicles/${VIN}/up`, Buffer.alloc(64 * 1024, 1), { qos: 1 })
  await gone
  await gw.gateway.log.flush()
  const rows = (await gw.store.transactions.listForVehicle({ vin: VIN, kind: 'SECURITY', limit: 10 })).items
  t.match(rows, [{ type: 'packet.too_large', errorCode: 'GW_ERR_PACKET_TOO_LARGE' }])
  const up = await gw.store.transactions.listForVehicle({ vin: VIN, direction: 'up', limit: 10 })
  t.equal(up.items.length, 0)

  const again = await connectVehicle(t, { port: gw.mqttPort, ca: gw.pki.ca, creds })
  const e = envelope()
  await publishEnvelope(again, VIN, e)
  t.equal((await gw.store.transactions.findByMessageId(VIN, e.messageId)).length, 1, 'the gateway still serves the vehicle')
})
