// TLS session resumption (README, "Reconnect storms"): ticket keys shared through the database by
// every gateway of a cluster, surviving a restart, and a resumed session checked against revocation.
import fs from 'node:fs'
import pg from 'pg'
import t, { type Test } from 'tap'
import { v7 as uuidv7 } from 'uuid'
import { buildGateway } from '../../gateway/build-gateway.ts'
import { loadConfig } from '../../gateway/config.ts'
import { SessionTickets, ticketKeyFrom } from '../../gateway/edge/session-tickets.ts'
import { openStore } from '../../store/index.ts'
import { captureLogger } from '../helpers/gateway.ts'
import type { TestPki } from '../helpers/pki.ts'
import { attempt } from '../helpers/tls-attempt.ts'
import { sharedDeployment } from '../helpers/shared-database.ts'
import { revokeWithCli } from '../identity/revoke-cli.ts'

const A = 'WVWZZZ1JZXW000231'
const B = 'WVWZZZ1JZXW000232'

async function startGateway (t: Test, url: string, pki: TestPki, env: Record<string, string> = {}): Promise<{ close: () => Promise<void>, port: number }> {
  const config = loadConfig({
    VGW_HOST: '127.0.0.1', VGW_MQTT_PORT: '0', VGW_HTTP_PORT: '0', DATABASE_URL: url,
    VGW_TLS_CA: pki.paths.caCert, VGW_TLS_CERT: pki.paths.serverCert, VGW_TLS_KEY: pki.paths.serverKey, VGW_TLS_CRL: pki.paths.crl,
    ...env
  })
  const store = openStore({ url, newId: uuidv7 })
  const gateway = await buildGateway(config, { store, logger: captureLogger().logger })
  let closed = false
  const close = async (): Promise<void> => {
    if (closed) return
    closed = true
    await gateway.close()
    await store.close()
  }
  t.teardown(close)
  const { mqttPort } = await gateway.listen()
  return { close, port: mqttPort }
}

async function securityCodes (url: string, vin: string): Promise<string[]> {
  const db = new pg.Client({ connectionString: url })
  await db.connect()
  try {
    return (await db.query<{ c: string }>("SELECT error_code AS c FROM transactions WHERE vin = $1 AND kind = 'SECURITY'", [vin])).rows.map((r) => r.c)
  } finally {
    await db.end()
  }
}

t.test('a session ticket from one gateway resumes on another on the same database, and after a restart', async (t) => {
  const { url, pki } = await sharedDeployment(t)
  const creds = await pki.vehicle(A)
  const one = await startGateway(t, url, pki)
  const two = await startGateway(t, url, pki)
  const first = await attempt(one.port, pki, creds)
  t.equal(first.connack, 0, 'the first connection is accepted')
  t.equal(first.reused, false, 'with a full handshake')
  t.ok(first.session, 'and the gateway sent a session ticket')
  const onTwo = await attempt(two.port, pki, creds, first.session as Buffer)
  t.equal(onTwo.reused, true, 'the ticket from gateway 1 resumes the session on gateway 2')
  t.equal(onTwo.connack, 0, 'and the vehicle is accepted there')
  await one.close()
  const restarted = await startGateway(t, url, pki)
  const afterRestart = await attempt(restarted.port, pki, creds, first.session as Buffer)
  t.equal(afterRestart.reused, true, 'the ticket gateway 1 issued before its restart resumes on the restarted gateway')
  t.equal(afterRestart.connack, 0, 'and the vehicle is accepted')
})

t.test('with rotation off, tickets are per process: another gateway makes a full handshake', async (t) => {
  const { url, pki } = await sharedDeployment(t)
  const creds = await pki.vehicle(A)
  const one = await startGateway(t, url, pki, { VGW_TLS_TICKET_ROTATION_MS: '0' })
  const two = await startGateway(t, url, pki, { VGW_TLS_TICKET_ROTATION_MS: '0' })
  const first = await attempt(one.port, pki, creds)
  t.equal(first.connack, 0)
  const same = await attempt(one.port, pki, creds, first.session as Buffer)
  t.equal(same.reused, true, 'the same gateway still resumes its own tickets')
  const other = await attempt(two.port, pki, creds, first.session as Buffer)
  t.equal(other.reused, false, 'another gateway cannot open them')
  t.equal(other.connack, 0, 'and makes a full handshake instead')
})

