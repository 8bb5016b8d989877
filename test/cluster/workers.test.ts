import t from 'tap'
import { inbox } from '../helpers/downlink.ts'
import { gatewayEnv, signalGroup, startVgw, type GatewayProcess } from '../helpers/gateway-process.ts'
import { REDIS_URL, redisTestOptions } from '../helpers/redis.ts'
import { sharedDeployment } from '../helpers/shared-database.ts'
import { connectVehicle } from '../helpers/vehicle.ts'

const redis = await redisTestOptions(t)

t.test('vgw start --workers 2 runs two gateway processes on the same ports, serving one fleet', redis, async (t) => {
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
  // The primary stops the database only after every gateway process has exited.
  const dbStop = gw.output.findIndex((l) => l.includes('"msg":"gateway processes stopped; stopping the database"'))
  const workersStopped = gw.output.flatMap((l, i) => l.includes('"msg":"stopped"') && !l.includes(`"pid":${gw.child.pid ?? 0},`) ? [i] : [])
  t.equal(workersStopped.length, 2)
  t.ok(dbStop > Math.max(...workersStopped), 'the database stops after both workers stopped')
})

const pidOf = (line: string): number => (JSON.parse(line) as { pid: number }).pid
const listeningPids = (gw: GatewayProcess): number[] => gw.output.filter((l) => l.includes('"msg":"gateway listening"')).map(pidOf)

t.test('a gateway process that dies is replaced, and the new one serves vehicles', redis, async (t) => {
  const { url, pki } = await sharedDeployment(t)
  const gw = await startVgw(gatewayEnv(pki.paths, { DATABASE_URL: url, VGW_REDIS_URL: REDIS_URL }), ['--workers', '2'])
  t.teardown(() => signalGroup(gw, 'SIGKILL'))
  const deadline = Date.now() + 30_000
  while (listeningPids(gw).length < 2 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 100))
  const [victim, survivor] = listeningPids(gw)
  t.ok(victim !== undefined && survivor !== undefined, 'two gateway processes listen')
  process.kill(victim as number, 'SIGKILL')

  const replaced = Date.now() + 30_000
  const fresh = (): number | undefined => listeningPids(gw).find((pid) => pid !== victim && pid !== survivor)
  while (fresh() === undefined && Date.now() < replaced) await new Promise((resolve) => setTimeout(resolve, 100))
  t.ok(gw.output.some((l) => l.includes('"msg":"gateway process died; starting another"') && l.includes(`"pid":${victim ?? 0}`)), 'the primary noticed the death')
  const newPid = fresh()
  t.ok(newPid !== undefined, `a new gateway process listens (pid ${newPid ?? 'none'})`)

  // Connections are handed out round-robin over the live processes: the new one takes some.
  const vins = Array.from({ length: 8 }, (_, i) => `WVWZZZ1JZXW0012${String(i).padStart(2, '0')}`)
  for (const vin of vins) await connectVehicle(t, { port: gw.mqttPort, ca: pki.ca, creds: await pki.vehicle(vin) })
  const servedBy = (pid: number | undefined): number => gw.output.filter((l) => l.includes('"msg":"vehicle connected"') && pidOf(l) === pid).length
  const served = Date.now() + 5000
  while (servedBy(newPid) === 0 && Date.now() < served) await new Promise((resolve) => setTimeout(resolve, 100))
  t.ok(servedBy(newPid) > 0, `the new process serves ${servedBy(newPid)} of ${vins.length} vehicles`)
})
