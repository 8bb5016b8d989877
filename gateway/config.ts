import path from 'node:path'
import { GatewayError, defaultEnvelopeLimits, type EnvelopeLimits } from '../protocol/index.ts'
import { parseMarket, parsePeriod } from './lifecycle/retention-period.ts'
import { DestinationPolicy } from './webhooks/destination-policy.ts'

/** Everything the gateway reads at start (README, "Configuration"). Built by loadConfig, or directly by tests. */
export interface GatewayConfig {
  /** External PostgreSQL; undefined means the embedded one under dataDir. */
  databaseUrl: string | undefined
  dataDir: string
  host: string
  mqttPort: number
  httpPort: number
  tls: { ca: string, cert: string, key: string, crl: string }
  /** Whether the TLS files are the dev defaults (then they are created when missing). */
  devCerts: boolean
  logLevel: string
  batch: { maxSize: number, maxDelayMs: number, maxConcurrent: number }
  envelope: EnvelopeLimits
  /** Hard limit on one MQTT packet; larger packets close the connection. */
  maxPacketBytes: number
  shutdownTimeoutMs: number
  downlink: { defaultTtlSeconds: number, maxTtlSeconds: number, expiryIntervalMs: number, window: number }
  streamRetain: number
  /** The same ring bounded in bytes of the events' JSON. */
  streamRetainBytes: number
  /** Events carry their payload only when a reader asks (include=payload, a webhook's `payload`) and the envelope is at most this size. */
  eventPayloadMaxBytes: number
  retentionIntervalMs: number
  /** Days below which no market's retention can be set or run, per market (`*`: every other); README, "Security". */
  retentionFloors: Record<string, number>
  /** The login the gateway's pools use (a member of vgw_app only); undefined: derived from databaseUrl and set up by migrate. */
  appDatabaseUrl: string | undefined
  /** Connection pools (bulkheads, docs/architecture.md): the commit path never waits behind the API or exports. */
  database: { poolSize: number, commitPoolSize: number, statementTimeoutMs: number, idleInTransactionTimeoutMs: number }
  /** Log rows waiting for their commit, at most; past it a publishing vehicle is disconnected (it retries later). */
  maxPendingRecords: number
  /** The same backlog bounded in bytes of envelopes. */
  maxPendingBytes: number
  /** /ready answers 503 GW_ERR_COMMIT_STALLED when no commit has succeeded for this long while work is pending. */
  commitStallMs: number
  /**
   * Legal exports running at once (each holds one connection of the export pool); the next is refused.
   * An export whose client takes less than minBytesPerSecond, averaged over rateWindowMs, fails (0: not checked).
   */
  exports: { maxConcurrent: number, minBytesPerSecond: number, rateWindowMs: number }
  /** Per vehicle connection: unacknowledged QoS 1 publishes read at most, and a token bucket for rate and daily bytes. */
  vehicle: { maxInflight: number, msgRate: number, msgBurst: number, bytesPerDay: number }
  /** Per source address and in total, before any MQTT byte is read. */
  edge: { maxConnections: number, maxConnectionsPerAddress: number, handshakesPerSecondPerAddress: number, handshakeTimeoutMs: number, securityEventsPerMinute: number }
  /** Levels of an MQTT topic or topic filter at most (Aedes' maxTopicLevels, GHSA-xxqp-5qx8-gj5q); a deeper one closes the connection. */
  maxTopicLevels: number
  /** REST bounds. */
  api: {
    rateLimitPerKey: number, rateLimitPerAddress: number, keyCacheMs: number, pageMaxBytes: number, campaignMaxRecipients: number
    /** Bytes one campaign may write: the envelope of its message times its recipients; past it 413 GW_ERR_CAMPAIGN_TOO_LARGE. */
    campaignMaxBytes: number
    streamMaxPerKey: number, streamPingMs: number
    /** REST sends committing at once, each statement carrying every send that waited for it (send-batcher.ts). */
    sendConcurrency: number
    /** Connections to the REST port from one source address at most; past it a new one is closed at accept (connection-cap.ts). */
    maxConnectionsPerAddress: number
  }
  /** Load shedding (gateway/overload.ts): past a bound, REST answers 503 GW_ERR_OVERLOADED and new vehicles CONNACK 3. */
  overload: { maxDatabaseQueue: number, maxEventLoopDelayMs: number, sampleMs: number, retryAfterSeconds: number }
  /** Webhook delivery (README, "Integrating a backend"): each webhook its own cursor, one batch at a time. */
  webhooks: {
    retryPeriodMs: number, backoffMs: number, pollMs: number, timeoutMs: number, batchSize: number, maxConcurrent: number
    /** A batch's body in bytes at most (one event at least): a batch ends early past it. */
    batchMaxBytes: number
    /** Destinations allowed although loopback, private, link-local or metadata (CIDRs, addresses, host:port); README, "Security". */
    allow: string[]
  }
  /** Cluster mode: the Redis that gateways sharing one fleet share; undefined: a single gateway. */
  redisUrl: string | undefined
  /** Cluster mode: the shared secret every bus message is authenticated with (HMAC-SHA256). */
  clusterSecret: string | undefined
  /** Gateway processes sharing the listening ports on this machine (cluster module); more than 1 needs redisUrl. */
  workers: number
  /**
   * TLS session resumption (README, "Reconnect storms"): session ticket keys shared through the
   * database, a new one every ticketRotationMs (0: Node's per-process keys); tickets live lifetimeSeconds.
   * Undefined: as 0.
   */
  tlsSessions?: { ticketRotationMs: number, lifetimeSeconds: number }
  /**
   * The write-time ledger (docs/legal-export.md, "Proving the log"): the checkpoint signing key (a
   * file the database never sees; made when missing only when it is the default), where signed
   * checkpoints go, and how often. Undefined: as loadConfig's defaults under dataDir.
   */
  ledger?: { keyFile: string, createKey: boolean, checkpointDir: string, checkpointIntervalMs: number }
}

