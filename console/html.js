import { h } from 'preact'
import htm from 'htm'

/** Tagged templates for Preact (htm): JSX without a build step. */
export const html = htm.bind(h)
