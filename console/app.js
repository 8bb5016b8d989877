import { render } from 'preact'
import { useEffect, useState } from 'preact/hooks'
import { checkKey, session } from './api.js'
import { html } from './html.js'
import { AuditPage, HoldsPage, RetentionPage, SecurityPage } from './lists.js'
import { MessagePage } from './message.js'
import { Overview } from './overview.js'
import { isUuid, isVin, vehiclePage } from './paths.js'
import { navigate, onNavigate } from './router.js'
import { VehiclePage } from './vehicle.js'
import { Link } from './widgets.js'

function Login ({ onLogin }) {
  const [error, setError] = useState(null)
  const submit = async (e) => {
    e.preventDefault()
    const key = new FormData(e.target).get('key').trim()
    if (await checkKey(key)) {
      session.set(key)
      onLogin()
    } else {
      setError('The gateway does not know this API key.')
    }
  }
  return html`<div class="login"><h1>vgw console</h1>
    <form onSubmit=${submit}>
      <label>API key<input type="password" name="key" autocomplete="current-password" required autofocus /></label>
      <button class="primary" type="submit">Log in</button>
      ${error && html`<p class="error">${error}</p>`}
    </form>
    <p class="muted">The key stays in this browser tab (session storage). Each view shows what its scopes allow.</p></div>`
}

/** A path segment as text, or null when it does not decode. */
function decoded (segment) {
  try { return decodeURIComponent(segment) } catch { return null }
}

function NotFound ({ what }) {
  return html`<h1>Not found</h1><p class="error" data-testid="not-found">${what}</p>`
}

function route (path) {
  const [, , section, raw, ...more] = path.split('/')
  const id = raw === undefined ? null : decoded(raw)
  // Only a whole, valid VIN or message id opens a page: anything else never reaches an API call.
  if (section === 'vehicles' && raw) {
    return isVin(id) && more.length === 0 ? html`<${VehiclePage} vin=${id} key=${id} />` : html`<${NotFound} what="This is not a VIN: 17 characters, digits and capital letters except I, O and Q." />`
  }
  if (section === 'messages' && raw) {
    return isUuid(id) && more.length === 0 ? html`<${MessagePage} id=${id} key=${id} />` : html`<${NotFound} what="This is not a message id." />`
  }
  if (section === 'security') return html`<${SecurityPage} />`
  if (section === 'holds') return html`<${HoldsPage} />`
  if (section === 'retention') return html`<${RetentionPage} />`
  if (section === 'audit') return html`<${AuditPage} />`
  return html`<${Overview} />`
}

function FindVehicle () {
  const go = (e) => {
    e.preventDefault()
    const vin = new FormData(e.target).get('vin').trim().toUpperCase()
    if (vin) navigate(vehiclePage(vin))
  }
  return html`<form onSubmit=${go}><input name="vin" placeholder="VIN" size="19" aria-label="VIN" /></form>`
}

function App () {
  const [path, setPath] = useState(location.pathname)
  const [loggedIn, setLoggedIn] = useState(session.key !== null)
  useEffect(() => onNavigate(setPath), [])
  if (!loggedIn || session.key === null) return html`<${Login} onLogin=${() => setLoggedIn(true)} />`
  const nav = [['/console', 'Overview'], ['/console/security', 'Security'], ['/console/holds', 'Holds'], ['/console/retention', 'Retention'], ['/console/audit', 'Audit']]
  return html`
    <header><b>vgw</b>
      ${nav.map(([href, label]) => html`<${Link} href=${href}>${label}<//>`)}
      <span class="spacer"></span><${FindVehicle} />
      <button onClick=${() => { session.clear(); setLoggedIn(false) }}>Log out</button></header>
    <main>${route(path)}</main>`
}

render(html`<${App} />`, document.getElementById('app'))
