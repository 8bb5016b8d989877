import { useEffect, useState } from 'preact/hooks'
import { api } from './api.js'
import { html } from './html.js'
import { messagePath, vehiclePage } from './paths.js'
import { ErrorBox, Link } from './widgets.js'

function detail (s) {
  if (s.step === 'accepted') return s.apiKeyId ? `by API key ${s.apiKeyId}` : s.campaignId ? `campaign ${s.campaignId}` : ''
  if (s.step === 'published') return `attempt ${s.attempt}` + (s.connection ? ` on the connection from ${s.connection.remoteAddress} since ${s.connection.connectedAt}` : '')
  if (s.step === 'app_ack' || s.step === 'acknowledged') return s.ackStatus ?? ''
  return ''
}

/** /console/messages/{id}: the trace of one downlink as a timeline. */
export function MessagePage ({ id }) {
  const [trace, setTrace] = useState(null)
  const [error, setError] = useState(null)
  useEffect(() => { api(`${messagePath(id)}/trace`).then(setTrace, setError) }, [id])
  if (error) return html`<${ErrorBox} error=${error} />`
  if (trace === null) return html`<p>Loading…</p>`
  return html`
    <h1>Message <span class="mono">${trace.id}</span></h1>
    <p>to <${Link} href=${vehiclePage(trace.vin)}>${trace.vin}<//>, now <b class=${`status-${trace.status}`} data-testid="message-status">${trace.status}</b></p>
    <ul class="timeline" data-testid="timeline">
      ${trace.steps.map((s) => html`<li>
        <span class="step">${s.step}</span> <span class="mono">${s.at}</span>
        <span class="delta">${s.sincePreviousMs > 0 ? `+${s.sincePreviousMs} ms` : ''}</span>
        <div class="muted">${detail(s)}</div></li>`)}
    </ul>`
}
