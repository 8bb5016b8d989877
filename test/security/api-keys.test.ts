import { execFile } from 'node:child_process'
import path from 'node:path'
import { promisify } from 'node:util'
import t from 'tap'
import { buildGateway } from '../../gateway/index.ts'
import { captureLogger, startTestGateway, type TestGateway } from '../helpers/gateway.ts'
import { ROOT } from '../helpers/gateway-process.ts'

const run = promisify(execFile)
const VIN = 'WVWZZZ1JZXW000701'

async function status (gw: TestGateway, key: string): Promise<number> {
  return (await gw.api(`/v1/vehicles/${VIN}`, { key })).status
}

/** Polls until `key` is refused (401) or the deadline passes; the time of the first 401, or null. */
async function firstRefusal (gw: TestGateway, key: string, deadlineMs: number): Promise<number | null> {
  const end = performance.now() + deadlineMs
  while (performance.now() < end) {
    if (await status(gw, key) === 401) return performance.now()
    await new Promise((resolve) => setTimeout(resolve, 25))
  }
  return null
}

t.test('keys over REST: create with an expiry, list without secrets, revoke by id and by name, all audited with the key id', async (t) => {
  const gw = await startTestGateway(t)
  const created = await gw.api('/v1/keys', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name: 'crm', scopes: ['vehicles:read'], expires: '90d' }) })
  t.equal(created.status, 201)
  const key = created.body as { id: string, key: string, expiresAt: string }
  t.ok(Math.abs(Date.parse(key.expiresAt) - (Date.now() + 90 * 86_400_000)) < 60_000, 'expires in 90 days')
  t.equal(await status(gw, key.key), 404, 'the new key works (the vehicle is unknown)')
  const second = (await gw.api('/v1/keys', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name: 'crm', scopes: ['vehicles:read'] }) })).body as { id: string, key: string }

  const list = await gw.api('/v1/keys')
  const text = JSON.stringify(list.body)
  t.notOk(text.includes(key.key) || text.includes(second.key), 'no secret in the list')
  const items = (list.body as { items: Array<Record<string, unknown>> }).items
  t.match(items.find((k) => k.id === key.id), { name: 'crm', scopes: ['vehicles:read'], createdAt: String, expiresAt: key.expiresAt, lastUsedAt: null, revokedAt: null })
  t.notOk(items.some((k) => 'keyHash' in k || 'key' in k), 'neither a secret nor its hash')

  t.equal((await gw.api(`/v1/keys/${key.id}`, { method: 'DELETE' })).status, 200)
  t.equal(await status(gw, key.key), 401, 'revoked through this gateway: refused at once')
  t.equal(await status(gw, second.key), 404, 'the other key of that name still works')
  t.equal((await gw.api('/v1/keys?name=crm', { method: 'DELETE' })).status, 200)
  t.equal(await status(gw, second.key), 401)
  t.match((await gw.api('/v1/keys?name=crm', { method: 'DELETE' })).body, { error: { code: 'GW_ERR_API_KEY_NOT_FOUND' } })

  const admin = (await gw.api('/v1/keys')).body as { items: Array<{ id: string, name: string }> }
  const adminId = admin.items.find((k) => k.name === 'test-admin')?.id ?? ''
  // The test's own admin key was made on the server (operator `test`): audited too, by the database.
  const all = await gw.store.lifecycle.auditTrail(10)
  t.match(all.at(-1), { action: 'key.create', actor: 'test', details: { name: 'test-admin' } })
  const audit = all.slice(0, -1)
  t.same(audit.map((a) => a.action).sort(), ['key.create', 'key.create', 'key.revoke', 'key.revoke'])
  t.ok(audit.every((a) => a.actor === `api-key:${adminId} (test-admin)`), 'each names the acting key by id')
})

