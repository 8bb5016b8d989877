import dns from 'node:dns'
import { BlockList, isIPv4, isIPv6, type LookupFunction } from 'node:net'

/*
 * Where a webhook may connect (README, "Security"): never to this machine, the private networks
 * behind it or a cloud's metadata service, unless the operator lists the destination in
 * VGW_WEBHOOK_ALLOW. The check runs on the address the connection is really made to (the
 * resolver's answer, at connect time), so a name that resolves elsewhere later (DNS rebinding)
 * gains nothing; a literal address is also refused when the webhook is registered.
 */

/** IPv4 ranges no webhook reaches unless allowed: this network, private, shared (CGNAT), loopback, link-local (metadata), special, multicast, reserved. */
const FORBIDDEN_V4 = [
  '0.0.0.0/8', '10.0.0.0/8', '100.64.0.0/10', '127.0.0.0/8', '169.254.0.0/16', '172.16.0.0/12', '192.0.0.0/24',
  '192.168.0.0/16', '198.18.0.0/15', '224.0.0.0/4', '240.0.0.0/4'
]
/** IPv6: unspecified, loopback, unique-local (incl. AWS's fd00:ec2::254), link-local, site-local, multicast. IPv4 inside IPv6 is checked as IPv4. */
const FORBIDDEN_V6 = ['::/128', '::1/128', 'fc00::/7', 'fe80::/10', 'fec0::/10', 'ff00::/8']
/** Azure's wire server, a metadata endpoint outside the ranges above. */
const METADATA_V4 = ['168.63.129.16']

/** The error a refused connection fails with; webhook errors report it as `destination_forbidden`. */
export const DESTINATION_FORBIDDEN = 'VGW_DESTINATION_FORBIDDEN'

function forbiddenList (): BlockList {
  const list = new BlockList()
  for (const cidr of FORBIDDEN_V4) addSubnet(list, cidr)
  for (const cidr of FORBIDDEN_V6) addSubnet(list, cidr)
  for (const a of METADATA_V4) list.addAddress(a, 'ipv4')
  return list
}

function addSubnet (list: BlockList, cidr: string): void {
  const [address = '', prefix = ''] = cidr.split('/')
  list.addSubnet(address, Number(prefix), isIPv4(address) ? 'ipv4' : 'ipv6')
}

/** The eight 16-bit groups of an IPv6 address (a trailing dotted IPv4 included), or null. */
function groupsOf (v6: string): number[] | null {
  let s = v6.toLowerCase().replace(/%.*$/, '')
  const tail: number[] = []
  const dotted = /^(.*:)(\d+\.\d+\.\d+\.\d+)$/.exec(s)
  if (dotted !== null) {
    const b = (dotted[2] as string).split('.').map(Number)
    tail.push(((b[0] ?? 0) << 8) | (b[1] ?? 0), ((b[2] ?? 0) << 8) | (b[3] ?? 0))
    const head = dotted[1] as string
    s = head.endsWith('::') ? head : head.slice(0, -1)
  }
  const [left = '', right] = s.split('::')
  const parse = (part: string): number[] => part === '' ? [] : part.split(':').map((h) => parseInt(h, 16))
  const l = parse(left)
  const r = right === undefined ? [] : parse(right)
  const zeros = 8 - tail.length - l.length - r.length
  if (zeros < 0 || (right === undefined && zeros !== 0)) return null
  return [...l, ...new Array<number>(zeros).fill(0), ...r, ...tail]
}

/**
 * The IPv4 address an IPv6 address carries where it reaches an IPv4 host: IPv4-mapped
 * (::ffff:a.b.c.d), IPv4-compatible (::a.b.c.d), NAT64 (64:ff9b::a.b.c.d) and 6to4 (2002:AABB:CCDD::).
 */
function embeddedIPv4 (v6: string): string | null {
  const g = groupsOf(v6)
  if (g === null) return null
  const v4 = (hi: number, lo: number): string => `${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`
  const zeroUntil = (n: number): boolean => g.slice(0, n).every((x) => x === 0)
  if (zeroUntil(5) && g[5] === 0xffff) return v4(g[6] as number, g[7] as number)
  if (zeroUntil(6) && ((g[6] as number) !== 0 || (g[7] as number) > 1)) return v4(g[6] as number, g[7] as number)
  if (g[0] === 0x64 && g[1] === 0xff9b && g.slice(2, 6).every((x) => x === 0)) return v4(g[6] as number, g[7] as number)
  if (g[0] === 0x2002) return v4(g[1] as number, g[2] as number)
  return null
}

