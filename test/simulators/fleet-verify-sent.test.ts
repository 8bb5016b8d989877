import pg from 'pg'
import t from 'tap'
import { verifyFleet } from '../../simulators/index.ts'
import { inbox, register, send, waitForStatus } from '../helpers/downlink.ts'
import { startTestGateway } from '../helpers/gateway.ts'
import { connectVehicle } from '../helpers/vehicle.ts'

// Issue #19 A: `vgw fleet --verify` checks that every delivered downlink has its sent row with the bytes sent.
const VIN = 'WVWZZZ1JZXW000750'

t.test('fleet verification names a delivered downlink whose sent row is missing', async (t) => {
  const gw = await startTestGateway(t)
  const fromMs = Date.now()
  await register(gw, VIN)
  const car = await connectVehicle(t, { port: gw.mqttPort, ca: gw.pki.ca, creds: await gw.pki.vehicle(VIN) })
  const box = inbox(car, VIN)
  await car.subscribeAsync(`vehicles/${VIN}/down`, { qos: 1 })
  const ids: string[] = []
  for (let i = 0; i < 3; i++) ids.push((await send(gw, VIN, { type: 'service.reminder', payload: `m${i}` })).body.id as string)
  await box.next(3)
  for (const id of ids) await waitForStatus(gw, id, 'delivered')
  await gw.gateway.transitions.flush()
  const input = { apiUrl: gw.baseUrl, fromMs, uplinks: {}, downlinks: ids.map((id) => ({ id, vin: VIN, vehicleOnline: false, answer: null })) }
  const clean = await verifyFleet(input, gw.adminKey)
  t.same(clean.mismatches, [], 'every delivered downlink has its sent row')

  const db = new pg.Client({ connectionString: gw.dbUrl })
  await db.connect()
  t.teardown(() => db.end())
  await db.query("SET session_replication_role = 'replica'")
  await db.query("DELETE FROM transactions WHERE message_id = $1 AND status = 'sent'", [ids[1]])
  const holed = await verifyFleet(input, gw.adminKey)
  t.match(holed.mismatches, [{ kind: 'downlink-sent-missing', messageId: ids[1] }], 'the one without a sent row is named')
  t.equal(holed.mismatches.length, 1)
  t.notOk(holed.ok)
})