t.test('admin cannot hand out, rotate or revoke legal: a key acts only on keys whose every scope it holds', async (t) => {
  const gw = await startTestGateway(t)
  const { key } = await gw.store.apiKeys.create('ops', ['admin'], 'test')
  const res = await gw.api('/v1/keys', { key, method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name: 'lawyer', scopes: ['legal'] }) })
  t.equal(res.status, 403)
  const legal = await gw.store.apiKeys.create('legal-team', ['legal'], 'test')
  const rotate = await gw.api('/v1/keys/rotate', { key, method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name: 'legal-team' }) })
  t.equal(rotate.status, 403, 'nor rotate a legal key into its own hands')
  // Nor take the legal team's access away (issue #19): by name, by id, nor a key that mixes legal with what admin holds.
  const mixed = await gw.store.apiKeys.create('legal-and-read', ['legal', 'vehicles:read'], 'test')
  for (const path of ['/v1/keys?name=legal-team', `/v1/keys/${legal.id}`, `/v1/keys/${mixed.id}`]) {
    const res = await gw.api(path, { key, method: 'DELETE' })
    t.equal(res.status, 403, `DELETE ${path}`)
    t.match(res.body, { error: { code: 'GW_ERR_FORBIDDEN', message: /cannot revoke keys of the scope\(s\) legal/ } })
  }
  t.equal(await status(gw, legal.key), 403, 'the legal key still authenticates (it lacks vehicles:read)')
  t.equal(await status(gw, mixed.key), 404)
  t.notOk((await gw.store.lifecycle.auditTrail(20)).some((a) => a.action === 'key.revoke'), 'nothing was revoked, so nothing audited')
  // The database refuses the same when a route forgets to check (the acting key's scopes, read by the owner-run function).
  await t.rejects(gw.store.apiKeys.revokeById(legal.id, { keyId: (await gw.store.apiKeys.verify(key))?.id ?? '', name: 'ops' }), { code: 'GW_ERR_FORBIDDEN' })
  t.equal((await gw.api('/v1/keys?name=legal-team', { method: 'DELETE' })).status, 200, 'a key that holds legal (the test admin) may revoke it')
  t.equal(await status(gw, legal.key), 401)
})

t.test('a revoked key is refused once the cache bound has passed, even when its entry is served from the cache', async (t) => {
  const gw = await startTestGateway(t, { VGW_API_KEY_CACHE_MS: '1000' })
  const k = await gw.store.apiKeys.create('batch-job', ['vehicles:read'], 'test')
  t.equal(await status(gw, k.key), 404, 'cached as valid')
  // Revoked behind this gateway's back (another gateway, the CLI): only the bound protects us.
  await gw.store.apiKeys.revokeById(k.id, 'test')
  await new Promise((resolve) => setTimeout(resolve, 1200))
  t.equal(await status(gw, k.key), 401, 'the first request after the bound is refused, not answered from the stale entry')
})

t.test('an expired key is refused at its expiry; a rotated key keeps working for its grace period only', async (t) => {
  const gw = await startTestGateway(t)
  const short = await gw.store.apiKeys.create('short', ['vehicles:read'], 'test', new Date(Date.now() + 1500))
  t.equal(await status(gw, short.key), 404)
  const refusedAt = await firstRefusal(gw, short.key, 4000)
  t.ok(refusedAt !== null, 'refused after its expiry, although its lookup is cached for 5 s')

  const old = await gw.store.apiKeys.create('svc', ['vehicles:read'], 'test')
  t.equal(await status(gw, old.key), 404)
  const rotated = await gw.api('/v1/keys/rotate', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name: 'svc', grace: '2s' }) })
  t.equal(rotated.status, 201)
  const fresh = rotated.body as { key: string, scopes: string[], previous: Array<{ id: string }> }
  t.same(fresh.scopes, ['vehicles:read'], 'the new key has the old one\'s scopes')
  t.same(fresh.previous.map((p) => p.id), [old.id])
  t.equal(await status(gw, fresh.key), 404, 'the new secret works')
  t.equal(await status(gw, old.key), 404, 'the old one still works during the grace period')
  t.ok(await firstRefusal(gw, old.key, 5000) !== null, 'and is refused after it')
  t.equal(await status(gw, fresh.key), 404, 'the new one goes on')
})

