/**
 * CPU cost of one GET /metrics scrape with 1,000 vehicles connected (README, "Operating vgw").
 * Run: npx tap bench/metrics-scrape-cost.ts (a tap file, for the test helpers' gateway and PKI).
 */
import t from 'tap'
import { fleetVin } from '../simulators/vin-factory.ts'
import { startTestGateway } from '../test/helpers/gateway.ts'
import { connectVehicle } from '../test/helpers/vehicle.ts'

const VEHICLES = Number(process.env.VEHICLES ?? 1000)
const SCRAPES = 300

t.test(`scrape cost with ${VEHICLES} vehicles`, async (t) => {
  const gw = await startTestGateway(t, { VGW_HANDSHAKE_RATE_PER_ADDRESS: '100000', VGW_MAX_CONNECTIONS_PER_ADDRESS: '100000', VGW_LOG_LEVEL: 'warn' })
  const markets = ['DE', 'FR', 'US', 'CN', 'JP']
  for (let i = 0; i < VEHICLES; i += 50) {
    await Promise.all(Array.from({ length: Math.min(50, VEHICLES - i) }, async (_, j) => {
      const market = markets[(i + j) % markets.length] as string
      const vin = fleetVin(market, i + j)
      await connectVehicle(t, { port: gw.mqttPort, ca: gw.pki.ca, creds: await gw.pki.vehicle(vin, market) })
    }))
  }
  const headers = { authorization: `Bearer ${gw.adminKey}` }
  for (let i = 0; i < 20; i++) await (await fetch(`${gw.baseUrl}/metrics`, { headers })).text() // warm up
  const bytes = (await (await fetch(`${gw.baseUrl}/metrics`, { headers })).text()).length
  const measure = async (scrape: () => Promise<unknown>): Promise<number> => {
    const before = process.cpuUsage()
    for (let i = 0; i < SCRAPES; i++) await scrape()
    const used = process.cpuUsage(before)
    return (used.user + used.system) / 1000 / SCRAPES
  }
  const inProcess = await measure(() => gw.gateway.telemetry.scrape())
  const registryOnly = await measure(() => gw.gateway.telemetry.metrics.registry.metrics())
  const idle = await measure(() => new Promise((resolve) => setImmediate(resolve)))
  const overHttp = await measure(() => gw.gateway.http.inject({ method: 'GET', url: '/metrics', headers }))
  const costs: Array<[string, number]> = []
  for (const metric of gw.gateway.telemetry.metrics.registry.getMetricsAsArray()) {
    const before = process.cpuUsage()
    for (let i = 0; i < 50; i++) await (metric as unknown as { get(): Promise<unknown> }).get()
    const used = process.cpuUsage(before)
    costs.push([metric.name, (used.user + used.system) / 1000 / 50])
  }
  costs.sort((a, b) => b[1] - a[1])
  t.comment(`costliest metrics (ms per scrape): ${costs.slice(0, 5).map(([n, ms]) => `${n} ${ms.toFixed(2)}`).join(', ')}`)
  t.comment(`${VEHICLES} vehicles connected; exposition ${bytes} bytes`)
  t.comment(`registry alone (prom-client defaults included): ${registryOnly.toFixed(2)} ms; the process idle over the same loop: ${idle.toFixed(3)} ms`)
  t.comment(`CPU per scrape: ${inProcess.toFixed(2)} ms (registry and gauges), ${overHttp.toFixed(2)} ms through fastify (auth, rate limit, /ready check inside)`)
  t.pass()
})
