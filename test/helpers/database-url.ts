import { randomBytes } from 'node:crypto'

// One per process: the server trusts local connections, so it is never checked, only derived from.
const TRUST_PASSWORD = randomBytes(18).toString('base64url')

/**
 * A server URL (DATABASE_URL) with a password in it. The gateway derives its own login's password
 * from the owner's and refuses a URL without one (store/app-login.ts, README "Security"); a test
 * server that trusts local connections (CI's, `postgres://postgres@127.0.0.1:5432/test`) ignores
 * the password it is sent, so a random one serves. PGPASSWORD, when set, is the real one.
 */
export function withPassword (serverUrl: string): string {
  const url = new URL(serverUrl)
  if (url.password !== '') return serverUrl
  url.password = process.env.PGPASSWORD ?? TRUST_PASSWORD
  return url.toString()
}
