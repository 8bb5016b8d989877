import { useEffect, useState } from 'preact/hooks'
import { api, openStream } from './api.js'
import { Chart } from './charts.js'
import { html } from './html.js'

const WINDOW_S = 120

/** Per-second buckets of the last two minutes, per kind of event. */
function emptyBuckets () {
  return { uplinks: new Map(), downlinks: new Map(), errors: new Map(), security: new Map() }
}

function kindOf (e) {
  if (e.event === 'uplink') return e.status === 'rejected' ? 'errors' : 'uplinks'
  if (e.event === 'message.status' && e.status === 'sent') return 'downlinks'
  if (e.event === 'security') return 'security'
  return null
}

/** Vehicles connected, from /metrics when the key may read it. */
async function connectedVehicles () {
  const text = await api('/metrics')
  return text.split('\n').filter((l) => l.startsWith('vgw_vehicle_connections{')).reduce((n, l) => n + Number(l.split(' ').pop()), 0)
}

export function Overview () {
  const [buckets] = useState(emptyBuckets)
  const [totals, setTotals] = useState({ uplinks: 0, downlinks: 0, errors: 0, security: 0 })
  const [connected, setConnected] = useState(null)
  const [stream, setStream] = useState('connecting')
  const [, tick] = useState(0)
  useEffect(() => openStream({}, (e) => {
    const kind = kindOf(e)
    if (kind === null) return
    const second = Math.floor(Date.now() / 1000)
    buckets[kind].set(second, (buckets[kind].get(second) ?? 0) + 1)
    setTotals((t) => ({ ...t, [kind]: t[kind] + 1 }))
  }, setStream), [])
  useEffect(() => {
    const poll = () => connectedVehicles().then(setConnected, () => setConnected(undefined))
    poll()
    const timer = setInterval(() => { tick((n) => n + 1); poll() }, 1000)
    return () => clearInterval(timer)
  }, [])
  const now = Math.floor(Date.now() / 1000)
  const times = Array.from({ length: WINDOW_S }, (_, i) => now - WINDOW_S + 1 + i)
  const values = (kind) => times.map((t) => buckets[kind].get(t) ?? 0)
  const card = (label, value, id) => html`<div class="card"><div class="value" data-testid=${id}>${value}</div><div class="label">${label}</div></div>`
  return html`
    <h1>Fleet overview <span class="muted">stream: ${stream}</span></h1>
    <div class="cards">
      ${card('vehicles connected', connected === undefined ? '— (needs metrics:read)' : connected ?? '…', 'connected')}
      ${card('uplinks since opened', totals.uplinks, 'uplinks')}
      ${card('downlinks sent since opened', totals.downlinks, 'downlinks')}
      ${card('rejected uplinks', totals.errors, 'errors')}
      ${card('security events', totals.security, 'security')}
    </div>
    <div class="charts">
      <${Chart} title="uplinks / s" times=${times} series=${[{ label: 'uplinks', values: values('uplinks') }]} />
      <${Chart} title="downlinks sent / s" times=${times} series=${[{ label: 'downlinks', values: values('downlinks') }]} />
      <${Chart} title="errors and security events / s" times=${times} series=${[{ label: 'rejected', values: values('errors') }, { label: 'security', values: values('security') }]} />
    </div>`
}
