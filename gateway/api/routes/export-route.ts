import type { ServerResponse } from 'node:http'
import type { FastifyBaseLogger, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { GatewayError } from '../../../protocol/index.ts'
import type { Store } from '../../../store/index.ts'
import { EXPORT_FILE, failureReason, produceExport, writeChunk, type ExportRequest } from '../../lifecycle/legal-export.ts'
import { sendError } from '../api-errors.ts'
import { actorOf } from '../auth.ts'
import { parseTime, requireVin } from '../request-values.ts'

export interface ExportLimits {
  /** Exports running at once in this gateway (VGW_EXPORT_MAX_CONCURRENT); the next is refused with 503. */
  maxConcurrent: number
  /** What a refused client is told to wait (Retry-After). */
  retryAfterSeconds?: number
  /**
   * An export waiting for a client that took fewer bytes than this per second, averaged over
   * `rateWindowMs`, fails (VGW_EXPORT_MIN_BYTES_PER_S; 0: not checked), so a slow reader cannot hold a slot for good.
   */
  minBytesPerSecond?: number
  /** The window of that average, and the grace before the first check (VGW_EXPORT_RATE_WINDOW_MS). */
  rateWindowMs?: number
}

export interface ExportRouteDeps {
  store: Store
  now: () => number
  exports?: ExportLimits
}

/** The export pool's default size: refusing beyond it means no export ever waits for a connection. */
const DEFAULT_LIMITS = { maxConcurrent: 2, retryAfterSeconds: 10, minBytesPerSecond: 64 * 1024, rateWindowMs: 30_000 }
/** Lines are sent in writes of about this size rather than one write per record. */
const WRITE_BYTES = 64 * 1024
/** How long the error line of a failed export may take to leave before the socket is cut anyway. */
const FAIL_FLUSH_MS = 5000
/** A client that reads nothing for this long fails its export, so it cannot hold an export slot for good. */
const CLIENT_STALL_MS = 60_000

const CLIENT_GONE = new Error('the client went away')
const SHUTTING_DOWN = new GatewayError('GW_ERR_NOT_READY', 'the gateway is shutting down')

const vinParams = { type: 'object', required: ['vin'], properties: { vin: { type: 'string' } } } as const

/**
 * GET /v1/vehicles/{vin}/export: the legal export as NDJSON, its manifest the last line
 * (docs/legal-export.md). Bounded in number (a bulkhead: each holds an export-pool
 * connection); a client that goes away stops the export and releases its connection; an
 * export that fails part-way ends with a GW_ERR_EXPORT_FAILED line and no terminating chunk.
 */
export function exportRoute (app: FastifyInstance, deps: ExportRouteDeps): void {
  const limits = { ...DEFAULT_LIMITS, ...deps.exports }
  const running = new Set<AbortController>()
  // Stop running exports on shutdown, or the HTTP server would wait for them to finish.
  app.addHook('preClose', (done) => {
    for (const stop of running) stop.abort(SHUTTING_DOWN)
    done()
  })

  app.get<{ Params: { vin: string }, Querystring: { from: string, to: string } }>('/v1/vehicles/:vin/export', {
    config: { scope: 'legal' },
    schema: {
      summary: 'Legal export of a vehicle\'s transactions as NDJSON with a hash chain; the last line is {"manifest": …}, or {"error": …} and an aborted body when it failed part-way',
      params: vinParams,
      querystring: { type: 'object', required: ['from', 'to'], properties: { from: { type: 'string' }, to: { type: 'string' }, token: { type: 'string' } } }
    }
  }, async (request, reply) => {
    requireVin(request.params.vin)
    const from = parseTime('from', request.query.from)
    const to = parseTime('to', request.query.to)
    if (to <= from) throw new GatewayError('GW_ERR_VALIDATION', 'querystring.to: must be after from')
    if (running.size >= limits.maxConcurrent) {
      reply.header('retry-after', String(limits.retryAfterSeconds))
      return sendError(reply, 'GW_ERR_EXPORT_BUSY', `${running.size} legal exports are running, the most allowed at once (VGW_EXPORT_MAX_CONCURRENT); retry after ${limits.retryAfterSeconds} s`)
    }
    const stop = new AbortController()
    running.add(stop)
    try {
      const actor = actorOf(request)
      await streamExport(deps.store, request, reply, { vin: request.params.vin, from, to, actor, now: deps.now, signal: stop.signal }, stop, limits)
    } finally {
      running.delete(stop)
    }
    return reply
  })
}

/** Lines gathered into larger writes; a write waits for the client (backpressure) or rejects when it is gone. */
class ResponseWriter {
  #buffer = ''
  #started = false
  /** Bytes handed to the socket so far. */
  written = 0
  /** Whether the export is waiting for the client to take what was written (backpressure). */
  waiting = false
  readonly #reply: FastifyReply
  readonly #signal: AbortSignal

  constructor (reply: FastifyReply, signal: AbortSignal) {
    this.#reply = reply
    this.#signal = signal
  }

  get started (): boolean {
    return this.#started
  }

  get res (): ServerResponse {
    return this.#reply.raw
  }

  /** Lines handed to the writer: written, or in the buffer that a failure's ending still writes. */
  lines = 0

  async line (line: string): Promise<void> {
    this.#buffer += line
    this.lines++
    if (this.#buffer.length >= WRITE_BYTES) await this.flush()
  }

  async flush (): Promise<void> {
    if (!this.#started) this.#start()
    if (this.#buffer === '') return
    // Checked before the buffer is taken, so that a stopped export's last lines stay for its ending to write.
    this.#signal.throwIfAborted()
    if (this.res.destroyed) throw new Error('the output was closed')
    const chunk = this.take()
    this.written += Buffer.byteLength(chunk)
    this.waiting = true
    try {
      await writeChunk(this.res, chunk, AbortSignal.any([this.#signal, AbortSignal.timeout(CLIENT_STALL_MS)]))
    } finally {
      this.waiting = false
    }
  }

  /** The lines not yet written. */
  take (): string {
    const chunk = this.#buffer
    this.#buffer = ''
    return chunk
  }

  // Headers go out with the first records, so an export that cannot start (no database)
  // still gets an ordinary error answer. From here on the route writes the response itself.
  #start (): void {
    this.#reply.hijack()
    for (const [name, value] of Object.entries(this.#reply.getHeaders())) if (value !== undefined) this.res.setHeader(name, value)
    this.res.writeHead(200, { 'content-type': 'application/x-ndjson' })
    this.#started = true
  }
}

/**
 * Fails an export whose client reads too slowly: at the end of each window (the first is the
 * grace), an export that is waiting for its client and wrote less than the minimum rate's worth
 * in that window is stopped. An export held back by the database (not waiting for the client) is
 * never stopped by this: only the client's own pace counts.
 */
function watchClientRate (out: ResponseWriter, stop: AbortController, limits: Required<ExportLimits>): () => void {
  if (limits.minBytesPerSecond === 0) return () => {}
  const least = limits.minBytesPerSecond * limits.rateWindowMs / 1000
  let before = 0
  const timer = setInterval(() => {
    const taken = out.written - before
    before = out.written
    if (out.waiting && taken < least) {
      stop.abort(new GatewayError('GW_ERR_EXPORT_FAILED', `the client read ${Math.round(taken * 1000 / limits.rateWindowMs)} bytes/s over the last ${limits.rateWindowMs / 1000} s, ` +
        `below the ${limits.minBytesPerSecond} bytes/s an export needs (VGW_EXPORT_MIN_BYTES_PER_S)`))
    }
  }, limits.rateWindowMs)
  return () => clearInterval(timer)
}

async function streamExport (store: Store, request: FastifyRequest, reply: FastifyReply, req: ExportRequest, stop: AbortController, limits: Required<ExportLimits>): Promise<void> {
  const out = new ResponseWriter(reply, stop.signal)
  const onClose = (): void => { if (!out.res.writableFinished) stop.abort(CLIENT_GONE) }
  out.res.on('close', onClose)
  const unwatch = watchClientRate(out, stop, limits)
  try {
    const manifest = await produceExport(store, req, async (line) => await out.line(line), EXPORT_FILE)
    await out.flush()
    out.res.end(JSON.stringify({ manifest }) + '\n')
  } catch (err) {
    if (!out.started) throw err
    // The cursor is closed and its connection returned by now: the slot is freed at once, while the
    // error line still goes out (for at most FAIL_FLUSH_MS) to a client that may be slow to take it.
    void fail(out, request.log, err, { vin: req.vin, lines: out.lines }, stop.signal)
  } finally {
    unwatch()
    out.res.off('close', onClose)
  }
}

/**
 * Ends a started export visibly as failed: the lines so far, one `{"error": …}` line, and
 * then the connection is cut without chunked encoding's terminating chunk, so an HTTP client
 * reports an incomplete body (curl exit 18, fetch "terminated") even if it never reads the lines.
 */
async function fail (out: ResponseWriter, log: FastifyBaseLogger, err: unknown, ctx: { vin: string, lines: number }, signal: AbortSignal): Promise<void> {
  if (signal.aborted && signal.reason === CLIENT_GONE) {
    log.info(ctx, 'legal export stopped: the client went away; its transaction was rolled back')
    out.res.destroy()
    return
  }
  // A stop of the gateway's own (shutdown, a client too slow) says why through its reason, not the abort it caused.
  const reason = signal.aborted && signal.reason instanceof GatewayError
    ? failureReason(signal.reason)
    : err instanceof Error && err.name === 'TimeoutError' ? `the client read nothing for ${CLIENT_STALL_MS / 1000} s` : failureReason(err)
  log.error({ err, ...ctx }, `legal export failed part-way after ${ctx.lines} records: ${reason}; the response ends with a GW_ERR_EXPORT_FAILED line and no terminating chunk`)
  const line = out.take() + JSON.stringify({ error: { code: 'GW_ERR_EXPORT_FAILED', message: `the export failed after ${ctx.lines} records and is incomplete: ${reason}`, records: ctx.lines } }) + '\n'
  await new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, FAIL_FLUSH_MS)
    out.res.write(line, () => { clearTimeout(timer); resolve() })
  })
  out.res.destroy()
}
