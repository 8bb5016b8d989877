// The API key lives in this tab's session storage only: never in a URL the browser shows or
// keeps, never in local storage. The stream is the one exception the browser forces: a
// WebSocket cannot carry headers, so the key goes in its ?token= (the gateway redacts it in logs).
const KEY = 'vgw.apiKey'

export const session = {
  get key () { return sessionStorage.getItem(KEY) },
  set (key) { sessionStorage.setItem(KEY, key) },
  clear () { sessionStorage.removeItem(KEY) }
}

export class ApiError extends Error {
  constructor (status, code, message) {
    super(message)
    this.status = status
    this.code = code
  }
}

/** A REST call with the session's key; JSON in, JSON (or text) out; a GW_ERR_ answer throws ApiError. */
export async function api (path, init = {}) {
  const headers = { authorization: `Bearer ${session.key}`, ...(init.body !== undefined ? { 'content-type': 'application/json' } : {}) }
  const res = await fetch(path, { ...init, headers, body: init.body === undefined ? undefined : JSON.stringify(init.body) })
  const text = await res.text()
  if (res.ok) return res.headers.get('content-type')?.startsWith('application/json') ? JSON.parse(text) : text
  let error = { code: `HTTP_${res.status}`, message: text }
  try { error = JSON.parse(text).error ?? error } catch { /* not JSON */ }
  if (res.status === 401) session.clear()
  throw new ApiError(res.status, error.code, error.message)
}

/** True when the key is known (the gateway answers anything but 401 to a call that needs a key). */
export async function checkKey (key) {
  const res = await fetch('/v1/messages/00000000-0000-7000-8000-000000000000', { headers: { authorization: `Bearer ${key}` } })
  return res.status !== 401
}

/** The live stream (GET /v1/stream), reconnecting after a second; returns a function that closes it. */
export function openStream (filter, onEvent, onState = () => {}) {
  let ws = null
  let closed = false
  const connect = () => {
    const params = new URLSearchParams({ ...filter, token: session.key })
    ws = new WebSocket(`${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/v1/stream?${params}`)
    ws.onopen = () => onState('live')
    ws.onmessage = (m) => {
      try { onEvent(JSON.parse(m.data)) } catch { /* a frame that is not an event */ }
    }
    ws.onclose = () => {
      onState('closed')
      if (!closed) setTimeout(connect, 1000)
    }
  }
  connect()
  return () => { closed = true; ws?.close() }
}

/** A payload for people: UTF-8 text when it is text, else base64. */
export function showPayload (base64) {
  if (base64 === null || base64 === undefined) return ''
  const bytes = Uint8Array.from(atob(base64), (c) => c.charCodeAt(0))
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes)
  } catch {
    return `base64:${base64}`
  }
}
