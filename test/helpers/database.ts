import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { randomBytes } from 'node:crypto'
import pg from 'pg'
import { v7 as uuidv7 } from 'uuid'
import type { Test } from 'tap'
import { openStore, startEmbeddedPostgres, type Store } from '../../store/index.ts'

/**
 * A fresh, migrated database for one test file: a database of its own in the
 * server at DATABASE_URL when set, otherwise an embedded PostgreSQL of its own.
 * Teardown is registered on `t`.
 */
export async function testDatabaseUrl (t: Test): Promise<string> {
  const external = process.env.DATABASE_URL
  if (external !== undefined && external !== '') {
    const name = `vgw_test_${randomBytes(6).toString('hex')}`
    const admin = new pg.Client({ connectionString: external })
    await admin.connect()
    await admin.query(`CREATE DATABASE ${name}`)
    await admin.end()
    t.teardown(async () => {
      const c = new pg.Client({ connectionString: external })
      await c.connect()
      await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)
      await c.end()
    })
    const url = new URL(external)
    url.pathname = `/${name}`
    return url.toString()
  }
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'vgw-test-pg-'))
  fs.chmodSync(dataDir, 0o755)
  const server = await startEmbeddedPostgres({ dataDir })
  t.teardown(async () => {
    await server.stop()
    fs.rmSync(dataDir, { recursive: true, force: true })
  })
  return server.url
}

export async function testStore (t: Test): Promise<{ store: Store, url: string }> {
  const url = await testDatabaseUrl(t)
  const store = openStore({ url, newId: uuidv7 })
  t.teardown(() => store.close())
  await store.migrate()
  return { store, url }
}