t.test('a vehicle whose certificate is revoked after its first session cannot resume it', async (t) => {
  const { url, pki } = await sharedDeployment(t)
  const revoked = await pki.vehicle(A)
  const other = await pki.vehicle(B)
  const gw = await startGateway(t, url, pki)
  const first = await attempt(gw.port, pki, revoked)
  const otherFirst = await attempt(gw.port, pki, other)
  t.equal(first.connack, 0, 'accepted before revocation')
  await revokeWithCli(pki.dir, A)
  // The gateway reloads the CRL on its own (revocation.ts); wait until a full handshake is refused.
  const deadline = Date.now() + 10_000
  while ((await attempt(gw.port, pki, revoked)).connack === 0) {
    if (Date.now() > deadline) throw new Error('the CRL was not reloaded')
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
  const resumed = await attempt(gw.port, pki, revoked, first.session as Buffer)
  t.equal(resumed.reused, true, 'TLS resumes the session (OpenSSL does not check the certificate again)')
  t.equal(resumed.connack, null, 'but the gateway closes it before any MQTT answer')
  t.ok((await securityCodes(url, A)).includes('GW_ERR_CERT_REVOKED'), 'with a GW_ERR_CERT_REVOKED security event')
  const otherResumed = await attempt(gw.port, pki, other, otherFirst.session as Buffer)
  t.equal(otherResumed.reused, true, 'another vehicle still resumes')
  t.equal(otherResumed.connack, 0, 'and is accepted')
})

t.test('ticket keys: the same on two gateways, a new one at each rotation, and not the stored secret itself', async (t) => {
  const { store, pki } = await sharedDeployment(t)
  // Long enough that both gateways start within one period on a loaded machine (400 ms was not, in CI).
  const PERIOD = 2000
  const serverKey = fs.readFileSync(pki.paths.serverKey)
  const rotated: Array<Promise<Buffer>> = []
  const start = (): SessionTickets => {
    let apply: (key: Buffer) => void = () => undefined
    rotated.push(new Promise<Buffer>((resolve) => { apply = resolve }))
    const tickets = new SessionTickets({ store: store.ticketKeys, serverKey, rotationMs: PERIOD, apply: (key) => apply(key), logger: captureLogger().logger })
    t.teardown(() => tickets.close())
    return tickets
  }
  const one = start()
  const two = start()
  // Start just after a boundary, so that both read the same period's key.
  await new Promise((resolve) => setTimeout(resolve, PERIOD - Date.now() % PERIOD + 20))
  const [k1] = await Promise.all([one.start(), two.start()])
  const e0 = one.epoch
  t.equal(k1.length, 48, 'a key of the 48 bytes Node takes')
  const stored = await store.ticketKeys.secretFor(PERIOD, e0)
  t.not(stored.toString('hex'), k1.toString('hex'), 'the table holds a secret, not the ticket key')
  t.same(ticketKeyFrom(stored, serverKey, e0), k1, 'the key is derived from it and the server key')
  const [r1, r2] = await Promise.all(rotated)
  t.same(r1, r2, 'both gateways move to the same next key')
  t.not((r1 as Buffer).toString('hex'), k1.toString('hex'), 'which is a new one')
  t.equal(one.epoch, two.epoch, 'of the same rotation period')
})

t.test('pruning removes secrets of ended periods only, each by its own period', async (t) => {
  const { store, url } = await sharedDeployment(t)
  const now = Date.now()
  const HOURS_12 = 43_200_000
  // A 12 h gateway's current secret, created 3 h ago, beside a 1 s gateway's secrets.
  await store.ticketKeys.secretFor(HOURS_12, Math.floor(now / HOURS_12))
  await store.ticketKeys.secretFor(1000, Math.floor(now / 1000) - 5)
  await store.ticketKeys.secretFor(1000, Math.floor(now / 1000))
  const db = new pg.Client({ connectionString: url })
  await db.connect()
  t.teardown(() => db.end())
  await db.query("UPDATE tls_ticket_keys SET created_at = now() - interval '3 hours' WHERE period_ms = $1", [HOURS_12])
  t.equal(await store.ticketKeys.pruneEnded(now), 1, 'only the ended 1 s period is removed')
  const left = (await db.query<{ period_ms: string }>('SELECT period_ms::text FROM tls_ticket_keys ORDER BY period_ms')).rows.map((r) => Number(r.period_ms))
  t.same(left, [1000, HOURS_12], "the 1 s gateway's current secret and the 12 h gateway's, 3 h old, stay")
})
