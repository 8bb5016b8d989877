import { useEffect, useState } from 'preact/hooks'
import { api, openStream } from './api.js'
import { html } from './html.js'
import { vehiclePage } from './paths.js'
import { ErrorBox, Link } from './widgets.js'

function Table ({ rows, columns }) {
  return html`<table><thead><tr>${columns.map(([label]) => html`<th>${label}</th>`)}</tr></thead>
    <tbody>${rows.map((r) => html`<tr>${columns.map(([, cell]) => html`<td>${cell(r)}</td>`)}</tr>`)}</tbody></table>`
}

/** A read-only list from one GET. */
function ListPage ({ title, path, columns }) {
  const [rows, setRows] = useState(null)
  const [error, setError] = useState(null)
  useEffect(() => { api(path).then((b) => setRows(b.items), setError) }, [path])
  return html`<h1>${title}</h1>${error ? html`<${ErrorBox} error=${error} />` : rows === null ? html`<p>Loading…</p>` : html`<${Table} rows=${rows} columns=${columns} />`}`
}

const vinLink = (r) => r.vin ? html`<${Link} href=${vehiclePage(r.vin)}>${r.vin}<//>` : ''
const json = (v) => html`<span class="mono">${JSON.stringify(v)}</span>`

export const HoldsPage = () => html`<${ListPage} title="Legal holds" path="/v1/holds" columns=${[['vehicle', vinLink], ['reason', (r) => r.reason], ['since', (r) => r.createdAt ?? r.heldAt ?? ''], ['by', (r) => r.actor ?? '']]} />`
export const RetentionPage = () => html`<${ListPage} title="Retention policies" path="/v1/retention" columns=${[['market', (r) => r.market], ['period', (r) => r.period], ['days', (r) => r.retentionDays], ['updated', (r) => r.updatedAt]]} />`
export const AuditPage = () => html`<${ListPage} title="Audit trail" path="/v1/audit?limit=200" columns=${[['at', (r) => r.at], ['action', (r) => r.action], ['actor', (r) => r.actor], ['details', (r) => json(r.details ?? r.detail ?? null)]]} />`

/** Security events: those the gateway still holds in its stream ring, then live. */
export function SecurityPage () {
  const [events, setEvents] = useState([])
  useEffect(() => openStream({ kind: 'SECURITY', since: '0' }, (e) => setEvents((list) => [e, ...list].slice(0, 500))), [])
  return html`<h1>Security events</h1><p class="muted">Recent events kept by this gateway, then live. A vehicle's full record: its page, kind SECURITY.</p>
    <${Table} rows=${events} columns=${[['time', (e) => e.occurredAt], ['vehicle', vinLink], ['type', (e) => e.type], ['code', (e) => e.errorCode], ['details', (e) => json(e.details)]]} />`
}
