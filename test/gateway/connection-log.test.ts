import { X509Certificate } from 'node:crypto'
import t from 'tap'
import { startTestGateway } from '../helpers/gateway.ts'
import { connectVehicle } from '../helpers/vehicle.ts'

const VIN = 'WVWZZZ1JZXW000060'

t.test('connects and disconnects are logged with time, certificate fingerprint and address', async (t) => {
  const gw = await startTestGateway(t)
  const creds = await gw.pki.vehicle(VIN, 'US')
  const before = Date.now()
  const car = await connectVehicle(t, { port: gw.mqttPort, ca: gw.pki.ca, creds })
  await new Promise<void>((resolve) => car.end(false, {}, () => resolve()))
  await new Promise((resolve) => setTimeout(resolve, 200))
  await gw.gateway.log.flush()

  const rows = (await gw.store.transactions.listForVehicle({ vin: VIN, kind: 'CONNECTION', limit: 10 })).items.reverse()
  t.same(rows.map((r) => r.type), ['connect', 'disconnect'])
  const fingerprint = new X509Certificate(creds.cert).fingerprint256
  for (const r of rows) {
    t.match(r, { direction: 'system', market: 'US', details: { fingerprint, remoteAddress: '127.0.0.1', clientId: VIN } })
    t.ok(r.occurredAt.getTime() >= before - 5 && r.occurredAt.getTime() <= Date.now(), 'event time is now')
  }

  const res = await gw.api(`/v1/vehicles/${VIN}/transactions?kind=CONNECTION`)
  const items = (res.body as { items: Array<Record<string, unknown>> }).items
  t.same(items.map((i) => i.type), ['disconnect', 'connect'], 'newest first over the API')
  t.match(items[0], { direction: 'system', details: { fingerprint } })
})
