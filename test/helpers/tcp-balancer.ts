import net from 'node:net'
import type { Test } from 'tap'

export interface Balancer {
  port: number
  /** Where new connections go; connections already made stay with their backend. */
  setBackends(ports: number[]): void
}

/**
 * A TCP load balancer on port 0 that passes connections (TLS included) through to one
 * of the backends, as a network load balancer in front of several gateways does. A
 * connection to a backend that is down is closed, so the client reconnects.
 */
export async function tcpBalancer (t: Test, backends: number[]): Promise<Balancer> {
  let ports = [...backends]
  let next = 0
  const sockets = new Set<net.Socket>()
  const server = net.createServer((client) => {
    sockets.add(client)
    client.on('close', () => sockets.delete(client))
    if (ports.length === 0) return client.destroy()
    const port = ports[next++ % ports.length] as number
    const upstream = net.connect(port, '127.0.0.1')
    sockets.add(upstream)
    upstream.on('close', () => { sockets.delete(upstream); client.destroy() })
    client.on('close', () => upstream.destroy())
    upstream.on('error', () => client.destroy())
    client.on('error', () => upstream.destroy())
    client.pipe(upstream).pipe(client)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => {
    for (const s of sockets) s.destroy()
    server.close(() => resolve())
  }))
  return {
    port: (server.address() as net.AddressInfo).port,
    setBackends (p) { ports = [...p] }
  }
}
