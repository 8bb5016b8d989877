import mqtt, { type MqttClient } from 'mqtt'
import type { TLSSocket } from 'node:tls'
import { encodeEnvelope, newUuidV7, parseEnvelope, type EnvelopeInput } from '../protocol/index.ts'
import type { FleetCredentials } from './fleet-certs.ts'
import { nowMicros, type FleetCounters } from './fleet-metrics.ts'
import type * as hdr from 'hdr-histogram-js'
import { telemetryEnvelope, UplinkPacer } from './uplink-pacer.ts'
import { reconnectDelayMs, stallReads } from './vehicle-link.ts'

export interface VehicleBehaviour {
  mqttUrl: string
  ca: string
  uplinkRatePerVehicle: number
  /** As fast as acknowledged: a new uplink as soon as one of the `inFlight` slots is free (no timers). */
  closedLoop: boolean
  payloadBytes: number
  inFlight: number
  ackDelayMs: [number, number]
  rejectShare: number
  /** Reconnect with the last TLS session ticket (a resumed, cheaper handshake); default true. */
  resumeSessions?: boolean
}

export interface VehicleSinks {
  counters: FleetCounters
  connectHist: hdr.Histogram
  uplinkHist: hdr.Histogram
  /** A downlink MESSAGE seen for the first time, with when. */
  received: (messageId: string, atMicros: number) => void
  errorCode: (code: string) => void
  /** Scales the uplink rate over time (scenarios). */
  rateMultiplier: () => number
}

const MAX_QUEUE = 10_000

/** What a fleet worker drives: SimulatedVehicle, or LeanVehicle for throughput benchmarks. */
export interface FleetVehicle {
  readonly vin: string
  readonly market: string
  readonly acked: string[]
  readonly answers: Map<string, string>
  readonly connected: boolean
  readonly idle: boolean
  hasReceived(messageId: string): boolean
  goOnline(): void
  goOffline(): void
  startUplinks(): void
  stopUplinks(): void
  killSocket(): void
  stallReads(ms: number): void
  close(): void
}

interface Outgoing {
  bytes: Buffer
  messageId: string
  /** Sent on the current connection and waiting for its PUBACK. */
  inFlight: boolean
}

/**
 * One simulated telematics unit: mutual TLS with its own certificate, Poisson uplinks
 * with at most `inFlight` unacknowledged, a subscription to its down topic, dedup by
 * message_id, an ACK after a think time, and reconnects with backoff when dropped.
 */
export class SimulatedVehicle implements FleetVehicle {
  readonly vin: string
  readonly market: string
  /** message_id of every uplink (telemetry, events, ACKs) whose PUBACK arrived. */
  readonly acked: string[] = []
  /** message_id → the ack_status this vehicle answered. */
  readonly answers = new Map<string, string>()
  readonly #creds: FleetCredentials
  readonly #b: VehicleBehaviour
  readonly #s: VehicleSinks
  #client: MqttClient | null = null
  #wantOnline = false
  readonly #pacer: UplinkPacer
  #reconnectTimer: NodeJS.Timeout | null = null
  #attempt = 0
  #connectStarted = 0
  #open = false
  readonly #inFlight = new Set<Outgoing>()
  #pendingAcks = 0
  readonly #queue: Outgoing[] = []
  readonly #seen = new Set<string>()

  constructor (vin: string, market: string, creds: FleetCredentials, behaviour: VehicleBehaviour, sinks: VehicleSinks) {
    this.vin = vin
    this.market = market
    this.#creds = creds
    this.#b = behaviour
    this.#s = sinks
    this.#pacer = new UplinkPacer(behaviour, sinks.rateMultiplier, () => this.#enqueue(telemetryEnvelope(behaviour.payloadBytes)), () => this.#flush())
  }

  get connected (): boolean {
    return this.#client?.connected === true
  }

  /** Nothing in flight, queued or waiting to be acknowledged. */
  get idle (): boolean {
    return this.#inFlight.size === 0 && this.#queue.length === 0 && this.#pendingAcks === 0
  }

  hasReceived (messageId: string): boolean {
    return this.#seen.has(messageId)
  }

