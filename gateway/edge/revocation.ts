import { createHash } from 'node:crypto'
import fs from 'node:fs'
import path from 'node:path'
import type { TLSSocket } from 'node:tls'
import type { Logger } from 'pino'
import { indexCrls, pemBlocks, type CrlEntryIndex } from '../../certs/index.ts'
import type { CertLink, DeviceIdentity } from './device-identity.ts'
import type { SecurityRecorder } from './security-events.ts'

export interface RevocationDeps {
  /** The CRL file (one or several PEM CRLs: one per CA of the chain). */
  crlPath: string
  caPem: string
  logger: Logger
  security: SecurityRecorder
  /** Installs the CRLs for new handshakes (tls.Server.setSecureContext). */
  applyCrls: (crls: string[]) => void
  /** How often the file is looked at besides fs.watch (which misses changes on some file systems). */
  checkIntervalMs?: number
  /** A CRL this close to its nextUpdate is warned about in the log. */
  warnBeforeMs?: number
  now?: () => number
}

const MAX_TIMER_MS = 2 ** 31 - 1
const HOUR = 3600_000

/** `issuer/serial`: one revoked certificate. */
const key = (l: CertLink): string => `${l.issuer}/${l.serial}`

/**
 * Live revocation (README, "Security"): the CRL file is reloaded when it changes (fs.watch
 * on its directory, since `vgw certs revoke` replaces it by rename, plus a periodic stat)
 * and on SIGHUP; new handshakes get the new CRLs, and every live session whose chain is now
 * revoked is closed with a security event. Certificates revoked elsewhere in the cluster
 * arrive through `revokeAnnounced`. A session also ends when its certificate expires.
 */
export class Revocation {
  readonly #deps: RevocationDeps
  readonly #now: () => number
  #fromFile = new Set<string>()
  readonly #announced = new Set<string>()
  readonly #live = new Map<TLSSocket, { who: DeviceIdentity, timer: NodeJS.Timeout | null }>()
  #crls: CrlEntryIndex[] = []
  #digest = ''
  #stat = ''
  #watcher: fs.FSWatcher | null = null
  #interval: NodeJS.Timeout | null = null
  #debounce: NodeJS.Timeout | null = null
  #lastWarnAt = 0
  #reloading: Promise<CertLink[]> = Promise.resolve([])
  /** Called with the certificates this reload newly revoked (to tell the cluster). */
  onRevoked: (links: CertLink[]) => void = () => undefined

  constructor (deps: RevocationDeps) {
    this.#deps = deps
    this.#now = deps.now ?? Date.now
  }

