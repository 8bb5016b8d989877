import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { Writable } from 'node:stream'
import pg from 'pg'
import pino, { type Logger } from 'pino'
import type { Test } from 'tap'
import { buildGateway, loadConfig, type Gateway, type GatewayConfig } from '../../gateway/index.ts'
import type { Store } from '../../store/index.ts'
import { testStore } from './database.ts'
import { testPki, type TestPki } from './pki.ts'

export interface LogLine {
  level: number
  msg: string
  [key: string]: unknown
}

export interface TestGateway {
  gateway: Gateway
  store: Store
  /** The test database, for tampering behind the gateway's back. */
  dbUrl: string
  pki: TestPki
  config: GatewayConfig
  mqttPort: number
  httpPort: number
  baseUrl: string
  adminKey: string
  /** Every log line the gateway wrote, parsed. */
  logs: LogLine[]
  api(path: string, init?: RequestInit & { key?: string | null }): Promise<{ status: number, body: unknown }>
}

/** A logger whose lines are kept for assertions (pino's sink-stream pattern). */
export function captureLogger (): { logger: Logger, lines: LogLine[] } {
  const lines: LogLine[] = []
  const sink = new Writable({
    write (chunk: Buffer, _enc, cb) {
      for (const line of chunk.toString('utf8').split('\n')) if (line !== '') lines.push(JSON.parse(line) as LogLine)
      cb()
    }
  })
  const level = process.env.VGW_TEST_LOG_LEVEL ?? 'info'
  // VGW_TEST_LOG=1 also prints the gateway's lines, for debugging a test.
  const logger = process.env.VGW_TEST_LOG === '1' ? pino({ level }, pino.multistream([{ level, stream: sink }, { level, stream: process.stderr }])) : pino({ level }, sink)
  return { logger, lines }
}

/** A gateway on ports 0 with its own database and PKI; closed at teardown. */
export async function startTestGateway (t: Test, overrides: Partial<Record<string, string>> = {}, deps: { now?: () => number, eventLoopDelayMs?: () => number } = {}): Promise<TestGateway> {
  const pki = await testPki(t)
  // The ledger's key and checkpoints (and anything else under the data directory) are the test's own.
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'vgw-test-data-'))
  t.teardown(() => fs.rmSync(dataDir, { recursive: true, force: true }))
  const config = loadConfig({
    VGW_DATA_DIR: dataDir,
    VGW_HOST: '127.0.0.1',
    VGW_MQTT_PORT: '0',
    VGW_HTTP_PORT: '0',
    VGW_TLS_CA: pki.paths.caCert,
    VGW_TLS_CERT: pki.paths.serverCert,
    VGW_TLS_KEY: pki.paths.serverKey,
    VGW_TLS_CRL: pki.paths.crl,
    VGW_LOG_LEVEL: 'info',
    ...overrides
  })
  const { store, url: dbUrl } = await testStore(t, { retentionFloors: config.retentionFloors })
  const { logger, lines } = captureLogger()
  const gateway = await buildGateway(config, { store, logger, ...deps })
  t.teardown(() => gateway.close())
  const { mqttPort, httpPort } = await gateway.listen()
  // Both duties, so that tests of either need one key; separation of duties has tests of its own (test/security/).
  const admin = await store.apiKeys.create('test-admin', ['admin', 'legal'], 'test')
  const baseUrl = `http://127.0.0.1:${httpPort}`
  return {
    gateway,
    store,
    dbUrl,
    pki,
    config,
    mqttPort,
    httpPort,
    baseUrl,
    adminKey: admin.key,
    logs: lines,
    async api (path, init = {}) {
      const key = init.key === undefined ? admin.key : init.key
      const headers = new Headers(init.headers)
      if (key !== null) headers.set('authorization', `Bearer ${key}`)
      const res = await fetch(baseUrl + path, { ...init, headers })
      const text = await res.text()
      return { status: res.status, body: text === '' ? null : JSON.parse(text) as unknown }
    }
  }
}

/** Every row in the gateway's log, whoever it belongs to, once pending rows have committed. */
export async function logRowCount (gw: TestGateway): Promise<number> {
  await gw.gateway.log.flush()
  const db = new pg.Client({ connectionString: gw.dbUrl })
  await db.connect()
  try {
    return (await db.query<{ n: number }>('SELECT count(*)::int AS n FROM transactions')).rows[0]?.n ?? -1
  } finally {
    await db.end()
  }
}