  goOnline (): void {
    this.#wantOnline = true
    if (this.#client === null) this.#connect()
    else if (!this.#client.connected && this.#reconnectTimer === null) this.#reconnect(0)
  }

  goOffline (): void {
    this.#wantOnline = false
    if (this.#reconnectTimer !== null) clearTimeout(this.#reconnectTimer)
    this.#reconnectTimer = null
    this.#client?.end(true)
  }

  startUplinks (): void {
    this.#pacer.start()
  }

  stopUplinks (): void {
    this.#pacer.stop()
  }

  /** Drops the TCP connection under the client, as a dead radio link would. */
  killSocket (): void {
    const stream = this.#client?.stream
    if (stream !== undefined && this.connected) stream.destroy()
  }

  /** Stops reading from the socket for a while (a stalled link). */
  stallReads (ms: number): void {
    const stream = this.#client?.stream as (NodeJS.ReadableStream & { pause(): void, resume(): void }) | undefined
    if (stream !== undefined && this.connected) stallReads(stream, ms)
  }

  close (): void {
    this.stopUplinks()
    this.goOffline()
  }

  #connect (): void {
    const url = new URL(this.#b.mqttUrl)
    this.#connectStarted = nowMicros()
    // mqtt:// (plain TCP) only serves the benchmarks' peers; the gateway speaks mqtts:// alone.
    const tls = url.protocol !== 'mqtt:'
    const client = mqtt.connect({
      protocol: tls ? 'mqtts' : 'mqtt',
      host: url.hostname,
      port: Number(url.port === '' ? (tls ? 8883 : 1883) : url.port),
      ...(tls ? { ca: this.#b.ca, key: this.#creds.key, cert: this.#creds.cert } : {}),
      clientId: this.vin,
      clean: true,
      protocolVersion: 4,
      keepalive: 60,
      reconnectPeriod: 0,
      connectTimeout: 30_000
    })
    this.#client = client
    this.#keepTickets(client)
    client.on('connect', () => {
      this.#open = true
      this.#s.counters.connects++
      if ((client.stream as Partial<TLSSocket>).isSessionReused?.() === true) this.#s.counters.resumedConnects++
      this.#s.counters.connected++
      this.#s.connectHist.recordValue(Math.max(1, nowMicros() - this.#connectStarted))
      this.#attempt = 0
      client.subscribe(`vehicles/${this.vin}/down`, { qos: 1 })
      this.#flush()
    })
    client.on('message', (_topic, payload) => this.#onDownlink(payload))
    client.on('close', () => {
      // Whatever waited for a PUBACK on the lost connection is sent again on the next one
      // (same bytes, so the gateway stores it once); late callbacks from the old one are ignored.
      for (const o of this.#inFlight) {
        o.inFlight = false
        this.#queue.unshift(o)
      }
      this.#inFlight.clear()
      if (this.#open) {
        this.#open = false
        this.#s.counters.connected--
        this.#s.counters.disconnects++
      } else {
        this.#s.counters.connectFailures++
      }
      if (this.#wantOnline) this.#reconnect(reconnectDelayMs(this.#attempt++))
    })
    client.on('error', () => undefined)
  }

  #reconnect (delayMs: number): void {
    if (this.#reconnectTimer !== null) return
    this.#reconnectTimer = setTimeout(() => {
      this.#reconnectTimer = null
      if (!this.#wantOnline || this.#client === null) return
      this.#connectStarted = nowMicros()
      this.#client.reconnect()
      this.#keepTickets(this.#client)
    }, delayMs)
    this.#reconnectTimer.unref()
  }

  /**
   * mqtt.js builds each reconnection's TLS socket from client.options: the last ticket the
   * gateway sent goes there, so the next handshake resumes the session.
   */
  #keepTickets (client: MqttClient): void {
    if (this.#b.resumeSessions === false) return
    (client.stream as MqttClient['stream'] | undefined)?.on('session', (session: Buffer) => { Object.assign(client.options, { session }) })
  }

  #enqueue (e: EnvelopeInput): void {
    if (this.#queue.length >= MAX_QUEUE) return
    this.#queue.push({ bytes: Buffer.from(encodeEnvelope(e)), messageId: e.messageId, inFlight: false })
    this.#s.counters.uplinkQueued = Math.max(this.#s.counters.uplinkQueued, this.#queue.length)
    this.#flush()
  }

  #flush (): void {
    const client = this.#client
    if (client === null || !client.connected || client.disconnecting) return
    while (this.#inFlight.size < this.#b.inFlight) {
      if (this.#queue.length === 0) {
        if (!this.#pacer.fillsWindow) return
        const e = telemetryEnvelope(this.#b.payloadBytes)
        this.#queue.push({ bytes: Buffer.from(encodeEnvelope(e)), messageId: e.messageId, inFlight: false })
      }
      this.#send(client, this.#queue.shift() as Outgoing)
    }
  }

  #send (client: MqttClient, o: Outgoing): void {
    o.inFlight = true
    this.#inFlight.add(o)
    this.#s.counters.uplinkSent++
    const started = nowMicros()
    client.publish(`vehicles/${this.vin}/up`, o.bytes, { qos: 1 }, (err) => {
      if (!o.inFlight) return
      o.inFlight = false
      this.#inFlight.delete(o)
      if (err === undefined || err === null) {
        this.#s.counters.uplinkAcked++
        this.#s.uplinkHist.recordValue(Math.max(1, nowMicros() - started))
        this.acked.push(o.messageId)
        this.#flush()
      } else {
        // Not acknowledged: a telematics unit keeps it and sends the same bytes again,
        // on the next connection (mqtt.js may call back synchronously while disconnecting).
        this.#queue.unshift(o)
      }
    })
  }

  #onDownlink (payload: Buffer): void {
    let e
    try {
      e = parseEnvelope(payload)
    } catch {
      this.#s.errorCode('FLEET_UNDECODABLE_DOWNLINK')
      return
    }
    if (e.kind === 'RESPONSE' && e.type === 'error') {
      this.#s.counters.errorNotices++
      this.#s.errorCode(e.ackReason)
      return
    }
    if (e.kind !== 'MESSAGE') return
    if (this.#seen.has(e.messageId)) {
      this.#s.counters.downlinkDuplicates++
      return
    }
    this.#seen.add(e.messageId)
    this.#s.counters.downlinkReceived++
    this.#s.received(e.messageId, nowMicros())
    const [lo, hi] = this.#b.ackDelayMs
    const reject = Math.random() < this.#b.rejectShare
    this.#pendingAcks++
    setTimeout(() => {
      this.#pendingAcks--
      const status = reject ? 'REJECTED' : 'READ'
      this.answers.set(e.messageId, status)
      if (reject) this.#s.counters.rejectsSent++
      this.#s.counters.acksSent++
      this.#enqueue({
        messageId: newUuidV7(),
        correlationId: e.messageId,
        kind: 'ACK',
        type: 'message.ack',
        createdAtMs: Date.now(),
        ackStatus: status,
        ...(reject ? { ackReason: 'FLEET_SIMULATED_REJECT' } : {})
      })
    }, lo + Math.random() * (hi - lo)).unref()
  }
}