t.test('last use is recorded in batches', async (t) => {
  const gw = await startTestGateway(t)
  const k = await gw.store.apiKeys.create('reader', ['vehicles:read'], 'test')
  for (let i = 0; i < 20; i++) await status(gw, k.key)
  // Closing flushes the batch (the gateway writes one every 10 s).
  await gw.gateway.close()
  const info = (await gw.store.apiKeys.list()).find((x) => x.id === k.id)
  t.ok(info?.lastUsedAt instanceof Date && Date.now() - info.lastUsedAt.getTime() < 60_000, 'last used is set')
})

t.test('vgw keys revoke: measured time to the first 401 on a running gateway', async (t) => {
  const gw = await startTestGateway(t)
  const k = await gw.store.apiKeys.create('stolen', ['vehicles:read'], 'test')
  // A busy client: its key is always in the cache, refreshed in the background.
  let busy = true
  const traffic = (async () => { while (busy) { await status(gw, k.key); await new Promise((resolve) => setTimeout(resolve, 20)) } })()
  t.teardown(async () => { busy = false; await traffic })
  await new Promise((resolve) => setTimeout(resolve, 300))
  const started = performance.now()
  const { stdout } = await run(process.execPath, [path.join(ROOT, 'bin/vgw.js'), 'keys', 'revoke', '--name', 'stolen', '--database-url', gw.dbUrl], { cwd: ROOT })
  const exited = performance.now()
  t.match(stdout, /revoked .* \(stolen\)/)
  const refused = await firstRefusal(gw, k.key, 5000 + 3000)
  const refusedWall = Date.now()
  busy = false
  t.ok(refused !== null, 'refused within the cache bound (5 s) of the revocation')
  const revokedAt = (await gw.store.apiKeys.list(true)).find((x) => x.id === k.id)?.revokedAt?.getTime() ?? Number.NaN
  if (refused !== null) {
    t.comment(`vgw keys revoke → first 401: ${refusedWall - revokedAt} ms after the revocation committed, ${Math.round(refused - exited)} ms after the command exited, ` +
      `${Math.round(refused - started)} ms after it started (the command took ${Math.round(exited - started)} ms: Node start-up and migrations)`)
  }
  const list = await run(process.execPath, [path.join(ROOT, 'bin/vgw.js'), 'keys', 'list', '--all', '--database-url', gw.dbUrl], { cwd: ROOT })
  t.match(list.stdout, /stolen\tvehicles:read\t\S+\t\S+\t-\t\d{4}-/, 'the list shows it revoked, with its last use')
  t.notOk(list.stdout.includes(k.key))
})

t.test('a key revoked through one gateway is refused by another gateway on the same database within its cache bound', async (t) => {
  const a = await startTestGateway(t)
  const other = await buildGateway(a.config, { store: a.store, logger: captureLogger().logger })
  t.teardown(() => other.close())
  const { httpPort } = await other.listen()
  const onB = async (key: string): Promise<number> => (await fetch(`http://127.0.0.1:${httpPort}/v1/vehicles/${VIN}`, { headers: { authorization: `Bearer ${key}` } })).status
  const k = await a.store.apiKeys.create('shared', ['vehicles:read'], 'test')
  t.equal(await status(a, k.key), 404)
  t.equal(await onB(k.key), 404, 'both gateways have it cached as valid')
  t.equal((await a.api('/v1/keys?name=shared', { method: 'DELETE' })).status, 200)
  const revoked = Date.now()
  t.equal(await status(a, k.key), 401, 'refused at once where it was revoked')
  let refusedOnB: number | null = null
  while (refusedOnB === null && Date.now() - revoked < 5000 + 2000) {
    if (await onB(k.key) === 401) refusedOnB = Date.now()
    else await new Promise((resolve) => setTimeout(resolve, 25))
  }
  t.ok(refusedOnB !== null, 'and on the other gateway within VGW_API_KEY_CACHE_MS (5 s) plus one lookup')
  if (refusedOnB !== null) t.comment(`refused on the other gateway ${refusedOnB - revoked} ms after the revocation`)
})
