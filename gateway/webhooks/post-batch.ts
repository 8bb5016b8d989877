import http from 'node:http'
import https from 'node:https'
import { DESTINATION_FORBIDDEN, hostOf, portOf, type DestinationPolicy } from './destination-policy.ts'

export type PostResult = { ok: true } | { ok: false, error: string }

/**
 * Why a POST failed, as a class (README, "Webhooks"): never the socket's own text, which would tell
 * whoever registers a webhook what answers where (an open port from a closed one, a host's TLS name).
 */
export function errorClass (err: unknown): string {
  const e = err as { code?: unknown, name?: unknown, cause?: { code?: unknown } }
  const code = String(e.code ?? e.cause?.code ?? '')
  if (code === DESTINATION_FORBIDDEN) return 'destination_forbidden'
  if (code === 'ECONNREFUSED') return 'connect_refused'
  if (/^(ENOTFOUND|EAI_)/.test(code)) return 'dns'
  if (code === 'ETIMEDOUT' || e.name === 'TimeoutError') return 'timeout'
  if (code === 'ECONNRESET' || code === 'EPIPE') return 'connection_reset'
  if (/^(EHOSTUNREACH|ENETUNREACH|EHOSTDOWN|ENETDOWN|EADDRNOTAVAIL)$/.test(code)) return 'unreachable'
  if (/^(ERR_TLS|ERR_SSL|EPROTO|CERT_|UNABLE_TO|DEPTH_ZERO|SELF_SIGNED|ERR_OSSL)/.test(code)) return 'tls'
  if (code.startsWith('HPE_')) return 'protocol'
  return 'error'
}

/** The agents of a delivery: connections are kept and reused per destination (a webhook posts batch after batch). */
export interface PostAgents { http: http.Agent, https: https.Agent }

export function postAgents (): PostAgents {
  return { http: new http.Agent({ keepAlive: true }), https: new https.Agent({ keepAlive: true }) }
}

/**
 * One POST of a batch. Only a 2xx answer counts (a redirect is not followed: it fails). The timeout
 * covers the whole exchange, so a receiver that hangs holds only its own webhook, and only that long.
 * The destination is checked on the address actually connected to: a literal address before any
 * connection, a name on each address the resolver answers (net's `lookup` hook), so no connection
 * is ever opened to a forbidden address.
 */
export async function postBatch (url: string, body: string, headers: Record<string, string>, opts: { timeoutMs: number, stop: AbortSignal, policy: DestinationPolicy, agents: PostAgents }): Promise<PostResult> {
  const target = new URL(url)
  if (opts.policy.refusedLiteral(target) !== null) return { ok: false, error: 'destination_forbidden' }
  const signal = AbortSignal.any([opts.stop, AbortSignal.timeout(opts.timeoutMs)])
  const secure = target.protocol === 'https:'
  const request = secure ? https.request : http.request
  try {
    const status = await new Promise<number>((resolve, reject) => {
      const req = request(target, {
        method: 'POST',
        headers: { ...headers, 'content-length': String(Buffer.byteLength(body)) },
        agent: secure ? opts.agents.https : opts.agents.http,
        lookup: opts.policy.lookupFor(hostOf(target), portOf(target)),
        signal
      }, (res) => {
        // The answer's body is not needed: let it go rather than buffer whatever the receiver sends.
        res.resume()
        resolve(res.statusCode ?? 0)
      })
      req.once('error', reject)
      req.end(body)
    })
    return status >= 200 && status < 300 ? { ok: true } : { ok: false, error: `http_status ${status}` }
  } catch (err) {
    if (signal.aborted && !opts.stop.aborted) return { ok: false, error: 'timeout' }
    return { ok: false, error: errorClass(err) }
  }
}
