import type { FastifyError, FastifyInstance, FastifyReply } from 'fastify'
import type { Logger } from 'pino'
import { GatewayError, errorCatalogue, type ErrorCode } from '../../protocol/index.ts'

export function sendError (reply: FastifyReply, code: ErrorCode, message?: string): FastifyReply {
  const spec = errorCatalogue[code]
  return reply.code(spec.httpStatus).send({ error: { code, message: message ?? spec.message } })
}

// Fastify's own error codes mapped onto the catalogue (README, "REST API").
const FASTIFY_CODES: Record<string, ErrorCode> = {
  FST_ERR_CTP_INVALID_JSON_BODY: 'GW_ERR_BAD_JSON',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'GW_ERR_BAD_JSON',
  FST_ERR_CTP_BODY_TOO_LARGE: 'GW_ERR_BODY_TOO_LARGE',
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'GW_ERR_UNSUPPORTED_MEDIA_TYPE',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'GW_ERR_BAD_JSON'
}

/**
 * The request URL for a log line: its path only. A query string can hold a stream's `?token=`
 * (an API key) or anything else a client put there; logs never carry it.
 */
export function loggableUrl (url: string): string {
  return url.split(/[?#]/, 1)[0] ?? ''
}

/** Every error leaves the API as `{ error: { code, message } }` with a catalogue code. */
export function installErrorHandling (app: FastifyInstance, logger: Logger): void {
  app.setErrorHandler((err: FastifyError | GatewayError, request, reply) => {
    if (err instanceof GatewayError) {
      if (err.httpStatus >= 500) logger.error({ err, url: loggableUrl(request.url) }, 'request failed')
      return sendError(reply, err.code, err.message)
    }
    if (err.validation !== undefined) {
      const first = err.validation[0]
      const field = first === undefined
        ? ''
        : (first.instancePath !== '' ? first.instancePath.slice(1).replace(/\//g, '.') : String(first.params?.missingProperty ?? first.params?.additionalProperty ?? ''))
      const where = err.validationContext ?? 'request'
      return sendError(reply, 'GW_ERR_VALIDATION', `${where}${field !== '' ? `.${field}` : ''}: ${first?.message ?? 'invalid'}`)
    }
    const mapped = err.code !== undefined ? FASTIFY_CODES[err.code] : undefined
    if (mapped !== undefined) return sendError(reply, mapped, err.message)
    if (err.statusCode !== undefined && err.statusCode >= 400 && err.statusCode < 500) {
      return sendError(reply, 'GW_ERR_VALIDATION', err.message)
    }
    logger.error({ err, url: loggableUrl(request.url) }, 'request failed')
    return sendError(reply, 'GW_ERR_INTERNAL')
  })
  app.setNotFoundHandler((request, reply) => sendError(reply, 'GW_ERR_NOT_FOUND', `no route ${request.method} ${request.url.split('?')[0] ?? ''}`))
}
