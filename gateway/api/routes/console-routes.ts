import { createHash } from 'node:crypto'
import fs from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import zlib from 'node:zlib'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { sendError } from '../api-errors.ts'

/*
 * The operator console (README, "Operating vgw"): static files only. The page holds no data
 * and needs no key; everything it shows comes from the REST API and the stream with the key the
 * operator typed in, so every view has exactly that key's scopes. The front end is plain ES
 * modules (Preact, htm, uPlot straight from node_modules): nothing to build, nothing from a CDN.
 */

const CONSOLE_DIR = fileURLToPath(new URL('../../../console/', import.meta.url))

const resolved = (specifier: string): string => fileURLToPath(import.meta.resolve(specifier))

/** Files the console may load, by the name it asks for: nothing else is readable through this route. */
function assetFiles (): Map<string, string> {
  const own = fs.readdirSync(CONSOLE_DIR).filter((f) => /\.(js|css)$/.test(f))
  return new Map<string, string>([
    ...own.map((f): [string, string] => [f, path.join(CONSOLE_DIR, f)]),
    ['vendor/preact.mjs', resolved('preact')],
    ['vendor/hooks.mjs', resolved('preact/hooks')],
    ['vendor/htm.mjs', resolved('htm')],
    ['vendor/uplot.mjs', resolved('uplot/dist/uPlot.esm.js')],
    ['vendor/uplot.css', resolved('uplot/dist/uPlot.min.css')]
  ])
}

interface Asset { type: string, body: Buffer, gzip: Buffer }

const TYPES: Record<string, string> = { '.js': 'text/javascript; charset=utf-8', '.mjs': 'text/javascript; charset=utf-8', '.css': 'text/css; charset=utf-8', '.html': 'text/html; charset=utf-8' }

function load (file: string): Asset {
  const body = fs.readFileSync(file)
  return { type: TYPES[path.extname(file)] ?? 'application/octet-stream', body, gzip: zlib.gzipSync(body, { level: 9 }) }
}

/**
 * The console's Content-Security-Policy: scripts only from the gateway itself plus the inline import
 * map, by its hash; API calls and the stream only to the gateway (connect-src 'self' covers ws: of the
 * same host); forms only to the gateway; no framing, no <base>, no plugins. A crafted URL or an
 * injected element can then neither load script nor send the operator's key anywhere else.
 */
export function consolePolicy (indexHtml: string): string {
  const inline = [...indexHtml.matchAll(/<script(?![^>]*\bsrc=)[^>]*>([\s\S]*?)<\/script>/g)]
    .map((m) => `'sha256-${createHash('sha256').update(m[1] ?? '').digest('base64')}'`)
  return [
    "default-src 'none'",
    `script-src 'self' ${inline.join(' ')}`.trim(),
    "style-src 'self'",
    "img-src 'self' data:",
    "connect-src 'self'",
    "form-action 'self'",
    "frame-ancestors 'none'",
    "base-uri 'none'",
    "object-src 'none'"
  ].join('; ')
}

async function send (request: FastifyRequest, reply: FastifyReply, asset: Asset): Promise<FastifyReply> {
  const gzip = /\bgzip\b/.test(String(request.headers['accept-encoding'] ?? ''))
  reply.header('cache-control', 'no-cache').header('x-content-type-options', 'nosniff').header('vary', 'accept-encoding').type(asset.type)
  if (gzip) reply.header('content-encoding', 'gzip')
  return reply.send(gzip ? asset.gzip : asset.body)
}

export async function consoleRoutes (app: FastifyInstance): Promise<void> {
  // Read once at start: the console is part of the release, like the code.
  const assets = new Map([...assetFiles()].map(([name, file]) => [name, load(file)]))
  const index = load(path.join(CONSOLE_DIR, 'index.html'))
  const policy = consolePolicy(index.body.toString('utf8'))
  // Every console response carries the policy, the page and its assets alike (this plugin's routes only).
  app.addHook('onRequest', async (_request, reply) => { reply.header('content-security-policy', policy) })
  const page = async (request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> => {
    // The page is not to be framed (clickjacking) and sends no referrer with the key's views.
    reply.header('x-frame-options', 'DENY').header('referrer-policy', 'no-referrer')
    return send(request, reply, index)
  }
  app.get('/console', { schema: { hide: true } }, page)
  app.get('/console/*', { schema: { hide: true } }, page)
  app.get<{ Params: { '*': string } }>('/console/assets/*', { schema: { hide: true } }, async (request, reply) => {
    const asset = assets.get(request.params['*'])
    if (asset === undefined) return sendError(reply, 'GW_ERR_NOT_FOUND', `no console asset ${request.params['*'].slice(0, 80)}`)
    return send(request, reply, asset)
  })
}
