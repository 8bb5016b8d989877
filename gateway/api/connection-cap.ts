import type { Server } from 'node:http'
import type { Socket } from 'node:net'
import { SampledLog } from '../edge/sampled-log.ts'

/**
 * Connections to the REST port from one source address, at most (VGW_HTTP_MAX_CONNECTIONS_PER_ADDRESS).
 * Past it a new connection is closed at the TCP accept, before its request is read: the work one
 * address can put in front of every other request (one request per keep-alive connection per
 * turn of the event loop, answered or refused) is bounded, so a flood of cheap requests without
 * a key (probes, made-up tokens) cannot raise the event-loop delay that load shedding watches
 * (issue #20). Refusals are logged sampled (GW_ERR_CONNECTION_LIMIT).
 */
export function capConnectionsPerAddress (server: Server, max: number, log: SampledLog): void {
  // An entry lives only while a connection from its address is open.
  const open = new Map<string, number>()
  // Before http's own listener, so that a refused socket never gets a parser.
  server.prependListener('connection', (socket: Socket) => {
    const address = socket.remoteAddress
    if (address === undefined) { socket.destroy(); return }
    const n = open.get(address) ?? 0
    if (n >= max) {
      log.note('GW_ERR_CONNECTION_LIMIT', address, 'REST connection refused', { code: 'GW_ERR_CONNECTION_LIMIT', max })
      socket.destroy()
      return
    }
    open.set(address, n + 1)
    socket.once('close', () => {
      const left = (open.get(address) ?? 1) - 1
      if (left <= 0) open.delete(address)
      else open.set(address, left)
    })
  })
}
