import type tls from 'node:tls'
import type { Aedes, Client } from 'aedes'
import type { GatewayMetrics } from './gateway-metrics.ts'

/** A bounded label from an error: its GW_ERR_ code, or "other". */
function errorCode (err: unknown): string {
  const code = (err as { code?: unknown } | null)?.code
  return typeof code === 'string' && /^GW_ERR_[A-Z_]{1,40}$/.test(code) ? code : 'other'
}

/**
 * Meters the broker from outside: Aedes calls its hooks as properties of the instance, so the
 * hooks vgw installed (broker-hooks.ts) are wrapped here rather than edited. authorizePublish
 * calling back is what releases the PUBACK (docs/architecture.md, "The path of an uplink"), so
 * its duration is the PUBLISH→PUBACK latency the vehicle sees, quota delays and commit included.
 */
export function probeBroker (broker: Aedes, m: GatewayMetrics): void {
  const authorizePublish = broker.authorizePublish
  broker.authorizePublish = (client, packet, callback) => {
    if (client === null) return authorizePublish.call(broker, client, packet, callback)
    const end = m.puback.startTimer()
    authorizePublish.call(broker, client, packet, (err) => {
      if (err === null || err === undefined) {
        end()
      } else {
        const code = errorCode(err)
        m.uplinks.inc({ outcome: 'refused', code })
        if (code === 'GW_ERR_QUOTA_EXCEEDED') m.quotaRefusals.inc()
      }
      callback(err)
    })
  }
  const authenticate = broker.authenticate
  broker.authenticate = (client, username, password, done) => {
    authenticate.call(broker, client, username, password, (err, ok) => {
      if (err !== null) m.connectRefusals.inc({ code: errorCode(err) })
      done(err, ok)
    })
  }
  // Only sessions that began (CONNACK 0) end as a disconnect here.
  const sessions = new WeakSet<Client>()
  broker.on('client', (client) => {
    sessions.add(client)
    m.connects.inc()
  })
  broker.on('clientDisconnect', (client) => {
    if (sessions.delete(client)) m.disconnects.inc()
  })
}

/** TLS handshakes that failed (bad certificate, cut off, timed out), by Node's error code. */
export function probeTls (server: tls.Server, m: GatewayMetrics): void {
  server.on('tlsClientError', (err: Error & { code?: string }) => {
    const reason = typeof err.code === 'string' && /^[A-Z0-9_]{1,64}$/.test(err.code) ? err.code : 'other'
    m.tlsFailures.inc({ reason })
  })
}
