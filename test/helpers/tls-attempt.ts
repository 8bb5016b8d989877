import tls from 'node:tls'
import { generate, parser, type Packet } from 'mqtt-packet'
import type { TestPki, VehicleCredentials } from './pki.ts'

export interface Attempt {
  /** Whether TLS resumed a session instead of a full handshake (tlsSocket.isSessionReused()). */
  reused: boolean
  /** CONNACK's return code; null: the connection closed without one. */
  connack: number | null
  /** The last session ticket the server sent, to resume with next time. */
  session: Buffer | null
}

/** One TLS connection and MQTT CONNECT, with a ticket to resume from or none. */
export async function attempt (port: number, pki: TestPki, creds: VehicleCredentials, session?: Buffer): Promise<Attempt> {
  const socket = tls.connect({ host: '127.0.0.1', port, ca: pki.ca, key: creds.key, cert: creds.cert, ...(session !== undefined ? { session } : {}) })
  const result: Attempt = { reused: false, connack: null, session: null }
  const packets = parser({ protocolVersion: 4 })
  let settle: () => void = () => undefined
  const done = new Promise<void>((resolve) => { settle = resolve })
  // Done once CONNACK and, after a full handshake, a ticket are in, or the server closed the connection.
  const check = (): void => { if (result.connack !== null && (result.connack !== 0 || result.reused || result.session !== null)) settle() }
  packets.on('packet', (p: Packet) => {
    if (p.cmd === 'connack') result.connack = p.returnCode ?? -1
    check()
  })
  socket.on('session', (s: Buffer) => { result.session = s; check() })
  socket.once('secureConnect', () => {
    result.reused = socket.isSessionReused()
    socket.write(generate({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clientId: creds.vin, clean: true, keepalive: 30 }))
  })
  socket.on('data', (chunk: Buffer) => packets.parse(chunk))
  socket.on('error', () => undefined)
  socket.once('close', () => settle())
  const timer = setTimeout(settle, 10_000)
  await done
  clearTimeout(timer)
  socket.destroy()
  return result
}