export const DEV_CERT_DIR = 'certs/dev'

interface Setting {
  env: string
  flag: string
  description: string
}

/** Every setting; the README's table lists the same. */
export const SETTINGS = {
  databaseUrl: { env: 'DATABASE_URL', flag: '--database-url', description: 'external PostgreSQL; unset: embedded PostgreSQL under VGW_DATA_DIR' },
  dataDir: { env: 'VGW_DATA_DIR', flag: '--data-dir', description: 'embedded database, admin key (default .data)' },
  host: { env: 'VGW_HOST', flag: '--host', description: 'address both listeners bind (default 0.0.0.0)' },
  mqttPort: { env: 'VGW_MQTT_PORT', flag: '--mqtt-port', description: 'MQTT over mutual TLS (default 8883; 0 = any free port)' },
  httpPort: { env: 'VGW_HTTP_PORT', flag: '--http-port', description: 'REST API and WebSocket (default 8080; 0 = any free port)' },
  tlsCa: { env: 'VGW_TLS_CA', flag: '--tls-ca', description: 'CA bundle vehicle certificates must chain to (default certs/dev/ca.crt)' },
  tlsCert: { env: 'VGW_TLS_CERT', flag: '--tls-cert', description: 'server certificate (default certs/dev/server.crt)' },
  tlsKey: { env: 'VGW_TLS_KEY', flag: '--tls-key', description: 'server key (default certs/dev/server.key)' },
  tlsCrl: { env: 'VGW_TLS_CRL', flag: '--tls-crl', description: 'revocation list (default certs/dev/crl.pem)' },
  logLevel: { env: 'VGW_LOG_LEVEL', flag: '--log-level', description: 'fatal, error, warn, info, debug, trace, silent (default info)' },
  batchMaxSize: { env: 'VGW_BATCH_MAX_SIZE', flag: '--batch-max-size', description: 'uplinks per database commit at most (default 500)' },
  batchMaxDelayMs: { env: 'VGW_BATCH_MAX_DELAY_MS', flag: '--batch-max-delay-ms', description: 'longest wait before a partial batch commits (default 5)' },
  batchMaxConcurrent: { env: 'VGW_BATCH_MAX_CONCURRENT', flag: '--batch-max-concurrent', description: 'batches committing at once (default 4)' },
  maxEnvelopeBytes: { env: 'VGW_MAX_ENVELOPE_BYTES', flag: '--max-envelope-bytes', description: 'largest accepted envelope (default 262144)' },
  maxPacketBytes: { env: 'VGW_MAX_PACKET_BYTES', flag: '--max-packet-bytes', description: 'largest MQTT packet before the connection is closed (default 1048576)' },
  shutdownTimeoutMs: { env: 'VGW_SHUTDOWN_TIMEOUT_MS', flag: '--shutdown-timeout-ms', description: 'graceful drain bound on SIGTERM (default 15000)' },
  defaultTtlSeconds: { env: 'VGW_DEFAULT_TTL_SECONDS', flag: '--default-ttl-seconds', description: 'downlink time-to-live when a send names none (default 604800: 7 days)' },
  maxTtlSeconds: { env: 'VGW_MAX_TTL_SECONDS', flag: '--max-ttl-seconds', description: 'longest downlink time-to-live accepted (default 2592000: 30 days)' },
  expiryIntervalMs: { env: 'VGW_EXPIRY_INTERVAL_MS', flag: '--expiry-interval-ms', description: 'how often expired downlinks are marked (default 1000)' },
  downlinkWindow: { env: 'VGW_DOWNLINK_WINDOW', flag: '--downlink-window', description: 'downlinks sent to one vehicle and awaiting its PUBACK, at most (default 20)' },
  workers: { env: 'VGW_WORKERS', flag: '--workers', description: 'gateway processes on this machine sharing the ports (default 1; more need VGW_REDIS_URL)' },
  redisUrl: { env: 'VGW_REDIS_URL', flag: '--redis-url', description: 'cluster mode: several gateways share one fleet through this Redis (unset: one gateway)' },
  clusterSecret: { env: 'VGW_CLUSTER_SECRET', flag: '--cluster-secret', description: 'cluster mode: shared secret (at least 32 characters) authenticating every bus message; required with VGW_REDIS_URL' },
  dbPoolSize: { env: 'VGW_DB_POOL_SIZE', flag: '--db-pool-size', description: 'API pool: connections for REST, the dispatcher, expiry, campaigns (default 10)' },
  dbCommitPoolSize: { env: 'VGW_DB_COMMIT_POOL_SIZE', flag: '--db-commit-pool-size', description: 'commit pool: connections for uplink batches, status changes, connects (default 8)' },
  dbIdleInTransactionTimeoutMs: { env: 'VGW_DB_IDLE_IN_TRANSACTION_TIMEOUT_MS', flag: '--db-idle-in-transaction-timeout-ms', description: 'PostgreSQL ends a session idle inside a transaction after this long (default 60000)' },
  exportMaxConcurrent: { env: 'VGW_EXPORT_MAX_CONCURRENT', flag: '--export-max-concurrent', description: 'legal exports running at once; the next is refused with 503 (default 2)' },
  exportMinBytesPerS: { env: 'VGW_EXPORT_MIN_BYTES_PER_S', flag: '--export-min-bytes-per-s', description: 'an export whose client reads less than this, averaged over VGW_EXPORT_RATE_WINDOW_MS, fails and frees its slot (default 65536; 0: not checked)' },
  exportRateWindowMs: { env: 'VGW_EXPORT_RATE_WINDOW_MS', flag: '--export-rate-window-ms', description: 'the window of that average, and the grace before the first check (default 30000)' },
  commitStallMs: { env: 'VGW_COMMIT_STALL_MS', flag: '--commit-stall-ms', description: '/ready answers 503 when no commit succeeded for this long with work pending (default 10000)' },
  maxPendingBytes: { env: 'VGW_MAX_PENDING_BYTES', flag: '--max-pending-bytes', description: 'envelope bytes waiting for a commit, at most (default 268435456: 256 MiB)' },
  vehicleMaxInflight: { env: 'VGW_VEHICLE_MAX_INFLIGHT', flag: '--vehicle-max-inflight', description: 'unacknowledged QoS 1 publishes read per connection; past it the socket is not read (default 16)' },
  vehicleMsgRate: { env: 'VGW_VEHICLE_MSG_RATE', flag: '--vehicle-msg-rate', description: 'messages per second per vehicle, sustained (default 50)' },
  vehicleMsgBurst: { env: 'VGW_VEHICLE_MSG_BURST', flag: '--vehicle-msg-burst', description: 'messages per vehicle above the rate in a burst (default 200)' },
  vehicleBytesPerDay: { env: 'VGW_VEHICLE_BYTES_PER_DAY', flag: '--vehicle-bytes-per-day', description: 'uplink bytes per vehicle per day (default 536870912: 512 MiB)' },
  maxConnections: { env: 'VGW_MAX_CONNECTIONS', flag: '--max-connections', description: 'TCP connections to the MQTT port at most (default 100000)' },
  maxConnectionsPerAddress: { env: 'VGW_MAX_CONNECTIONS_PER_ADDRESS', flag: '--max-connections-per-address', description: 'TCP connections from one source address at most (default 2000)' },
  handshakeRatePerAddress: { env: 'VGW_HANDSHAKE_RATE_PER_ADDRESS', flag: '--handshake-rate-per-address', description: 'TLS handshakes per second from one source address (default 200)' },
  tlsTicketRotationMs: { env: 'VGW_TLS_TICKET_ROTATION_MS', flag: '--tls-ticket-rotation-ms', description: 'TLS session ticket key shared by the cluster through the database, replaced every this many ms at the same instant on every gateway; 0: per-process keys (default 43200000: 12 h)' },
  tlsSessionLifetimeS: { env: 'VGW_TLS_SESSION_LIFETIME_S', flag: '--tls-session-lifetime-s', description: 'seconds a TLS session ticket can be resumed, at most until the next key rotation (default 7200)' },
  tlsHandshakeTimeoutMs: { env: 'VGW_TLS_HANDSHAKE_TIMEOUT_MS', flag: '--tls-handshake-timeout-ms', description: 'a socket that has not completed TLS by then is closed (default 10000)' },
  securityEventsPerMinute: { env: 'VGW_SECURITY_EVENTS_PER_MINUTE', flag: '--security-events-per-minute', description: 'security rows per VIN per minute; the rest are counted in a summary row (default 10)' },
  maxTopicLevels: { env: 'VGW_MAX_TOPIC_LEVELS', flag: '--max-topic-levels', description: 'levels of an MQTT topic or topic filter at most; a deeper one closes the vehicle\'s connection (default 16, at most 100)' },
  httpMaxConnectionsPerAddress: { env: 'VGW_HTTP_MAX_CONNECTIONS_PER_ADDRESS', flag: '--http-max-connections-per-address', description: 'TCP connections to the REST port from one source address at most; past it a new one is closed at accept (default 256)' },
  apiRateLimitPerKey: { env: 'VGW_API_RATE_LIMIT_PER_KEY', flag: '--api-rate-limit-per-key', description: 'REST requests per second per API key (default 5000)' },
  apiRateLimitPerAddress: { env: 'VGW_API_RATE_LIMIT_PER_ADDRESS', flag: '--api-rate-limit-per-address', description: 'REST requests per second per address without a valid key (default 50)' },
  apiKeyCacheMs: { env: 'VGW_API_KEY_CACHE_MS', flag: '--api-key-cache-ms', description: 'how long an API-key lookup, found or not, is cached (default 5000)' },
  pageMaxBytes: { env: 'VGW_PAGE_MAX_BYTES', flag: '--page-max-bytes', description: 'bytes of one API page at most; a page ends early past it (default 4194304)' },
  campaignMaxRecipients: { env: 'VGW_CAMPAIGN_MAX_RECIPIENTS', flag: '--campaign-max-recipients', description: 'vehicles one campaign may name (default 100000)' },
  campaignMaxBytes: { env: 'VGW_CAMPAIGN_MAX_BYTES', flag: '--campaign-max-bytes', description: 'bytes one campaign may write: its envelope size times its recipients (default 536870912: 512 MiB)' },
  streamMaxPerKey: { env: 'VGW_STREAM_MAX_PER_KEY', flag: '--stream-max-per-key', description: 'WebSocket streams open at once per API key (default 10)' },
  apiSendConcurrency: { env: 'VGW_API_SEND_CONCURRENCY', flag: '--api-send-concurrency', description: 'REST send statements committing at once, each carrying the sends that waited for it (default 4; at most the API pool size)' },
  overloadMaxDbQueue: { env: 'VGW_OVERLOAD_MAX_DB_QUEUE', flag: '--overload-max-db-queue', description: 'waiters for an API-pool connection (REST requests, dispatcher reads) plus sends waiting for a send slot, at most; past it requests get 503 GW_ERR_OVERLOADED and new vehicles CONNACK 3 (default 500)' },
  overloadMaxEventLoopDelayMs: { env: 'VGW_OVERLOAD_MAX_EVENT_LOOP_DELAY_MS', flag: '--overload-max-event-loop-delay-ms', description: 'mean event-loop delay in ms over the last 250 ms, at most, before shedding as above (default 200; 0: not checked)' },
  overloadRetryAfterS: { env: 'VGW_OVERLOAD_RETRY_AFTER_S', flag: '--overload-retry-after-s', description: 'Retry-After of a 503 GW_ERR_OVERLOADED, in seconds (default 1)' },
  streamPingMs: { env: 'VGW_STREAM_PING_MS', flag: '--stream-ping-ms', description: 'WebSocket ping interval; a stream that misses a pong by the next ping is closed (default 30000)' },
  dbStatementTimeoutMs: { env: 'VGW_DB_STATEMENT_TIMEOUT_MS', flag: '--db-statement-timeout-ms', description: 'bound on every statement, so a half-open connection cannot stall the gateway (default 15000)' },
  maxPendingRecords: { env: 'VGW_MAX_PENDING_RECORDS', flag: '--max-pending-records', description: 'log rows waiting for a commit, at most, while the database is away (default 100000)' },
  retentionFloor: { env: 'VGW_RETENTION_FLOOR', flag: '--retention-floor', description: 'retention no API call can go below, per market: DE:10y,US:7y,default:1y (default: none)' },
  appDatabaseUrl: { env: 'VGW_APP_DATABASE_URL', flag: '--app-database-url', description: 'the gateway\'s own login, a member of vgw_app only (default: derived from DATABASE_URL and created by migrate)' },
  retentionIntervalMs: { env: 'VGW_RETENTION_INTERVAL_MS', flag: '--retention-interval-ms', description: 'how often the gateway runs retention (default 86400000: daily; 0: never)' },
  ledgerKey: { env: 'VGW_LEDGER_KEY', flag: '--ledger-key', description: 'Ed25519 private key (PKCS#8 PEM) that signs the ledger\'s checkpoints; keep it away from the database (default VGW_DATA_DIR/ledger/ledger.key, made when missing)' },
  ledgerDir: { env: 'VGW_LEDGER_DIR', flag: '--ledger-dir', description: 'where signed ledger checkpoints are written, one file each, outside the database: a write-once store in production (default VGW_DATA_DIR/ledger/checkpoints)' },
  ledgerCheckpointMs: { env: 'VGW_LEDGER_CHECKPOINT_MS', flag: '--ledger-checkpoint-ms', description: 'how often the ledger signs a checkpoint when it grew: rows change unnoticed at most this long after their commit (default 10000)' },
  webhookRetryPeriodMs: { env: 'VGW_WEBHOOK_RETRY_PERIOD_MS', flag: '--webhook-retry-period-ms', description: 'how long a webhook batch is retried before it becomes a dead letter (default 86400000: 1 day)' },
  webhookBackoffMs: { env: 'VGW_WEBHOOK_BACKOFF_MS', flag: '--webhook-backoff-ms', description: 'first retry delay of a webhook batch; doubled per attempt up to 5 minutes (default 1000)' },
  webhookPollMs: { env: 'VGW_WEBHOOK_POLL_MS', flag: '--webhook-poll-ms', description: 'how often a caught-up webhook looks at the feed again (default 500)' },
  webhookTimeoutMs: { env: 'VGW_WEBHOOK_TIMEOUT_MS', flag: '--webhook-timeout-ms', description: 'a webhook POST without an answer by then has failed (default 10000)' },
  webhookBatchSize: { env: 'VGW_WEBHOOK_BATCH_SIZE', flag: '--webhook-batch-size', description: 'events per webhook POST at most (default 100)' },
  webhookMaxConcurrent: { env: 'VGW_WEBHOOK_MAX_CONCURRENT', flag: '--webhook-max-concurrent', description: 'webhook POSTs in flight from one gateway, one per webhook at most (default 32)' },
  webhookBatchMaxBytes: { env: 'VGW_WEBHOOK_BATCH_MAX_BYTES', flag: '--webhook-batch-max-bytes', description: 'bytes of one webhook POST body at most; a batch ends early past it (default 1048576)' },
  webhookAllow: { env: 'VGW_WEBHOOK_ALLOW', flag: '--webhook-allow', description: 'comma-separated CIDRs, addresses or host:port webhooks may reach although loopback, private, link-local or metadata (default: none)' },
  streamRetain: { env: 'VGW_STREAM_RETAIN', flag: '--stream-retain', description: 'stream events kept for clients resuming with ?since (default 10000)' },
  eventPayloadMaxBytes: { env: 'VGW_EVENT_PAYLOAD_MAX_BYTES', flag: '--event-payload-max-bytes', description: 'events carry their payload (base64) only when asked for and the envelope is at most this size (default 16384; 0: never)' },
  streamRetainBytes: { env: 'VGW_STREAM_RETAIN_BYTES', flag: '--stream-retain-bytes', description: 'the same events bounded in bytes of JSON; the oldest go first (default 33554432: 32 MiB)' }
} as const satisfies Record<string, Setting>

