import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import mqtt, { type MqttClient } from 'mqtt'
import pg from 'pg'
import t from 'tap'
import { encodeEnvelope, parseEnvelope } from '../../protocol/index.ts'
import { runningEmbeddedUrl } from '../../store/index.ts'
import { gatewayEnv, startVgw } from '../helpers/gateway-process.ts'
import { testPki, type VehicleCredentials } from '../helpers/pki.ts'
import { envelope } from '../helpers/vehicle.ts'

const VINS = ['WVWZZZ1JZXW000090', 'WVWZZZ1JZXW000091', 'WVWZZZ1JZXW000092', 'WVWZZZ1JZXW000093']
const IN_FLIGHT = 25

function connect (port: number, ca: string, creds: VehicleCredentials): MqttClient {
  const client = mqtt.connect({ protocol: 'mqtts', host: '127.0.0.1', port, ca, key: creds.key, cert: creds.cert, clientId: creds.vin, reconnectPeriod: 0, protocolVersion: 4 })
  client.on('error', () => undefined)
  return client
}

t.test('SIGKILL mid-stream loses nothing that was acknowledged, and stores nothing twice', async (t) => {
  const pki = await testPki(t)
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'vgw-crash-'))
  fs.chmodSync(dataDir, 0o755)
  const env = gatewayEnv(pki.paths, {
    DATABASE_URL: '', // the default path: embedded PostgreSQL, which the kill leaves orphaned
    VGW_DATA_DIR: dataDir,
    // Slow, large batches: a PUBACK sent before its commit would then surely be lost by the kill.
    VGW_BATCH_MAX_DELAY_MS: '100',
    VGW_BATCH_MAX_SIZE: '10000'
  })
  const creds = await Promise.all(VINS.map((vin) => pki.vehicle(vin)))
  const first = await startVgw(env)

  const sent = new Map<string, { vin: string, e: ReturnType<typeof envelope> }>()
  const acked = new Set<string>()
  let killAfter = 400
  let killed = false
  const clients = creds.map((c) => connect(first.mqttPort, pki.ca, c))
  t.teardown(() => { for (const c of clients) c.end(true) })
  await Promise.all(clients.map((c) => new Promise((resolve) => c.once('connect', resolve))))

  // Each vehicle keeps IN_FLIGHT QoS 1 publishes open until the connection dies.
  await Promise.all(clients.map((client, i) => new Promise<void>((resolve) => {
    const vin = VINS[i] as string
    const pump = (): void => {
      if (killed || !client.connected) return
      const e = envelope()
      sent.set(e.messageId, { vin, e })
      client.publish(`vehicles/${vin}/up`, Buffer.from(encodeEnvelope(e)), { qos: 1 }, (err) => {
        if (err === undefined || err === null) {
          acked.add(e.messageId)
          if (acked.size >= killAfter && !killed) {
            killed = true
            first.child.kill('SIGKILL')
          }
        }
        pump()
      })
    }
    client.once('close', () => resolve())
    for (let k = 0; k < IN_FLIGHT; k++) pump()
  })))
  killAfter = Infinity
  const exit = await first.exited
  t.equal(exit.signal, 'SIGKILL')
  t.ok(acked.size >= 400, `${acked.size} acknowledged before the kill`)
  t.ok(sent.size > acked.size, `${sent.size - acked.size} were in flight, unacknowledged`)

  // Restart on the same data directory: the orphaned PostgreSQL must not block it.
  const second = await startVgw(env)
  t.teardown(async () => {
    second.child.kill('SIGTERM')
    await second.exited
    fs.rmSync(dataDir, { recursive: true, force: true })
  })
  const url = runningEmbeddedUrl(dataDir)
  t.ok(url, 'the restarted gateway runs its embedded PostgreSQL')
  const db = new pg.Client({ connectionString: url ?? '' })
  await db.connect()
  t.teardown(() => db.end())
  const countOf = async (): Promise<Map<string, number>> => {
    const { rows } = await db.query<{ message_id: string, n: number }>(
      "SELECT message_id, count(*)::int AS n FROM transactions WHERE direction = 'up' GROUP BY message_id")
    return new Map(rows.map((r) => [r.message_id, r.n]))
  }
  const afterCrash = await countOf()
  const lost = [...acked].filter((id) => afterCrash.get(id) !== 1)
  t.same(lost, [], 'every acknowledged uplink is stored exactly once')

  // The vehicles now resend everything they sent (acked or not), as a client with a
  // persistent outbox would: each message ends up stored exactly once.
  const again = creds.map((c) => connect(second.mqttPort, pki.ca, c))
  t.teardown(() => { for (const c of again) c.end(true) })
  await Promise.all(again.map((c) => new Promise((resolve) => c.once('connect', resolve))))
  const byVin = new Map<string, MqttClient>(VINS.map((vin, i) => [vin, again[i] as MqttClient]))
  const all = [...sent.values()]
  await Promise.all(all.map(({ vin, e }) =>
    (byVin.get(vin) as MqttClient).publishAsync(`vehicles/${vin}/up`, Buffer.from(encodeEnvelope(e)), { qos: 1 })))
  const final = await countOf()
  t.equal(final.size, sent.size, 'every message sent is stored')
  t.same([...final.values()].filter((n) => n !== 1), [], 'none twice')
})

t.test('SIGKILL after a 202 and before delivery: the message is delivered after the restart', async (t) => {
  const pki = await testPki(t)
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'vgw-crash-down-'))
  fs.chmodSync(dataDir, 0o755)
  const env = gatewayEnv(pki.paths, { DATABASE_URL: '', VGW_DATA_DIR: dataDir })
  const vin = VINS[0] as string
  const first = await startVgw(env)
  const key = fs.readFileSync(path.join(dataDir, 'admin.key'), 'utf8').trim()
  const api = (port: number, p: string, init: RequestInit = {}): Promise<Response> =>
    fetch(`http://127.0.0.1:${port}${p}`, { ...init, headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' } })
  t.equal((await api(first.httpPort, `/v1/vehicles/${vin}`, { method: 'PUT', body: '{"market":"DE"}' })).status, 201)
  const accepted = await api(first.httpPort, `/v1/vehicles/${vin}/messages`, { method: 'POST', body: JSON.stringify({ type: 'call.missed', payload: 'call me' }) })
  t.equal(accepted.status, 202)
  const { id } = await accepted.json() as { id: string }
  first.child.kill('SIGKILL')
  await first.exited

  const second = await startVgw(env)
  t.teardown(async () => {
    second.child.kill('SIGTERM')
    await second.exited
    fs.rmSync(dataDir, { recursive: true, force: true })
  })
  const creds = await pki.vehicle(vin)
  const car = connect(second.mqttPort, pki.ca, creds)
  t.teardown(() => { car.end(true) })
  await new Promise((resolve) => car.once('connect', resolve))
  const received = new Promise<Buffer>((resolve) => car.once('message', (_topic, payload) => resolve(payload)))
  await car.subscribeAsync(`vehicles/${vin}/down`, { qos: 1 })
  t.match(parseEnvelope(await received), { messageId: id, kind: 'MESSAGE', type: 'call.missed' })
  const deadline = Date.now() + 5000
  let status = ''
  while (Date.now() < deadline && status !== 'delivered') {
    status = ((await (await api(second.httpPort, `/v1/messages/${id}`)).json()) as { status: string }).status
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  t.equal(status, 'delivered')
})
