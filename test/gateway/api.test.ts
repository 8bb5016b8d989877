import t from 'tap'
import { startTestGateway } from '../helpers/gateway.ts'
import { connectVehicle } from '../helpers/vehicle.ts'

const VIN = 'WVWZZZ1JZXW000070'

t.test('REST errors use catalogue codes and the right status', async (t) => {
  const gw = await startTestGateway(t)
  await connectVehicle(t, { port: gw.mqttPort, ca: gw.pki.ca, creds: await gw.pki.vehicle(VIN) })
  const reader = await gw.store.apiKeys.create('reader', ['vehicles:read'])

  const cases: Array<[string, string, string | null, number, string]> = [
    ['no key', `/v1/vehicles/${VIN}`, null, 401, 'GW_ERR_UNAUTHENTICATED'],
    ['an unknown key', `/v1/vehicles/${VIN}`, 'vgw_not-a-key', 401, 'GW_ERR_UNAUTHENTICATED'],
    ['a key without the scope', `/v1/vehicles/${VIN}/transactions`, reader.key, 403, 'GW_ERR_FORBIDDEN'],
    ['an invalid VIN', '/v1/vehicles/IOQ123', gw.adminKey, 400, 'GW_ERR_INVALID_VIN'],
    ['an unknown vehicle', '/v1/vehicles/WVWZZZ1JZXW999999', gw.adminKey, 404, 'GW_ERR_VEHICLE_NOT_FOUND'],
    ['a cursor we never issued', `/v1/vehicles/${VIN}/transactions?cursor=abc`, gw.adminKey, 400, 'GW_ERR_INVALID_CURSOR'],
    ['a limit out of range', `/v1/vehicles/${VIN}/transactions?limit=5000`, gw.adminKey, 400, 'GW_ERR_VALIDATION'],
    ['an unknown direction', `/v1/vehicles/${VIN}/transactions?direction=sideways`, gw.adminKey, 400, 'GW_ERR_VALIDATION'],
    ['a bad time', `/v1/vehicles/${VIN}/transactions?from=yesterday`, gw.adminKey, 400, 'GW_ERR_VALIDATION'],
    ['an unknown route', '/v1/nothing-here', gw.adminKey, 404, 'GW_ERR_NOT_FOUND']
  ]
  for (const [what, path, key, status, code] of cases) {
    const res = await gw.api(path, { key })
    t.equal(res.status, status, `${what}: status`)
    t.match(res.body, { error: { code, message: String } }, `${what}: body`)
  }
  const named = await gw.api(`/v1/vehicles/${VIN}/transactions?limit=5000`)
  t.match((named.body as { error: { message: string } }).error.message, /limit/, 'the message names the field')

  const ok = await gw.api(`/v1/vehicles/${VIN}`, { key: reader.key })
  t.equal(ok.status, 200, 'a key with the scope is let in')
})

t.test('cursor paging walks the whole log without gaps or repeats', async (t) => {
  const gw = await startTestGateway(t)
  const creds = await gw.pki.vehicle(VIN)
  for (let i = 0; i < 7; i++) {
    const car = await connectVehicle(t, { port: gw.mqttPort, ca: gw.pki.ca, creds })
    await new Promise<void>((resolve) => car.end(false, {}, () => resolve()))
  }
  await new Promise((resolve) => setTimeout(resolve, 200))
  await gw.gateway.log.flush()
  const seen: string[] = []
  let cursor: string | null = null
  do {
    const q: string = cursor === null ? '' : `&cursor=${cursor}`
    const res = await gw.api(`/v1/vehicles/${VIN}/transactions?limit=3${q}`)
    const body = res.body as { items: Array<{ id: string }>, nextCursor: string | null }
    seen.push(...body.items.map((i) => i.id))
    cursor = body.nextCursor
  } while (cursor !== null)
  t.equal(seen.length, 14)
  t.equal(new Set(seen).size, 14)
})

t.test('health and readiness', async (t) => {
  const gw = await startTestGateway(t)
  t.match(await gw.api('/health', { key: null }), { status: 200, body: { status: 'ok' } })
  t.match(await gw.api('/ready', { key: null }), { status: 200, body: { status: 'ready' } })
})