  /** Loads the file once (the listener already has it), then watches it. */
  async start (): Promise<void> {
    await this.reload('start')
    const dir = path.dirname(this.#deps.crlPath)
    const base = path.basename(this.#deps.crlPath)
    try {
      this.#watcher = fs.watch(dir, (_event, name) => { if (name === null || name === base) this.#soon('watch') })
      this.#watcher.on('error', (err) => this.#deps.logger.warn({ err }, 'CRL watch failed; the periodic check remains'))
    } catch (err) {
      this.#deps.logger.warn({ err, dir }, 'cannot watch the CRL directory; the periodic check remains')
    }
    this.#interval = setInterval(() => this.#soon('check'), this.#deps.checkIntervalMs ?? 2000)
    this.#interval.unref()
  }

  close (): void {
    this.#watcher?.close()
    if (this.#interval !== null) clearInterval(this.#interval)
    if (this.#debounce !== null) clearTimeout(this.#debounce)
    for (const entry of this.#live.values()) if (entry.timer !== null) clearTimeout(entry.timer)
    this.#live.clear()
  }

  /** Whether any certificate of the chain is revoked (CRL file or cluster announcement). */
  isRevoked (chain: readonly CertLink[]): boolean {
    return chain.some((l) => this.#fromFile.has(key(l)) || this.#announced.has(key(l)))
  }

  /**
   * Whether a CRL that OpenSSL checks for this chain is past its nextUpdate: a full handshake is
   * then refused (CRL_HAS_EXPIRED), and a resumed TLS session, which OpenSSL does not verify again,
   * must be too (issue #20). OpenSSL checks the CRL of every CA of the chain (CRL_CHECK_ALL).
   */
  isStaleFor (chain: readonly CertLink[]): boolean {
    const now = this.#now()
    return this.#crls.some((c) => c.nextUpdate !== null && c.nextUpdate.getTime() < now && chain.some((l) => l.issuer === c.issuer))
  }

  /** A verified session: closed when revoked, and at its certificate's expiry. */
  track (socket: TLSSocket, who: DeviceIdentity): void {
    const entry = { who, timer: null as NodeJS.Timeout | null }
    this.#live.set(socket, entry)
    const arm = (): void => {
      const left = who.notAfter - this.#now()
      if (left <= 0) { this.#end(socket, 'GW_ERR_CERT_EXPIRED', 'certificate.expired', 'certificate expired while connected: session closed'); return }
      entry.timer = setTimeout(arm, Math.min(left, MAX_TIMER_MS))
      entry.timer.unref()
    }
    arm()
    socket.once('close', () => {
      if (entry.timer !== null) clearTimeout(entry.timer)
      this.#live.delete(socket)
    })
  }

  /** Certificates another gateway of the cluster found revoked. */
  revokeAnnounced (links: readonly CertLink[]): void {
    for (const l of links) this.#announced.add(key(l))
    this.#sweep('cluster')
  }

  /**
   * Why vehicles cannot be admitted now: a CRL past its nextUpdate makes OpenSSL refuse
   * every certificate of its CA (fail closed). Null when every CRL is current.
   */
  staleReason (): string | null {
    const now = this.#now()
    const stale = this.#crls.filter((c) => c.nextUpdate !== null && c.nextUpdate.getTime() < now)
    if (stale.length === 0) return null
    return `the revocation list in ${this.#deps.crlPath} passed its nextUpdate (${stale.map((c) => c.nextUpdate?.toISOString()).join(', ')}): vehicle certificates of its CA are refused until a fresh CRL is installed`
  }

  /** Reads the file again (SIGHUP, a change, the periodic check); an unchanged file costs one stat. */
  reload (why: 'start' | 'watch' | 'check' | 'signal'): Promise<CertLink[]> {
    this.#reloading = this.#reloading.then(() => this.#reload(why), () => this.#reload(why))
    return this.#reloading
  }

  #soon (why: 'watch' | 'check'): void {
    if (this.#debounce !== null) return
    // A rename shows up as several events; one read after they settle is enough.
    this.#debounce = setTimeout(() => {
      this.#debounce = null
      this.reload(why).catch((err: unknown) => this.#deps.logger.error({ err }, 'CRL reload failed'))
    }, why === 'watch' ? 50 : 0)
    this.#debounce.unref()
  }

  async #reload (why: string): Promise<CertLink[]> {
    this.#warnIfStale()
    let stat: fs.Stats
    try {
      stat = await fs.promises.stat(this.#deps.crlPath)
    } catch (err) {
      this.#deps.logger.error({ err, crlPath: this.#deps.crlPath }, 'CRL file unreadable: the last one loaded stays in force')
      return []
    }
    const statKey = `${stat.ino}/${stat.size}/${stat.mtimeMs}`
    if (statKey === this.#stat && why !== 'signal' && why !== 'start') return []
    this.#stat = statKey
    const pem = await fs.promises.readFile(this.#deps.crlPath, 'utf8')
    const digest = createHash('sha256').update(pem).digest('hex')
    if (digest === this.#digest) return []
    let parsed: Awaited<ReturnType<typeof indexCrls>>
    try {
      parsed = await indexCrls(this.#deps.caPem, pem)
    } catch (err) {
      this.#deps.logger.error({ err, crlPath: this.#deps.crlPath }, 'CRL file not parseable: the last one loaded stays in force')
      return []
    }
    if (parsed.unmatched > 0) this.#deps.logger.warn({ unmatched: parsed.unmatched }, 'CRLs in the file not signed by any CA of VGW_TLS_CA are ignored')
    const previous = this.#fromFile
    this.#digest = digest
    this.#crls = parsed.crls
    this.#fromFile = new Set(parsed.crls.flatMap((c) => [...c.serials].map((serial) => key({ issuer: c.issuer, serial }))))
    if (why !== 'start') this.#deps.applyCrls(pemBlocks(pem, 'X509 CRL'))
    const added = [...this.#fromFile].filter((k) => !previous.has(k))
    this.#deps.logger.info({ why, crls: parsed.crls.length, revoked: this.#fromFile.size, newlyRevoked: why === 'start' ? 0 : added.length }, 'revocation list loaded')
    this.#warnIfStale(true)
    if (why === 'start') return []
    this.#sweep('crl')
    const links = added.map((k) => { const i = k.lastIndexOf('/'); return { issuer: k.slice(0, i), serial: k.slice(i + 1) } })
    if (links.length > 0) this.onRevoked(links)
    return links
  }

  /** Closes every live session whose chain is revoked now. */
  #sweep (source: 'crl' | 'cluster'): void {
    for (const [socket, { who }] of this.#live) {
      if (this.isRevoked(who.chain)) {
        this.#end(socket, 'GW_ERR_CERT_REVOKED', 'certificate.revoked', `certificate revoked while connected (${source === 'crl' ? 'revocation list' : 'announced by another gateway'}): session closed`)
      }
    }
  }

  #end (socket: TLSSocket, code: 'GW_ERR_CERT_REVOKED' | 'GW_ERR_CERT_EXPIRED', type: string, detail: string): void {
    const entry = this.#live.get(socket)
    if (entry === undefined) return
    this.#live.delete(socket)
    if (entry.timer !== null) clearTimeout(entry.timer)
    this.#deps.security.record(entry.who, code, type, detail)
    socket.destroy()
  }

  /** Logs a CRL near or past its nextUpdate, at most once an hour unless `force`. */
  #warnIfStale (force = false): void {
    const now = this.#now()
    if (!force && now - this.#lastWarnAt < HOUR) return
    const stale = this.staleReason()
    const soon = this.#crls.filter((c) => c.nextUpdate !== null && c.nextUpdate.getTime() >= now && c.nextUpdate.getTime() - now < (this.#deps.warnBeforeMs ?? 24 * HOUR))
    if (stale !== null) this.#deps.logger.error({ crlPath: this.#deps.crlPath }, stale)
    else if (soon.length > 0) this.#deps.logger.warn({ crlPath: this.#deps.crlPath, nextUpdate: soon.map((c) => c.nextUpdate?.toISOString()) }, 'the revocation list reaches its nextUpdate soon: install a fresh CRL, or vehicles of its CA will be refused')
    else return
    this.#lastWarnAt = now
  }
}
