import pino, { type Logger } from 'pino'

/** JSON logs on stdout; keys and tokens never printed (STYLE 10). */
export function createLogger (level: string): Logger {
  return pino({
    level,
    base: { service: 'vgw', pid: process.pid },
    redact: { paths: ['req.headers.authorization', 'apiKey', 'key', '*.key', 'token', 'password', 'databaseUrl'], censor: '[redacted]' }
  })
}
