import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { randomBytes } from 'node:crypto'
import pg from 'pg'
import { v7 as uuidv7 } from 'uuid'
import tap, { type Test } from 'tap'
import { withPassword } from './database-url.ts'
import { openStore, startEmbeddedPostgres, type Store, type StoreOptions } from '../../store/index.ts'

// One embedded server per test process (file); each test gets a database of its own in it.
let embedded: Promise<string> | null = null

function embeddedServerUrl (): Promise<string> {
  embedded ??= (async () => {
    const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'vgw-test-pg-'))
    fs.chmodSync(dataDir, 0o755)
    const server = await startEmbeddedPostgres({ dataDir })
    tap.teardown(async () => {
      await server.stop()
      fs.rmSync(dataDir, { recursive: true, force: true })
    })
    return server.url
  })()
  return embedded
}

/**
 * A database of its own for one test, in the server at DATABASE_URL when set,
 * otherwise in this file's embedded PostgreSQL. Dropped at teardown of `t`.
 */
export async function testDatabaseUrl (t: Test): Promise<string> {
  const fromEnv = process.env.DATABASE_URL
  const server = fromEnv !== undefined && fromEnv !== '' ? withPassword(fromEnv) : await embeddedServerUrl()
  const name = `vgw_test_${randomBytes(6).toString('hex')}`
  const admin = new pg.Client({ connectionString: server })
  await admin.connect()
  await admin.query(`CREATE DATABASE ${name}`)
  await admin.end()
  t.teardown(async () => {
    const c = new pg.Client({ connectionString: server })
    await c.connect()
    await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)
    await c.end()
  })
  const url = new URL(server)
  url.pathname = `/${name}`
  return url.toString()
}

export async function testStore (t: Test, opts: Partial<StoreOptions> = {}): Promise<{ store: Store, url: string }> {
  const url = await testDatabaseUrl(t)
  const store = openStore({ ...opts, url, newId: uuidv7 })
  t.teardown(() => store.close())
  await store.migrate()
  return { store, url }
}
