import type { FastifyInstance } from 'fastify'
import { GatewayError } from '../../../protocol/index.ts'
import { decodeFeedCursor, type FeedRepository } from '../../../store/index.ts'
import { withPayload, type EventHub, type StreamFilter } from '../../events/event-hub.ts'
import { replayFromLog } from '../../events/log-replay.ts'
import { Heartbeat, StreamSession } from '../stream-session.ts'

export interface StreamRoutesDeps {
  hub: EventHub
  /** The durable feed, for `since=` with an event's cursor. */
  feed: FeedRepository
  /** VGW_EVENT_PAYLOAD_MAX_BYTES: with include=payload, envelopes up to this size carry their payload. */
  payloadMaxBytes: number
  /** Streams open at once per API key; the next is refused with GW_ERR_STREAM_LIMIT. */
  maxPerKey: number
  /** Ping interval; a stream that misses a pong by the next ping is terminated. */
  pingMs: number
}

// The close code and reason for a stream over the per-key cap that won a race past the check before the upgrade.
const POLICY_VIOLATION = 1008

export async function streamRoutes (app: FastifyInstance, deps: StreamRoutesDeps): Promise<void> {
  const openPerKey = new Map<string, number>()
  const heartbeat = new Heartbeat(deps.pingMs)
  app.addHook('onClose', async () => heartbeat.stop())
  const full = (keyId: string): boolean => (openPerKey.get(keyId) ?? 0) >= deps.maxPerKey
  const refusal = (): string => `this API key already has ${deps.maxPerKey} streams open, the most allowed`
  app.get<{ Querystring: { vin?: string, kind?: string, type?: string, since?: string, include?: 'payload', token?: string } }>('/v1/stream', {
    websocket: true,
    config: { scope: 'stream:read' },
    // Refused before the upgrade, as a plain 429, while the key has its most streams open.
    preHandler: async (request) => {
      if (full(request.apiKey?.id ?? '')) throw new GatewayError('GW_ERR_STREAM_LIMIT', refusal())
      // A bad cursor is a plain 400 GW_ERR_INVALID_CURSOR, before the upgrade.
      const since = (request.query as { since?: string }).since
      if (since !== undefined && !/^\d{1,19}$/.test(since)) decodeFeedCursor(since)
    },
    schema: {
      summary: 'Live events (WebSocket), filterable; resume with since',
      description: 'At most VGW_STREAM_MAX_PER_KEY streams per API key (the next upgrade is answered 429 GW_ERR_STREAM_LIMIT). ' +
        'The gateway pings every VGW_STREAM_PING_MS and terminates a client that has not answered the previous ping; ' +
        'a client more than 1 MiB behind is closed with 1013.',
      querystring: {
        type: 'object',
        additionalProperties: false,
        properties: {
          vin: { type: 'string' },
          kind: { type: 'string' },
          type: { type: 'string' },
          since: { type: 'string', maxLength: 200, description: 'an event\'s seq (this gateway\'s memory) or its cursor (the log)' },
          include: { type: 'string', enum: ['payload'], description: 'payload: events carry payloadBase64 when their envelope is at most VGW_EVENT_PAYLOAD_MAX_BYTES' },
          token: { type: 'string' }
        }
      }
    }
  }, (socket, request) => {
    const keyId = request.apiKey?.id ?? ''
    if (full(keyId)) {
      socket.close(POLICY_VIOLATION, `GW_ERR_STREAM_LIMIT: ${refusal()}`.slice(0, 123))
      return
    }
    openPerKey.set(keyId, (openPerKey.get(keyId) ?? 0) + 1)
    const session = new StreamSession(socket, request.log)
    session.onEnd(() => {
      const n = (openPerKey.get(keyId) ?? 1) - 1
      if (n > 0) openPerKey.set(keyId, n)
      else openPerKey.delete(keyId)
    })
    heartbeat.watch(socket)
    const q = request.query
    const filter: StreamFilter = {
      ...(q.vin !== undefined ? { vin: q.vin } : {}),
      ...(q.kind !== undefined ? { kind: q.kind } : {}),
      ...(q.type !== undefined ? { type: q.type } : {})
    }
    // Replay and subscribe in the same tick, so that no event falls between them; live events wait behind the replay.
    const payload = q.include === 'payload'
    const unsubscribe = deps.hub.subscribe(filter, (e, data, fields) => session.send(e, payload ? withPayload(data, fields) : data))
    session.onEnd(unsubscribe)
    if (q.since !== undefined && /^\d{1,19}$/.test(q.since)) {
      const since = Number(q.since)
      const { events, gap, oldestSeq } = deps.hub.replay(since, filter, payload)
      const first = gap ? [{ event: 'gap', since, oldestSeq, message: 'events after since are no longer retained here; resume with an event\'s cursor, or read GET /v1/events' }] : []
      void session.replay([[...first, ...events]])
    } else if (q.since !== undefined) {
      // A cursor: resume from the log, then go on live without repeating what the replay carried.
      const replay = replayFromLog(deps.feed, decodeFeedCursor(q.since), filter, payload ? deps.payloadMaxBytes : undefined)
      session.replay(replay.pages, replay.alreadySent).catch((err: unknown) => {
        request.log.warn({ err }, 'stream resume from the log failed; closing the stream')
        socket.close(1011, 'resume failed')
      })
    }
  })
}
