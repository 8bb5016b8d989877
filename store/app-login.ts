import { createHmac } from 'node:crypto'
import pg from 'pg'
import { GatewayError } from '../protocol/index.ts'

/**
 * The gateway's own login (README, "Security"): a member of vgw_app and nothing else, so a
 * session of the gateway can neither RESET ROLE nor SET ROLE back to the owner. The owner's
 * credentials (DATABASE_URL) stay with migrations, retention and retention policies.
 */
export const APP_LOGIN = 'vgw_gateway'

/**
 * The app login's URL derived from the owner's: same server and database, user vgw_gateway, and
 * a password derived from the owner's (HMAC), so both sides compute it and neither is stored.
 * Without a password in the owner's URL (trust or peer authentication, PGPASSWORD, ~/.pgpass)
 * there is nothing secret to derive from: the HMAC of an empty string would be the same password
 * on every installation, so that is refused (GW_ERR_CONFIG_INVALID).
 */
export function derivedAppUrl (ownerUrl: string): string {
  const url = new URL(ownerUrl)
  const ownerPassword = decodeURIComponent(url.password)
  if (ownerPassword === '') {
    throw new GatewayError('GW_ERR_CONFIG_INVALID', `DATABASE_URL carries no password, so the password of the gateway's login ${APP_LOGIN} cannot be derived from it: put the owner's password in DATABASE_URL, or create a login that is a member of vgw_app only and set VGW_APP_DATABASE_URL`)
  }
  url.username = APP_LOGIN
  url.password = createHmac('sha256', ownerPassword).update('vgw app login v1').digest('base64url')
  return url.toString()
}

async function canLogIn (appUrl: string): Promise<boolean> {
  const client = new pg.Client({ connectionString: appUrl, connectionTimeoutMillis: 10_000 })
  try {
    await client.connect()
    return true
  } catch (err) {
    const code = (err as { code?: string }).code
    // Unknown role or wrong password: ours to set up. Anything else (server away) is an error.
    if (code === '28P01' || code === '28000') return false
    throw err
  } finally {
    await client.end().catch(() => undefined)
  }
}

/**
 * Creates (or re-keys) the derived app login with the owner's connection. Roles belong to the
 * cluster, so several databases (tests, racing gateways) may do this at once: a race is retried.
 */
export async function ensureAppLogin (ownerUrl: string, appUrl: string): Promise<void> {
  if (await canLogIn(appUrl)) return
  const password = decodeURIComponent(new URL(appUrl).password)
  const owner = new pg.Client({ connectionString: ownerUrl, connectionTimeoutMillis: 10_000 })
  await owner.connect()
  try {
    for (let attempt = 0; ; attempt++) {
      try {
        const exists = (await owner.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [APP_LOGIN])).rowCount !== 0
        const pw = owner.escapeLiteral(password)
        // NOINHERIT is not wanted: with `role=vgw_app` in the startup packet or without it, the login has vgw_app's rights and no others.
        await owner.query(exists ? `ALTER ROLE ${APP_LOGIN} LOGIN PASSWORD ${pw}` : `CREATE ROLE ${APP_LOGIN} LOGIN PASSWORD ${pw}`)
        await owner.query(`GRANT vgw_app TO ${APP_LOGIN}`)
        return
      } catch (err) {
        const code = (err as { code?: string }).code
        // duplicate_object / unique_violation: another session created it first; XX000: "tuple concurrently updated".
        if (attempt < 5 && (code === '42710' || code === '23505' || code === 'XX000')) continue
        if (code === '42501') {
          throw new GatewayError('GW_ERR_CONFIG_INVALID', `the DATABASE_URL user cannot create the login ${APP_LOGIN}: give it CREATEROLE, or create a login that is a member of vgw_app only and set VGW_APP_DATABASE_URL`, { cause: err })
        }
        throw err
      }
    }
  } finally {
    await owner.end().catch(() => undefined)
  }
}
