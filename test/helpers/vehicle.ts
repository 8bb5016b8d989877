import mqtt, { type IClientOptions, type MqttClient } from 'mqtt'
import type { Test } from 'tap'
import { v7 as uuidv7 } from 'uuid'
import { encodeEnvelope, type EnvelopeInput } from '../../protocol/index.ts'
import type { VehicleCredentials } from './pki.ts'

export interface VehicleOptions {
  port: number
  ca: string
  creds: VehicleCredentials | null
  clientId?: string
  extra?: Partial<IClientOptions>
}

function options (o: VehicleOptions): IClientOptions {
  return {
    protocol: 'mqtts',
    host: '127.0.0.1',
    port: o.port,
    ca: o.ca,
    ...(o.creds !== null ? { key: o.creds.key, cert: o.creds.cert } : {}),
    clientId: o.clientId ?? o.creds?.vin ?? 'anonymous',
    protocolVersion: 4,
    clean: true,
    reconnectPeriod: 0,
    connectTimeout: 5000,
    rejectUnauthorized: true,
    ...o.extra
  }
}

/** A real mqtt.js vehicle over mutual TLS; resolves once CONNACK 0 arrived. Closed at teardown. */
export async function connectVehicle (t: Test, o: VehicleOptions): Promise<MqttClient> {
  const client = mqtt.connect(options(o))
  t.teardown(() => { client.end(true) })
  await new Promise<void>((resolve, reject) => {
    client.once('connect', () => resolve())
    client.once('error', reject)
    client.once('close', () => reject(new Error('closed before CONNACK')))
  })
  client.removeAllListeners('error')
  client.on('error', () => undefined)
  return client
}

export interface Refusal {
  connected: boolean
  /** The CONNACK return code when the refusal came as a CONNACK. */
  returnCode: number | null
  error: string | null
}

/** Tries to connect and reports how it ended: refused (with CONNACK code, if any) or connected. */
export async function attemptConnect (o: VehicleOptions): Promise<Refusal> {
  const client = mqtt.connect(options(o))
  return await new Promise<Refusal>((resolve) => {
    let error: string | null = null
    let returnCode: number | null = null
    client.on('error', (err: Error & { code?: number | string }) => {
      error = err.message
      if (typeof err.code === 'number') returnCode = err.code
    })
    client.once('connect', () => {
      client.end(true)
      resolve({ connected: true, returnCode: 0, error })
    })
    client.once('close', () => {
      client.end(true)
      resolve({ connected: false, returnCode, error })
    })
  })
}

export function envelope (overrides: Partial<EnvelopeInput> = {}): EnvelopeInput {
  return {
    messageId: uuidv7(),
    kind: 'TELEMETRY',
    type: 'telemetry.position',
    createdAtMs: Date.now(),
    payload: Buffer.from('{"lat":48.1,"lon":11.5}'),
    attributes: { 'content-type': 'application/json' },
    ...overrides
  }
}

export async function publishEnvelope (client: MqttClient, vin: string, e: EnvelopeInput): Promise<void> {
  await client.publishAsync(`vehicles/${vin}/up`, Buffer.from(encodeEnvelope(e)), { qos: 1 })
}

/** Resolves with the next message on a topic. */
export function nextMessage (client: MqttClient, topic: string, timeoutMs = 5000): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => { client.off('message', onMessage); reject(new Error(`no message on ${topic} within ${timeoutMs} ms`)) }, timeoutMs)
    function onMessage (t: string, payload: Buffer): void {
      if (t !== topic) return
      clearTimeout(timer)
      client.off('message', onMessage)
      resolve(payload)
    }
    client.on('message', onMessage)
  })
}

/** Resolves when the connection closes (or rejects after the timeout). */
export function closed (client: MqttClient, timeoutMs = 5000): Promise<void> {
  return new Promise((resolve, reject) => {
    if (!client.connected) return resolve()
    const timer = setTimeout(() => reject(new Error('connection stayed open')), timeoutMs)
    client.once('close', () => { clearTimeout(timer); resolve() })
  })
}
