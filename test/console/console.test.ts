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
  // Locators, not string predicates: the console's CSP refuses eval, which waitForFunction('…') needs.
  await page.locator('[data-testid=uplinks]', { hasText: /^[1-9]\d*$/ }).waitFor()
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
  await page.locator('[data-testid=sent-status]', { hasText: /^delivered$/ }).waitFor({ timeout: 10_000 })
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

t.test('a crafted vehicle URL cannot make the console call another route with the operator\'s key; the console has a strict CSP', { skip }, async (t) => {
  // The attack (issue #20, item 5): a link to the console whose "VIN" holds an encoded path and query.
  const victim = 'WVWZZZ1JZXW000001'
  const gw = await startTestGateway(t)
  await register(gw, victim, 'DE')
  const browser = await launch(t)
  const page = await browser.newPage()
  const requests: Array<{ method: string, url: string }> = []
  page.on('request', (r) => requests.push({ method: r.method(), url: r.url() }))
  const violations: string[] = []
  page.on('console', (m) => { if (/Content Security Policy/i.test(m.text())) violations.push(m.text()) })

  const first = await page.goto(`${gw.baseUrl}/console`)
  const csp = first?.headers()['content-security-policy'] ?? ''
  for (const directive of ["default-src 'none'", "connect-src 'self'", "form-action 'self'", "frame-ancestors 'none'", "base-uri 'none'"]) {
    t.ok(csp.split(/;\s*/).includes(directive), `the console's CSP has ${directive}`)
  }
  t.match(csp, /script-src 'self' 'sha256-[A-Za-z0-9+/=]+'(;|$)/, 'scripts only from the gateway, and the import map by its hash (no unsafe-inline)')
  await page.fill('input[name=key]', gw.adminKey)
  await page.click('button[type=submit]')
  await page.getByText('stream: live').waitFor()

  const attacks = [
    `${victim}%2Fexport%3Ffrom%3D2020-01-01%26to%3D2030-01-01`,
    `${victim}%2F..%2F..%2Fkeys%3Fname%3Dtest-admin`
  ]
  for (const attack of attacks) {
    const before = requests.length
    const exportSeen = page.waitForRequest((r) => /\/export|\/v1\/keys/.test(r.url()), { timeout: 0 })
    const res = await page.goto(`${gw.baseUrl}/console/vehicles/${attack}`)
    t.ok(res?.headers()['content-security-policy'] === csp, `${attack}: the CSP is on this page too`)
    // Either the page says the segment is not a VIN, or the attack got through: whichever comes first.
    await Promise.race([page.getByTestId('not-found').waitFor(), exportSeen])
    await page.waitForLoadState('networkidle')
    const made = requests.slice(before).filter((r) => r.url.includes('/v1/'))
    t.same(made.filter((r) => /\/export|\/v1\/keys/.test(r.url)), [], `${attack}: no request to an export or key URL`)
    t.same(made.filter((r) => r.method !== 'GET'), [], `${attack}: nothing was posted`)
    t.ok(await page.getByTestId('not-found').isVisible(), `${attack}: the page says it is not a VIN`)
  }
  const audit = await gw.api('/v1/audit?action=export')
  t.same((audit.body as { items: unknown[] }).items, [], 'no export was started')
  t.same(violations, [], 'the console itself runs without a CSP violation')
})
