export type PostResult = { ok: true } | { ok: false, error: string }

/**
 * One POST of a batch. Only a 2xx answer counts (a redirect is not followed: it fails). The timeout
 * covers the whole exchange, so a receiver that hangs holds only its own webhook, and only that long.
 */
export async function postBatch (url: string, body: string, headers: Record<string, string>, timeoutMs: number, stop: AbortSignal): Promise<PostResult> {
  const signal = AbortSignal.any([stop, AbortSignal.timeout(timeoutMs)])
  try {
    const res = await fetch(url, { method: 'POST', body, headers, redirect: 'manual', signal })
    // The answer's body is not needed: let it go rather than buffer whatever the receiver sends.
    await res.body?.cancel().catch(() => undefined)
    return res.status >= 200 && res.status < 300 ? { ok: true } : { ok: false, error: `HTTP ${res.status}` }
  } catch (err) {
    if (signal.aborted && !stop.aborted) return { ok: false, error: `no answer within ${timeoutMs} ms` }
    const cause = (err as { cause?: { code?: string, message?: string } }).cause
    return { ok: false, error: (cause?.code ?? cause?.message ?? (err as Error).message).slice(0, 200) }
  }
}
