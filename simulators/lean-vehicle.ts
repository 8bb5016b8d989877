import net from 'node:net'
import tls from 'node:tls'
import { generate, parser, type Packet } from 'mqtt-packet'
import { encodeEnvelope, type EnvelopeInput } from '../protocol/index.ts'
import type { FleetCredentials } from './fleet-certs.ts'
import { nowMicros } from './fleet-metrics.ts'
import type { FleetVehicle, VehicleBehaviour, VehicleSinks } from './simulated-vehicle.ts'
import { telemetryEnvelope, UplinkPacer } from './uplink-pacer.ts'
import { reconnectDelayMs, stallReads } from './vehicle-link.ts'

interface Outgoing {
  messageId: string
  bytes: Buffer
  started: number
}

const MAX_QUEUE = 10_000

function outgoing (e: EnvelopeInput): Outgoing {
  return { messageId: e.messageId, bytes: Buffer.from(encodeEnvelope(e)), started: 0 }
}

/**
 * A publish-only vehicle for throughput benchmarks: the same certificate, CONNECT and
 * envelopes as SimulatedVehicle, written as raw MQTT 3.1.1 packets (mqtt-packet) on its
 * own TLS socket, without mqtt.js' client machinery, so that per message the load
 * generator does little more than the TLS write the broker has to match. It does not
 * subscribe (no downlinks) and keeps no session: what was in flight on a lost
 * connection is sent again, same bytes, on the next one.
 */
export class LeanVehicle implements FleetVehicle {
  readonly vin: string
  readonly market: string
  readonly acked: string[] = []
  readonly answers = new Map<string, string>()
  readonly #creds: FleetCredentials
  readonly #b: VehicleBehaviour
  readonly #s: VehicleSinks
  readonly #topic: string
  #socket: net.Socket | null = null
  #open = false
  #wantOnline = false
  readonly #pacer: UplinkPacer
  #reconnectTimer: NodeJS.Timeout | null = null
  #attempt = 0
  #connectStarted = 0
  #nextPacketId = 0
  readonly #inFlight = new Map<number, Outgoing>()
  readonly #queue: Outgoing[] = []
  /** The last TLS session ticket the server sent: the next connection resumes with it. */
  #session: Buffer | undefined

  constructor (vin: string, market: string, creds: FleetCredentials, behaviour: VehicleBehaviour, sinks: VehicleSinks) {
    this.vin = vin
    this.market = market
    this.#creds = creds
    this.#b = behaviour
    this.#s = sinks
    this.#topic = `vehicles/${vin}/up`
    this.#pacer = new UplinkPacer(behaviour, sinks.rateMultiplier, () => {
      if (this.#queue.length >= MAX_QUEUE) return
      this.#queue.push(outgoing(telemetryEnvelope(behaviour.payloadBytes)))
      this.#s.counters.uplinkQueued = Math.max(this.#s.counters.uplinkQueued, this.#queue.length)
      this.#flush()
    }, () => this.#flush())
  }

  get connected (): boolean {
    return this.#open
  }

  get idle (): boolean {
    return this.#inFlight.size === 0 && this.#queue.length === 0
  }

  hasReceived (): boolean {
    return false
  }

