import t from 'tap'
import { inbox } from '../helpers/downlink.ts'
import { gatewayEnv, signalGroup, startVgw } from '../helpers/gateway-process.ts'
import { REDIS_URL, requireRedis } from '../helpers/redis.ts'
import { sharedDeployment } from '../helpers/shared-database.ts'
import { connectVehicle } from '../helpers/vehicle.ts'

if (await requireRedis(t, '--workers tests')) {
  t.test('vgw start --workers 2 runs two gateway processes on the same ports, serving one fleet', async (t) => {
    const { url, adminKey, pki } = await sharedDeployment(t)
    const admin = { key: adminKey }
    const gw = await startVgw(gatewayEnv(pki.paths, { DATABASE_URL: url, VGW_REDIS_URL: REDIS_URL }), ['--workers', '2'])
    t.teardown(() => signalGroup(gw, 'SIGKILL'))
    const deadline = Date.now() + 30_000
    while (!gw.output.some((l) => l.startsWith('vgw ready: 2 gateway processes')) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 100))
    t.ok(gw.output.some((l) => l.startsWith('vgw ready: 2 gateway processes')), 'both processes listen')

    const vins = Array.from({ length: 12 }, (_, i) => `WVWZZZ1JZXW0011${String(i).padStart(2, '0')}`)
    const boxes = []
    for (const vin of vins) {
      const car = await connectVehicle(t, { port: gw.mqttPort, ca: pki.ca, creds: await pki.vehicle(vin) })
      const box = inbox(car, vin)
      await car.subscribeAsync(`vehicles/${vin}/down`, { qos: 1 })
      boxes.push(box)
    }
    const pids = new Set(gw.output.filter((l) => l.includes('"msg":"vehicle connected"')).map((l) => (JSON.parse(l) as { pid: number }).pid))
    t.equal(pids.size, 2, `connections are spread over both processes (${[...pids].join(', ')}; ${gw.output.filter((l) => l.includes('vehicle connected')).length} connect lines)`)
    for (const vin of vins) {
      const res = await fetch(`http://127.0.0.1:${gw.httpPort}/v1/vehicles/${vin}/messages`, {
        method: 'POST', headers: { authorization: `Bearer ${admin.key}`, 'content-type': 'application/json' }, body: '{"type":"service.reminder","payload":"x"}'
      })
      t.equal(res.status, 202)
    }
    for (const box of boxes) await box.next(1)
    t.pass('every vehicle got its message, whichever process took the REST call')

    signalGroup(gw, 'SIGTERM')
    await gw.exited
    await new Promise((resolve) => setTimeout(resolve, 500))
    t.equal(gw.output.filter((l) => l.includes('"msg":"stopped"')).length, 3, `both workers and the primary stopped cleanly:\n${gw.output.slice(-8).join('\n')}`)
  })
}