export type SettingName = keyof typeof SETTINGS
export type ConfigInput = Partial<Record<SettingName, string>>

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']

function invalid (name: SettingName, value: string, why: string): GatewayError {
  const s = SETTINGS[name]
  return new GatewayError('GW_ERR_CONFIG_INVALID', `${s.env} (${s.flag}) = ${JSON.stringify(value)}: ${why}`)
}

function integer (name: SettingName, value: string | undefined, fallback: number, min: number, max: number): number {
  if (value === undefined || value === '') return fallback
  if (!/^\d+$/.test(value)) throw invalid(name, value, `expected a whole number from ${min} to ${max}`)
  const n = Number(value)
  if (n < min || n > max) throw invalid(name, value, `expected a whole number from ${min} to ${max}`)
  return n
}

/** `DE:10y,US:7y,default:1y` → days per market (`*` for default). */
function retentionFloors (value: string | undefined): Record<string, number> {
  const floors: Record<string, number> = {}
  if (value === undefined) return floors
  for (const item of value.split(',').map((s) => s.trim()).filter((s) => s !== '')) {
    const [market = '', period = ''] = item.split(':')
    try {
      floors[parseMarket(market.trim())] = parsePeriod(period)
    } catch (err) {
      throw invalid('retentionFloor', value, `${item}: ${err instanceof Error ? err.message : String(err)}; expected MARKET:PERIOD,… such as DE:10y,default:1y`)
    }
  }
  return floors
}

