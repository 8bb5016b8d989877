import t, { type Test } from 'tap'
import { defaultFleetOptions, runFleet, type FleetOptions, type Scenario } from '../../simulators/index.ts'
import { gatewayEnv, signalGroup, startVgwForTest, type GatewayProcess } from '../helpers/gateway-process.ts'
import type { TestPki } from '../helpers/pki.ts'
import { REDIS_URL, redisTestOptions } from '../helpers/redis.ts'
import { sharedDeployment } from '../helpers/shared-database.ts'
import { tcpBalancer, type Balancer } from '../helpers/tcp-balancer.ts'

interface Cluster {
  pki: TestPki
  adminKey: string
  mqtt: Balancer
  api: Balancer
  gateways: GatewayProcess[]
  start(): Promise<GatewayProcess>
}

/** Two gateways (one PostgreSQL, one Redis) behind TCP load balancers, as in production. */
async function cluster (t: Test): Promise<Cluster> {
  const { url, adminKey, pki } = await sharedDeployment(t)
  const admin = { key: adminKey }
  const env = gatewayEnv(pki.paths, { DATABASE_URL: url, VGW_REDIS_URL: REDIS_URL, VGW_SHUTDOWN_TIMEOUT_MS: '10000' })
  const start = async (): Promise<GatewayProcess> => await startVgwForTest(t, env)
  const gateways = [await start(), await start()]
  const mqtt = await tcpBalancer(t, gateways.map((g) => g.mqttPort))
  const api = await tcpBalancer(t, gateways.map((g) => g.httpPort))
  return { pki, adminKey: admin.key, mqtt, api, gateways, start }
}

function fleetOptions (c: Cluster, over: Partial<FleetOptions>): FleetOptions {
  return {
    ...defaultFleetOptions(),
    vehicles: 16,
    durationMs: 6000,
    mqttUrl: `mqtts://127.0.0.1:${c.mqtt.port}`,
    apiUrl: `http://127.0.0.1:${c.api.port}`,
    apiKey: c.adminKey,
    certDir: c.pki.dir,
    uplinkRatePerVehicle: 3,
    downlinkRate: 6,
    ackDelayMs: [20, 200],
    workers: 2,
    verify: true,
    ...over
  }
}

const redis = await redisTestOptions(t)

t.test('a rolling restart of two gateways loses nothing and fails no REST call the client would not retry', redis, async (t) => {
  const c = await cluster(t)
  const restart = async (i: number): Promise<void> => {
    const old = c.gateways[i] as GatewayProcess
    // Out of the balancers first, then drain: vehicles reconnect to the other gateway.
    const others = c.gateways.filter((g) => g !== old)
    c.mqtt.setBackends(others.map((g) => g.mqttPort))
    c.api.setBackends(others.map((g) => g.httpPort))
    signalGroup(old, 'SIGTERM')
    const exit = await old.exited
    t.equal(exit.code, 0, `gateway ${i} exited 0`)
    // Its last lines may still be in the pipe when the exit is reported.
    const deadline = Date.now() + 3000
    while (!old.output.some((l) => l.includes('"msg":"stopped"')) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20))
    t.ok(old.output.some((l) => l.includes('"msg":"stopped"')), `gateway ${i} drained and stopped:\n${old.output.slice(-5).join('\n')}`)
    const fresh = await c.start()
    c.gateways[i] = fresh
    c.mqtt.setBackends(c.gateways.map((g) => g.mqttPort))
    c.api.setBackends(c.gateways.map((g) => g.httpPort))
  }
  // The restarts are timed from the moment the fleet is connected, as its run is.
  let connected: () => void = () => undefined
  const fleetConnected = new Promise<void>((resolve) => { connected = resolve })
  const run = runFleet(fleetOptions(c, { durationMs: 14_000 }), {
    onProgress: (p) => { if (p.counters.connected >= p.target) connected() }
  })
  await Promise.race([fleetConnected, run])
  await new Promise((resolve) => setTimeout(resolve, 3000))
  await restart(0)
  await new Promise((resolve) => setTimeout(resolve, 2000))
  await restart(1)
  const report = await run
  t.equal(report.downlinks.postFailed, 0, `no failed REST call (${report.downlinks.retried} retried)`)
  t.ok(report.counters.disconnects >= 8, `vehicles moved between gateways (${report.counters.disconnects} drops)`)
  t.match(report.verification, { ok: true, mismatches: [] })
  t.ok((report.verification?.uplinksChecked ?? 0) > 200, `${report.verification?.uplinksChecked ?? 0} uplinks verified`)
})

for (const scenario of ['flaky-network', 'reconnect-storm'] as Scenario[]) {
  t.test(`scenario ${scenario} against a two-gateway cluster verifies clean`, redis, async (t) => {
    const c = await cluster(t)
    const report = await runFleet(fleetOptions(c, { scenario }))
    t.same(report.errors, {})
    t.match(report.verification, { ok: true, mismatches: [] })
  })
}
