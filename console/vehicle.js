import { useEffect, useState } from 'preact/hooks'
import { api, openStream, showPayload } from './api.js'
import { html } from './html.js'
import { messagePage, messagePath, segment, vehiclePath } from './paths.js'
import { ErrorBox, Link } from './widgets.js'

const FINAL = new Set(['delivered', 'acknowledged', 'expired', 'failed'])

function Status ({ v }) {
  return html`<div class="cards">
    <div class="card"><div class="value" data-testid="connected">${v.connected ? 'connected' : 'not connected'}</div>
      <div class="label">${v.connected ? `since ${v.connectedSince ?? '?'}` : `last seen ${v.lastSeenAt ?? 'never'}`}</div></div>
    <div class="card"><div class="value">${v.market ?? '—'}</div><div class="label">market</div></div>
    <div class="card"><div class="value">${v.pendingMessages}</div><div class="label">messages pending</div></div>
    <div class="card"><div class="mono">${v.certFingerprint ?? '—'}</div><div class="label">certificate (SHA-256)</div></div>
  </div>`
}

function Transactions ({ items }) {
  return html`<table data-testid="transactions"><thead><tr><th>time</th><th>dir</th><th>kind</th><th>type</th><th>status</th><th>message id</th><th>payload</th></tr></thead>
    <tbody>${items.map((i) => html`<tr key=${i.id}>
      <td class="mono">${i.occurredAt}</td><td>${i.direction}</td><td>${i.kind}</td><td>${i.type ?? ''}</td>
      <td class=${`status-${i.status}`}>${i.status}${i.errorCode ? ` ${i.errorCode}` : ''}</td>
      <td class="mono">${i.direction === 'down' && i.messageId ? html`<${Link} href=${messagePage(i.messageId)}>${i.messageId}<//>` : i.messageId ?? ''}</td>
      <td class="mono">${showPayload(i.payloadBase64).slice(0, 200)}</td></tr>`)}</tbody></table>`
}

/** The send form, then the message's status until it is final. */
function SendForm ({ vin }) {
  const [sent, setSent] = useState(null)
  const [error, setError] = useState(null)
  useEffect(() => {
    if (sent === null || FINAL.has(sent.status)) return
    const timer = setTimeout(() => api(messagePath(sent.id)).then((m) => setSent({ id: m.id, status: m.status }), setError), 500)
    return () => clearTimeout(timer)
  }, [sent])
  const submit = (e) => {
    e.preventDefault()
    const form = new FormData(e.target)
    setError(null)
    api(`${vehiclePath(vin)}/messages`, { method: 'POST', body: { type: form.get('type'), payload: form.get('payload') } })
      .then((r) => setSent({ id: r.id, status: r.status }), setError)
  }
  // No action: the form is only ever sent by the handler above, to this vehicle's own route (the CSP's form-action 'self' backs that up).
  return html`<form class="inline" onSubmit=${submit} data-testid="send-form">
      <label>type<input name="type" required value="service.reminder" /></label>
      <label>payload<input name="payload" size="40" /></label>
      <button class="primary" type="submit">Send</button>
    </form>
    ${error && html`<${ErrorBox} error=${error} />`}
    ${sent && html`<p>Message <${Link} href=${messagePage(sent.id)}><span class="mono">${sent.id}</span><//>: <b class=${`status-${sent.status}`} data-testid="sent-status">${sent.status}</b></p>`}`
}

/** /console/vehicles/{vin}: connection, pending messages, the log paged back in time, a send form. */
export function VehiclePage ({ vin }) {
  const [vehicle, setVehicle] = useState(null)
  const [pages, setPages] = useState({ items: [], next: null })
  const [error, setError] = useState(null)
  const load = () => {
    api(vehiclePath(vin)).then(setVehicle, setError)
    api(`${vehiclePath(vin)}/transactions?limit=25`).then((p) => setPages({ items: p.items, next: p.nextCursor }), setError)
  }
  useEffect(() => {
    load()
    // Whatever this vehicle does shows at once: the stream says something changed, the API says what.
    let pending = null
    const close = openStream({ vin }, () => { pending ??= setTimeout(() => { pending = null; load() }, 200) })
    return () => { close(); clearTimeout(pending) }
  }, [vin])
  const older = () => api(`${vehiclePath(vin)}/transactions?limit=25&cursor=${segment(pages.next)}`)
    .then((p) => setPages({ items: [...pages.items, ...p.items], next: p.nextCursor }), setError)
  if (error) return html`<h1>Vehicle ${vin}</h1><${ErrorBox} error=${error} />`
  return html`
    <h1>Vehicle <span class="mono">${vin}</span></h1>
    ${vehicle && html`<${Status} v=${vehicle} />`}
    <h2>Send a message</h2>
    <${SendForm} vin=${vin} />
    <h2>Transactions</h2>
    <${Transactions} items=${pages.items} />
    ${pages.next && html`<p><button onClick=${older}>Older</button></p>`}`
}
