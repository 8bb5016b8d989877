import type { FastifyInstance } from 'fastify'
import type { EventHub, StreamEvent, StreamFilter } from '../../events/event-hub.ts'

export interface StreamRoutesDeps {
  hub: EventHub
}

// A client that reads slower than this much backlog is dropped rather than buffered without end.
const MAX_BACKLOG_BYTES = 8 * 1024 * 1024

export async function streamRoutes (app: FastifyInstance, deps: StreamRoutesDeps): Promise<void> {
  app.get<{ Querystring: { vin?: string, kind?: string, type?: string, since?: number, token?: string } }>('/v1/stream', {
    websocket: true,
    config: { scope: 'stream:read' },
    schema: {
      summary: 'Live events (WebSocket), filterable; resume with since',
      querystring: {
        type: 'object',
        additionalProperties: false,
        properties: {
          vin: { type: 'string' },
          kind: { type: 'string' },
          type: { type: 'string' },
          since: { type: 'integer', minimum: 0 },
          token: { type: 'string' }
        }
      }
    }
  }, (socket, request) => {
    const q = request.query
    const filter: StreamFilter = {
      ...(q.vin !== undefined ? { vin: q.vin } : {}),
      ...(q.kind !== undefined ? { kind: q.kind } : {}),
      ...(q.type !== undefined ? { type: q.type } : {})
    }
    const send = (e: StreamEvent | Record<string, unknown>): void => {
      if (socket.bufferedAmount > MAX_BACKLOG_BYTES) {
        socket.close(1013, 'client too slow')
        return
      }
      socket.send(JSON.stringify(e))
    }
    // Replay and subscribe in the same tick, so that no event falls between them.
    if (q.since !== undefined) {
      const { events, gap, oldestSeq } = deps.hub.replay(q.since, filter)
      if (gap) send({ event: 'gap', since: q.since, oldestSeq, message: 'events after since are no longer retained; read the REST API for what was missed' })
      for (const e of events) send(e)
    }
    const unsubscribe = deps.hub.subscribe(filter, send)
    socket.on('close', unsubscribe)
    socket.on('error', unsubscribe)
  })
}