/** An address as it is checked: IPv4 inside IPv6 becomes the IPv4 it reaches. */
function normalise (address: string): { address: string, family: 'ipv4' | 'ipv6' } | null {
  if (isIPv4(address)) return { address, family: 'ipv4' }
  const bare = address.replace(/^\[|\]$/g, '')
  if (!isIPv6(bare)) return null
  const v4 = embeddedIPv4(bare)
  return v4 !== null ? { address: v4, family: 'ipv4' } : { address: bare.toLowerCase(), family: 'ipv6' }
}

interface HostPort { host: string, port: number }

/** The default port of a webhook URL's scheme when it names none. */
export function portOf (url: URL): number {
  return url.port !== '' ? Number(url.port) : url.protocol === 'https:' ? 443 : 80
}

/** A URL's host as the resolver and the address checks see it (IPv6 without brackets). */
export function hostOf (url: URL): string {
  return url.hostname.replace(/^\[|\]$/g, '').toLowerCase()
}

export class DestinationPolicy {
  readonly #forbidden = forbiddenList()
  readonly #allowed = new BlockList()
  readonly #allowedHostPorts: HostPort[] = []

  /** `allow`: VGW_WEBHOOK_ALLOW's entries, each a CIDR, an address, or host:port ([v6]:port). Throws on a bad one. */
  constructor (allow: readonly string[]) {
    for (const entry of allow) this.#add(entry.trim())
  }

  #add (entry: string): void {
    const hostPort = /^\[([0-9A-Fa-f:.]+)\]:(\d{1,5})$/.exec(entry) ?? /^([A-Za-z0-9.-]+):(\d{1,5})$/.exec(entry)
    if (hostPort !== null) {
      const port = Number(hostPort[2])
      if (port < 1 || port > 65535) throw new Error(`${entry}: the port must be 1 to 65535`)
      const host = (hostPort[1] as string).toLowerCase()
      this.#allowedHostPorts.push({ host: normalise(host)?.address ?? host, port })
      return
    }
    const [address = '', prefix, extra] = entry.split('/')
    const n = normalise(address)
    const max = n?.family === 'ipv4' ? 32 : 128
    const bits = prefix === undefined ? max : /^\d{1,3}$/.test(prefix) ? Number(prefix) : -1
    if (n === null || extra !== undefined || bits < 0 || bits > max) {
      throw new Error(`${entry}: expected a CIDR (10.0.0.0/8, fd00::/8), an address, or host:port ([::1]:8443)`)
    }
    this.#allowed.addSubnet(n.address, bits, n.family)
  }

  /** Whether a connection to `address` on `port`, made for a URL naming `host`, is allowed. */
  permits (address: string, port: number, host: string): boolean {
    const n = normalise(address)
    if (n === null) return false
    if (this.#allowed.check(n.address, n.family)) return true
    if (this.#allowedHostPorts.some((a) => a.port === port && (a.host === host || a.host === n.address))) return true
    return !this.#forbidden.check(n.address, n.family)
  }

  /** For a URL whose host is a literal address: why it is refused, or null (a host name is checked when connecting). */
  refusedLiteral (url: URL): string | null {
    const host = hostOf(url)
    if (normalise(host) === null) return null
    return this.permits(host, portOf(url), host) ? null : `${url.hostname} is a loopback, private, link-local or metadata address; list it in VGW_WEBHOOK_ALLOW to allow it`
  }

  /**
   * A resolver for one connection: every address the name resolves to is checked, only allowed
   * ones are connected to, and none allowed fails the connection with DESTINATION_FORBIDDEN.
   */
  lookupFor (host: string, port: number): LookupFunction {
    return (hostname, options, callback) => {
      dns.lookup(hostname, { ...options, all: true }, (err, addresses) => {
        if (err !== null) return callback(err, '')
        const ok = addresses.filter((a) => this.permits(a.address, port, host))
        const first = ok[0]
        if (first === undefined) {
          const refused: NodeJS.ErrnoException = new Error(`${hostname} resolves only to addresses webhooks may not reach`)
          refused.code = DESTINATION_FORBIDDEN
          return callback(refused, '')
        }
        if (options.all === true) callback(null, ok)
        else callback(null, first.address, first.family)
      })
    }
  }
}
