import type { Test } from 'tap'
import { v7 as uuidv7 } from 'uuid'
import { openStore, type Store } from '../../store/index.ts'
import { testDatabaseUrl } from './database.ts'
import { testPki, type TestPki } from './pki.ts'

/** What gateway processes under test share: a migrated database, an admin key, a PKI. */
export async function sharedDeployment (t: Test): Promise<{ url: string, store: Store, adminKey: string, pki: TestPki }> {
  const url = await testDatabaseUrl(t)
  const store = openStore({ url, newId: uuidv7 })
  t.teardown(() => store.close())
  await store.migrate()
  const admin = await store.apiKeys.create('admin', ['admin'], 'test')
  return { url, store, adminKey: admin.key, pki: await testPki(t) }
}
