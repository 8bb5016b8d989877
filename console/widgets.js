import { html } from './html.js'
import { navigate } from './router.js'

export function ErrorBox ({ error }) {
  const text = error.status === 403 ? `This API key lacks the scope for this view (${error.message}).` : `${error.code ?? 'error'}: ${error.message}`
  return html`<p class="error" data-testid="error">${text}</p>`
}

/** An in-app link: no page load, the key stays in this tab. */
export function Link ({ href, children }) {
  return html`<a href=${href} onClick=${(e) => { e.preventDefault(); navigate(href) }}>${children}</a>`
}