  goOnline (): void {
    this.#wantOnline = true
    if (this.#socket === null && this.#reconnectTimer === null) this.#connect()
  }

  goOffline (): void {
    this.#wantOnline = false
    if (this.#reconnectTimer !== null) clearTimeout(this.#reconnectTimer)
    this.#reconnectTimer = null
    this.#socket?.destroy()
  }

  startUplinks (): void {
    this.#pacer.start()
  }

  stopUplinks (): void {
    this.#pacer.stop()
  }

  killSocket (): void {
    if (this.#open) this.#socket?.destroy()
  }

  stallReads (ms: number): void {
    if (this.#socket !== null && this.#open) stallReads(this.#socket, ms)
  }

  close (): void {
    this.stopUplinks()
    this.goOffline()
  }

  #connect (): void {
    const url = new URL(this.#b.mqttUrl)
    const secure = url.protocol !== 'mqtt:'
    const port = Number(url.port === '' ? (secure ? 8883 : 1883) : url.port)
    this.#connectStarted = nowMicros()
    const socket = secure
      ? tls.connect({ host: url.hostname, port, ca: this.#b.ca, key: this.#creds.key, cert: this.#creds.cert, servername: net.isIP(url.hostname) === 0 ? url.hostname : undefined, session: this.#session })
      : net.connect({ host: url.hostname, port })
    if (secure && this.#b.resumeSessions !== false) socket.on('session', (session: Buffer) => { this.#session = session })
    socket.setNoDelay(true)
    this.#socket = socket
    const packets = parser({ protocolVersion: 4 })
    packets.on('packet', (p: Packet) => this.#onPacket(p))
    packets.on('error', () => socket.destroy())
    socket.once(secure ? 'secureConnect' : 'connect', () => {
      socket.write(generate({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clientId: this.vin, clean: true, keepalive: 0 }))
    })
    socket.on('data', (chunk: Buffer) => packets.parse(chunk))
    socket.on('error', () => undefined)
    socket.once('close', () => this.#onClose())
  }

  #onPacket (p: Packet): void {
    if (p.cmd === 'connack') {
      if (p.returnCode !== 0) {
        this.#s.errorCode(`FLEET_CONNACK_${p.returnCode ?? '?'}`)
        this.#socket?.destroy()
        return
      }
      this.#open = true
      this.#s.counters.connects++
      if ((this.#socket as Partial<tls.TLSSocket> | null)?.isSessionReused?.() === true) this.#s.counters.resumedConnects++
      this.#s.counters.connected++
      this.#s.connectHist.recordValue(Math.max(1, nowMicros() - this.#connectStarted))
      this.#attempt = 0
      this.#flush()
    } else if (p.cmd === 'puback') {
      const o = this.#inFlight.get(p.messageId as number)
      if (o === undefined) return
      this.#inFlight.delete(p.messageId as number)
      this.#s.counters.uplinkAcked++
      this.#s.uplinkHist.recordValue(Math.max(1, nowMicros() - o.started))
      this.acked.push(o.messageId)
      this.#flush()
    }
  }

  #onClose (): void {
    // In order, ahead of anything newer: the same bytes go again on the next connection.
    this.#queue.unshift(...this.#inFlight.values())
    this.#inFlight.clear()
    this.#socket = null
    if (this.#open) {
      this.#open = false
      this.#s.counters.connected--
      this.#s.counters.disconnects++
    } else {
      this.#s.counters.connectFailures++
    }
    if (!this.#wantOnline) return
    this.#reconnectTimer = setTimeout(() => {
      this.#reconnectTimer = null
      if (this.#wantOnline) this.#connect()
    }, reconnectDelayMs(this.#attempt++))
    this.#reconnectTimer.unref()
  }

  #flush (): void {
    const socket = this.#socket
    if (socket === null || !this.#open) return
    while (this.#inFlight.size < this.#b.inFlight) {
      if (this.#queue.length === 0) {
        if (!this.#pacer.fillsWindow) return
        this.#queue.push(outgoing(telemetryEnvelope(this.#b.payloadBytes)))
      }
      const o = this.#queue.shift() as Outgoing
      // Packet ids 1..65535, cycled: never one still in flight, as the window is far smaller [MQTT-2.3.1-2].
      this.#nextPacketId = this.#nextPacketId % 65535 + 1
      o.started = nowMicros()
      this.#inFlight.set(this.#nextPacketId, o)
      this.#s.counters.uplinkSent++
      socket.write(generate({ cmd: 'publish', topic: this.#topic, payload: o.bytes, qos: 1, messageId: this.#nextPacketId, retain: false, dup: false }))
    }
  }
}