/** VGW_WEBHOOK_ALLOW: each entry is checked as the destination policy reads it. */
function webhookAllow (value: string | undefined): string[] {
  const entries = (value ?? '').split(',').map((s) => s.trim()).filter((s) => s !== '')
  try {
    void new DestinationPolicy(entries)
  } catch (err) {
    throw invalid('webhookAllow', value ?? '', err instanceof Error ? err.message : String(err))
  }
  return entries
}

function postgresUrl (name: SettingName, value: string | undefined): string | undefined {
  if (value === undefined) return undefined
  let parsed: URL
  try {
    parsed = new URL(value)
  } catch {
    throw invalid(name, '<hidden>', 'not a URL; expected postgres://user:password@host:5432/database')
  }
  if (parsed.protocol !== 'postgres:' && parsed.protocol !== 'postgresql:') throw invalid(name, parsed.protocol, 'expected a postgres:// or postgresql:// URL')
  return value
}

/** Flags win over environment variables; every bad value stops start-up with a message naming it. */
export function loadConfig (env: NodeJS.ProcessEnv, flags: ConfigInput = {}, cwd = process.cwd()): GatewayConfig {
  const get = (name: SettingName): string | undefined => {
    const v = flags[name] ?? env[SETTINGS[name].env]
    return v === '' ? undefined : v
  }
  const databaseUrl = get('databaseUrl')
  if (databaseUrl !== undefined) {
    let parsed: URL
    try {
      parsed = new URL(databaseUrl)
    } catch {
      throw invalid('databaseUrl', '<hidden>', 'not a URL; expected postgres://user:password@host:5432/database')
    }
    if (parsed.protocol !== 'postgres:' && parsed.protocol !== 'postgresql:') {
      throw invalid('databaseUrl', parsed.protocol, 'expected a postgres:// or postgresql:// URL')
    }
    // The gateway's login's password is derived from the owner's (store/app-login.ts): from no
    // password it would be the same on every installation (README, "Security").
    if (parsed.password === '' && get('appDatabaseUrl') === undefined) {
      throw invalid('databaseUrl', '<hidden>', `carries no password, so the gateway's own login cannot be given a secret one: put the owner's password in the URL (a server that trusts the connection ignores it), or set ${SETTINGS.appDatabaseUrl.env} to a login that is a member of vgw_app only`)
    }
  }
  const redisUrl = get('redisUrl')
  if (redisUrl !== undefined && !/^rediss?:\/\//.test(redisUrl)) throw invalid('redisUrl', redisUrl.replace(/\/\/.*@/, '//***@'), 'expected a redis:// or rediss:// URL')
  const logLevel = get('logLevel') ?? 'info'
  if (!LOG_LEVELS.includes(logLevel)) throw invalid('logLevel', logLevel, `expected one of ${LOG_LEVELS.join(', ')}`)
  const host = get('host') ?? '0.0.0.0'
  if (!/^[A-Za-z0-9.:[\]-]+$/.test(host)) throw invalid('host', host, 'expected a host name or IP address')

  const certDir = path.resolve(cwd, DEV_CERT_DIR)
  const tlsPaths = {
    ca: get('tlsCa'),
    cert: get('tlsCert'),
    key: get('tlsKey'),
    crl: get('tlsCrl')
  }
  const maxEnvelopeBytes = integer('maxEnvelopeBytes', get('maxEnvelopeBytes'), defaultEnvelopeLimits.maxBytes, 1024, 64 * 1024 * 1024)
  // The packet limit follows the envelope limit: room to record an oversized envelope as rejected, no more.
  const maxPacketBytes = integer('maxPacketBytes', get('maxPacketBytes'), Math.max(64 * 1024, maxEnvelopeBytes * 2), 1024, 256 * 1024 * 1024)
  if (maxPacketBytes <= maxEnvelopeBytes) {
    throw invalid('maxPacketBytes', String(maxPacketBytes), `must exceed ${SETTINGS.maxEnvelopeBytes.env} (${maxEnvelopeBytes}) so that oversized envelopes can still be recorded and rejected`)
  }
  const maxTtlSeconds = integer('maxTtlSeconds', get('maxTtlSeconds'), 30 * 24 * 3600, 1, 10 * 365 * 24 * 3600)
  const defaultTtlSeconds = integer('defaultTtlSeconds', get('defaultTtlSeconds'), 7 * 24 * 3600, 1, 10 * 365 * 24 * 3600)
  if (defaultTtlSeconds > maxTtlSeconds) {
    throw invalid('defaultTtlSeconds', String(defaultTtlSeconds), `must not exceed ${SETTINGS.maxTtlSeconds.env} (${maxTtlSeconds})`)
  }
  const clusterSecret = get('clusterSecret')
  if (redisUrl !== undefined && (clusterSecret === undefined || clusterSecret.length < 32)) {
    throw invalid('clusterSecret', clusterSecret === undefined ? '(unset)' : '<hidden>', `cluster mode (${SETTINGS.redisUrl.env}) needs a shared secret of at least 32 characters, the same on every gateway: a gateway acts only on bus messages signed with it`)
  }
  const workers = integer('workers', get('workers'), 1, 1, 64)
  if (workers > 1 && redisUrl === undefined) {
    throw invalid('workers', String(workers), `several gateway processes share one fleet through Redis: set ${SETTINGS.redisUrl.env} too`)
  }
  const dataDir = path.resolve(cwd, get('dataDir') ?? '.data')
  return {
    databaseUrl,
    dataDir,
    host,
    mqttPort: integer('mqttPort', get('mqttPort'), 8883, 0, 65535),
    httpPort: integer('httpPort', get('httpPort'), 8080, 0, 65535),
    tls: {
      ca: path.resolve(cwd, tlsPaths.ca ?? path.join(certDir, 'ca.crt')),
      cert: path.resolve(cwd, tlsPaths.cert ?? path.join(certDir, 'server.crt')),
      key: path.resolve(cwd, tlsPaths.key ?? path.join(certDir, 'server.key')),
      crl: path.resolve(cwd, tlsPaths.crl ?? path.join(certDir, 'crl.pem'))
    },
    devCerts: Object.values(tlsPaths).every((v) => v === undefined),
    logLevel,
    batch: {
      maxSize: integer('batchMaxSize', get('batchMaxSize'), 500, 1, 10_000),
      maxDelayMs: integer('batchMaxDelayMs', get('batchMaxDelayMs'), 5, 0, 10_000),
      maxConcurrent: integer('batchMaxConcurrent', get('batchMaxConcurrent'), 4, 1, 64)
    },
    envelope: { ...defaultEnvelopeLimits, maxBytes: maxEnvelopeBytes },
    maxPacketBytes,
    shutdownTimeoutMs: integer('shutdownTimeoutMs', get('shutdownTimeoutMs'), 15_000, 100, 600_000),
    downlink: {
      defaultTtlSeconds,
      maxTtlSeconds,
      expiryIntervalMs: integer('expiryIntervalMs', get('expiryIntervalMs'), 1000, 10, 3_600_000),
      window: integer('downlinkWindow', get('downlinkWindow'), 20, 1, 65_535)
    },
    streamRetain: integer('streamRetain', get('streamRetain'), 10_000, 0, 10_000_000),
    eventPayloadMaxBytes: integer('eventPayloadMaxBytes', get('eventPayloadMaxBytes'), 16 * 1024, 0, 1024 * 1024),
    streamRetainBytes: integer('streamRetainBytes', get('streamRetainBytes'), 32 * 1024 * 1024, 64 * 1024, 64 * 1024 * 1024 * 1024),
    retentionIntervalMs: integer('retentionIntervalMs', get('retentionIntervalMs'), 86_400_000, 0, 2_147_483_647),
    retentionFloors: retentionFloors(get('retentionFloor')),
    appDatabaseUrl: postgresUrl('appDatabaseUrl', get('appDatabaseUrl')),
    database: {
      poolSize: integer('dbPoolSize', get('dbPoolSize'), 10, 2, 1000),
      commitPoolSize: integer('dbCommitPoolSize', get('dbCommitPoolSize'), 8, 2, 1000),
      statementTimeoutMs: integer('dbStatementTimeoutMs', get('dbStatementTimeoutMs'), 15_000, 100, 3_600_000),
      idleInTransactionTimeoutMs: integer('dbIdleInTransactionTimeoutMs', get('dbIdleInTransactionTimeoutMs'), 60_000, 100, 3_600_000)
    },
    maxPendingRecords: integer('maxPendingRecords', get('maxPendingRecords'), 100_000, 100, 100_000_000),
    maxPendingBytes: integer('maxPendingBytes', get('maxPendingBytes'), 256 * 1024 * 1024, 1024 * 1024, 64 * 1024 * 1024 * 1024),
    commitStallMs: integer('commitStallMs', get('commitStallMs'), 10_000, 100, 3_600_000),
    exports: {
      maxConcurrent: integer('exportMaxConcurrent', get('exportMaxConcurrent'), 2, 1, 100),
      minBytesPerSecond: integer('exportMinBytesPerS', get('exportMinBytesPerS'), 64 * 1024, 0, 1024 * 1024 * 1024),
      rateWindowMs: integer('exportRateWindowMs', get('exportRateWindowMs'), 30_000, 100, 3_600_000)
    },
    vehicle: {
      maxInflight: integer('vehicleMaxInflight', get('vehicleMaxInflight'), 16, 1, 65_535),
      msgRate: integer('vehicleMsgRate', get('vehicleMsgRate'), 50, 1, 1_000_000),
      msgBurst: integer('vehicleMsgBurst', get('vehicleMsgBurst'), 200, 1, 10_000_000),
      bytesPerDay: integer('vehicleBytesPerDay', get('vehicleBytesPerDay'), 512 * 1024 * 1024, 1024, Number.MAX_SAFE_INTEGER)
    },
    edge: {
      maxConnections: integer('maxConnections', get('maxConnections'), 100_000, 1, 10_000_000),
      maxConnectionsPerAddress: integer('maxConnectionsPerAddress', get('maxConnectionsPerAddress'), 2000, 1, 10_000_000),
      handshakesPerSecondPerAddress: integer('handshakeRatePerAddress', get('handshakeRatePerAddress'), 200, 1, 1_000_000),
      handshakeTimeoutMs: integer('tlsHandshakeTimeoutMs', get('tlsHandshakeTimeoutMs'), 10_000, 100, 600_000),
      securityEventsPerMinute: integer('securityEventsPerMinute', get('securityEventsPerMinute'), 10, 1, 1_000_000)
    },
    // Aedes clamps to 100: its topic tries (qlobber) throw past that many words.
    maxTopicLevels: integer('maxTopicLevels', get('maxTopicLevels'), 16, 3, 100),
    api: {
      rateLimitPerKey: integer('apiRateLimitPerKey', get('apiRateLimitPerKey'), 5000, 1, 10_000_000),
      rateLimitPerAddress: integer('apiRateLimitPerAddress', get('apiRateLimitPerAddress'), 50, 1, 10_000_000),
      keyCacheMs: integer('apiKeyCacheMs', get('apiKeyCacheMs'), 5000, 0, 3_600_000),
      pageMaxBytes: integer('pageMaxBytes', get('pageMaxBytes'), 4 * 1024 * 1024, 64 * 1024, 1024 * 1024 * 1024),
      campaignMaxRecipients: integer('campaignMaxRecipients', get('campaignMaxRecipients'), 100_000, 1, 100_000_000),
      campaignMaxBytes: integer('campaignMaxBytes', get('campaignMaxBytes'), 512 * 1024 * 1024, 1024, 1024 * 1024 * 1024 * 1024),
      streamMaxPerKey: integer('streamMaxPerKey', get('streamMaxPerKey'), 10, 1, 100_000),
      streamPingMs: integer('streamPingMs', get('streamPingMs'), 30_000, 100, 3_600_000),
      sendConcurrency: integer('apiSendConcurrency', get('apiSendConcurrency'), 4, 1, 1000),
      maxConnectionsPerAddress: integer('httpMaxConnectionsPerAddress', get('httpMaxConnectionsPerAddress'), 256, 1, 10_000_000)
    },
    overload: {
      maxDatabaseQueue: integer('overloadMaxDbQueue', get('overloadMaxDbQueue'), 500, 1, 10_000_000),
      maxEventLoopDelayMs: integer('overloadMaxEventLoopDelayMs', get('overloadMaxEventLoopDelayMs'), 200, 0, 600_000),
      sampleMs: 250,
      retryAfterSeconds: integer('overloadRetryAfterS', get('overloadRetryAfterS'), 1, 1, 3600)
    },
    ledger: {
      keyFile: path.resolve(cwd, get('ledgerKey') ?? path.join(dataDir, 'ledger', 'ledger.key')),
      createKey: get('ledgerKey') === undefined,
      checkpointDir: path.resolve(cwd, get('ledgerDir') ?? path.join(dataDir, 'ledger', 'checkpoints')),
      checkpointIntervalMs: integer('ledgerCheckpointMs', get('ledgerCheckpointMs'), 10_000, 100, 3_600_000)
    },
    webhooks: {
      retryPeriodMs: integer('webhookRetryPeriodMs', get('webhookRetryPeriodMs'), 86_400_000, 0, 30 * 86_400_000),
      backoffMs: integer('webhookBackoffMs', get('webhookBackoffMs'), 1000, 10, 300_000),
      pollMs: integer('webhookPollMs', get('webhookPollMs'), 500, 10, 600_000),
      timeoutMs: integer('webhookTimeoutMs', get('webhookTimeoutMs'), 10_000, 100, 600_000),
      batchSize: integer('webhookBatchSize', get('webhookBatchSize'), 100, 1, 1000),
      maxConcurrent: integer('webhookMaxConcurrent', get('webhookMaxConcurrent'), 32, 1, 10_000),
      batchMaxBytes: integer('webhookBatchMaxBytes', get('webhookBatchMaxBytes'), 1024 * 1024, 16 * 1024, 1024 * 1024 * 1024),
      allow: webhookAllow(get('webhookAllow'))
    },
    redisUrl,
    clusterSecret,
    workers,
    tlsSessions: {
      ticketRotationMs: integer('tlsTicketRotationMs', get('tlsTicketRotationMs'), 43_200_000, 0, 7 * 86_400_000),
      lifetimeSeconds: integer('tlsSessionLifetimeS', get('tlsSessionLifetimeS'), 7200, 1, 7 * 86_400)
    }
  }
}
