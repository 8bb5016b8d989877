import fs from 'node:fs'
import { chromium, type Browser } from 'playwright-core'
import t, { type Test } from 'tap'
import { register } from '../helpers/downlink.ts'
import { startTestGateway } from '../helpers/gateway.ts'
import { connectVehicle, envelope, publishEnvelope } from '../helpers/vehicle.ts'

const VIN = 'WVWZZZ1JZXW000321'
const CHROMIUM = [process.env.VGW_CHROMIUM, '/usr/bin/chromium', '/usr/bin/chromium-browser'].find((p) => p !== undefined && fs.existsSync(p))
// Without Debian's chromium the test is reported as skipped (never passed); with CI=true it fails.
const skip = CHROMIUM === undefined && process.env.CI !== 'true' ? 'no chromium (apt-get install -y chromium, or VGW_CHROMIUM=path); CI=true makes this a failure' : false
// VGW_CONSOLE_SCREENSHOTS=1 writes the README's screenshots to docs/.
const SCREENSHOTS = process.env.VGW_CONSOLE_SCREENSHOTS === '1'

async function launch (t: Test): Promise<Browser> {
  if (CHROMIUM === undefined) throw new Error('chromium is missing: apt-get install -y chromium')
  // --no-sandbox: CI runs as root, where chromium's sandbox refuses to start.
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-dev-shm-usage'] })
  t.teardown(() => browser.close())
  return browser
}

t.test('log in, open a vehicle, see its uplink, send a message and watch it become delivered', { skip }, async (t) => {
  const gw = await startTestGateway(t)
  await register(gw, VIN, 'DE')
  const car = await connectVehicle(t, { port: gw.mqttPort, ca: gw.pki.ca, creds: await gw.pki.vehicle(VIN, 'DE') })
  await car.subscribeAsync(`vehicles/${VIN}/down`, { qos: 1 })
  const uplink = envelope({ type: 'telemetry.position', payload: Buffer.from('{"odometer":12345}') })
  await publishEnvelope(car, VIN, uplink)

  const browser = await launch(t)
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } })
  await page.goto(`${gw.baseUrl}/console`)
  // A wrong key is refused; the right one logs in, and is never part of a URL.
  await page.fill('input[name=key]', 'vgw_' + 'x'.repeat(43))
  await page.click('button[type=submit]')
  await page.getByText('does not know this API key').waitFor()
  await page.fill('input[name=key]', gw.adminKey)
  await page.click('button[type=submit]')
  await page.getByText('Fleet overview').waitFor()
  await page.getByText('stream: live').waitFor()
  await publishEnvelope(car, VIN, envelope())
  await page.waitForFunction('Number(document.querySelector("[data-testid=uplinks]")?.textContent) >= 1')
  t.equal(await page.textContent('[data-testid=connected]'), '1', 'one vehicle connected')
  if (SCREENSHOTS) await page.screenshot({ path: 'docs/console-overview.png' })

  await page.fill('input[name=vin]', VIN)
  await page.press('input[name=vin]', 'Enter')
  await page.waitForURL(`**/console/vehicles/${VIN}`)
  await page.getByText(uplink.messageId).waitFor()
  t.ok(await page.getByText('{"odometer":12345}').isVisible(), 'the decoded payload')
  t.equal(await page.textContent('[data-testid=connected]'), 'connected')

  await page.fill('input[name=payload]', 'Your service is due')
  await page.click('[data-testid=send-form] button')
  await page.waitForFunction('document.querySelector("[data-testid=sent-status]")?.textContent === "delivered"', null, { timeout: 10_000 })
  t.pass('the sent message became delivered')
  if (SCREENSHOTS) await page.screenshot({ path: 'docs/console-vehicle.png', fullPage: true })

  // Its trace as a timeline.
  await page.click('a:has([data-testid=sent-status]), p:has([data-testid=sent-status]) a')
  await page.getByTestId('timeline').waitFor()
  const steps = await page.locator('.timeline .step').allTextContents()
  t.same(steps.slice(0, 4), ['accepted', 'queued', 'published', 'puback'])
  t.notOk(page.url().includes(gw.adminKey), 'the key is never in the page URL')
  t.equal(await page.evaluate('localStorage.length'), 0, 'nothing in local storage')
})

t.test('a key without a view\'s scope sees why, not a broken page', { skip }, async (t) => {
  const gw = await startTestGateway(t)
  const key = await gw.store.apiKeys.create('support', ['vehicles:read'], 'test')
  const browser = await launch(t)
  const page = await browser.newPage()
  await page.goto(`${gw.baseUrl}/console/audit`)
  await page.fill('input[name=key]', key.key)
  await page.click('button[type=submit]')
  await page.getByTestId('error').waitFor()
  t.match(await page.textContent('[data-testid=error]'), /lacks the scope/)
})

t.test('the console is served by the gateway: every asset, no CDN', async (t) => {
  const gw = await startTestGateway(t)
  const html = await (await fetch(`${gw.baseUrl}/console/vehicles/${VIN}`)).text()
  const refs = [...html.matchAll(/(?:src|href)="([^"]+)"|"(\/console\/assets\/[^"]+)"/g)].map((m) => m[1] ?? m[2] ?? '')
  t.ok(refs.length >= 6, `${refs.length} assets`)
  let bytes = html.length
  for (const ref of refs) {
    t.match(ref, /^\/console\/assets\//, `${ref} is local`)
    const res = await fetch(gw.baseUrl + ref)
    t.equal(res.status, 200, ref)
    bytes += Number(res.headers.get('content-length') ?? (await res.arrayBuffer()).byteLength)
  }
  t.comment(`page weight of the first load (gzip): ${bytes} bytes before the app's own modules`)
  t.equal((await fetch(`${gw.baseUrl}/console/assets/../../package.json`)).status, 404)
})
