import http from 'node:http'

export interface ExportResponse {
  status: number
  headers: http.IncomingHttpHeaders
  body: http.IncomingMessage
  /** The body's chunks, read on demand; reading on after the last one is a rejection when the body was cut. */
  chunks: AsyncIterator<Buffer>
}

/**
 * One GET over its own TCP connection (node:http without keep-alive, as `curl` does): fetch's
 * pool opens a spare connection after an abort, which would hold the server's close.
 */
export function getExport (url: string, key: string): Promise<ExportResponse> {
  return new Promise((resolve, reject) => {
    http.get(url, { agent: false, headers: { authorization: `Bearer ${key}` } }, (body) => {
      resolve({ status: body.statusCode ?? 0, headers: body.headers, body, chunks: body[Symbol.asyncIterator]() as AsyncIterator<Buffer> })
    }).once('error', reject)
  })
}

/** Reads a body to its end; `error` is set when it ended without completing. */
export async function readAll (res: ExportResponse): Promise<{ text: string, error: unknown }> {
  let text = ''
  try {
    for (;;) {
      const { done, value } = await res.chunks.next()
      if (done === true) return { text, error: null }
      text += value.toString('utf8')
    }
  } catch (error) {
    return { text, error }
  }
}
