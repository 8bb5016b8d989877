import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client'

/*
 * Every metric the gateway exports (README, "Operating vgw"). Label values come from small
 * fixed sets (markets, GW_ERR_ codes, statuses, route patterns, pool names): never a VIN,
 * a message id or a URL with one in it, so a fleet of a million vehicles is still a few
 * hundred series. ops/ reads this file's names; test/ops checks that it queries nothing else.
 */

// Seconds; PUBACK and commits are milliseconds when healthy, seconds while the database is away.
const FAST_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30]
// A downlink waits for its vehicle: seconds to days.
const DELIVERY_BUCKETS = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 21600, 86400, 604800]
const BATCH_SIZE_BUCKETS = [1, 2, 5, 10, 25, 50, 100, 250, 500, 1000]

/** Builds the gateway's registry; one per gateway, so that several gateways in one process (tests) do not share counters. */
export function createGatewayMetrics () {
  const registry = new Registry()
  // Process metrics: CPU, RSS, heap, event-loop lag, open file descriptors, GC.
  collectDefaultMetrics({ register: registry })
  // These walk every handle (each vehicle's socket) per scrape, about 6 ms of CPU at 1,000
  // vehicles (bench/metrics-scrape-cost.ts); vgw_vehicle_connections and process_open_fds say as much.
  for (const name of ['nodejs_active_handles', 'nodejs_active_handles_total', 'nodejs_active_resources', 'nodejs_active_resources_total', 'nodejs_active_requests', 'nodejs_active_requests_total']) {
    registry.removeSingleMetric(name)
  }
  const registers = [registry]
  const counter = <L extends string>(name: string, help: string, labelNames: readonly L[] = []) =>
    new Counter<L>({ name, help, labelNames, registers })
  const gauge = <L extends string>(name: string, help: string, labelNames: readonly L[] = []) =>
    new Gauge<L>({ name, help, labelNames, registers })
  const histogram = <L extends string>(name: string, help: string, buckets: number[], labelNames: readonly L[] = []) =>
    new Histogram<L>({ name, help, buckets, labelNames, registers })

  return {
    registry,
    // Vehicles
    connections: gauge('vgw_vehicle_connections', 'vehicles connected to this process now', ['market']),
    connects: counter('vgw_vehicle_connects_total', 'vehicle sessions accepted (CONNACK 0)'),
    disconnects: counter('vgw_vehicle_disconnects_total', 'vehicle sessions ended'),
    connectRefusals: counter('vgw_vehicle_connect_refusals_total', 'CONNECTs refused, by GW_ERR_ code', ['code']),
    tlsFailures: counter('vgw_tls_handshake_failures_total', 'TLS handshakes that failed or were cut off, by Node error code', ['reason']),
    // Uplinks
    uplinks: counter('vgw_uplinks_total', 'uplink envelopes by outcome: accepted, rejected (stored, with its code), duplicate (a retry, stored once), refused (no PUBACK, connection closed)', ['outcome', 'code']),
    puback: histogram('vgw_uplink_puback_seconds', 'from the PUBLISH reaching the broker hooks to its PUBACK being released (gate, quota delay, commit)', FAST_BUCKETS),
    quotaRefusals: counter('vgw_quota_refusals_total', 'uplinks refused by a vehicle quota (GW_ERR_QUOTA_EXCEEDED)'),
    // Commits
    batchSize: histogram('vgw_commit_batch_size', 'rows per committed batch', BATCH_SIZE_BUCKETS, ['batcher']),
    commitSeconds: histogram('vgw_commit_seconds', 'duration of one successful batch commit', FAST_BUCKETS, ['batcher']),
    commitRetries: counter('vgw_commit_retries_total', 'batch commits that failed and will be retried', ['batcher']),
    pendingRows: gauge('vgw_commit_pending_rows', 'rows waiting for or in a commit', ['batcher']),
    pendingBytes: gauge('vgw_commit_pending_bytes', 'bytes of the rows waiting for or in a commit', ['batcher']),
    pendingRowsLimit: gauge('vgw_commit_pending_rows_limit', 'VGW_MAX_PENDING_RECORDS'),
    pendingBytesLimit: gauge('vgw_commit_pending_bytes_limit', 'VGW_MAX_PENDING_BYTES'),
    lastCommitAge: gauge('vgw_commit_last_success_age_seconds', 'seconds since the last successful commit (grows while idle too)', ['batcher']),
    stalled: gauge('vgw_commit_stalled_seconds', 'seconds for which rows have been pending without any commit (what /ready reads); 0 while idle or progressing', ['batcher']),
    stallLimit: gauge('vgw_commit_stall_limit_seconds', 'VGW_COMMIT_STALL_MS in seconds'),
    // Downlinks
    transitions: counter('vgw_downlink_transitions_total', 'downlink status changes committed by this process, by status', ['status']),
    undelivered: gauge('vgw_downlinks_undelivered', 'downlinks queued or sent and not yet delivered, in the whole database (counted every 15 s, not per scrape)'),
    delivery: histogram('vgw_downlink_delivery_seconds', 'from the REST send (the message id\'s time) to the vehicle\'s PUBACK', DELIVERY_BUCKETS),
    // REST and stream
    httpRequests: counter('vgw_http_requests_total', 'REST requests by route pattern, method and status', ['route', 'method', 'status']),
    httpSeconds: histogram('vgw_http_request_seconds', 'REST request duration by route pattern and method', FAST_BUCKETS, ['route', 'method']),
    rateLimited: counter('vgw_http_rate_limited_total', 'REST requests refused with 429 GW_ERR_RATE_LIMITED'),
    streamClients: gauge('vgw_stream_clients', 'WebSocket stream clients connected now'),
    // Security
    security: counter('vgw_security_events_total', 'security events by GW_ERR_ code (including those counted into a summary row)', ['code']),
    // Database
    poolTotal: gauge('vgw_db_pool_connections', 'connections open in the pool', ['pool']),
    poolIdle: gauge('vgw_db_pool_idle', 'idle connections in the pool', ['pool']),
    poolWaiting: gauge('vgw_db_pool_waiting', 'queries waiting for a connection of the pool', ['pool']),
    poolMax: gauge('vgw_db_pool_max', 'the pool\'s size', ['pool']),
    // Lifecycle and PKI
    retentionRuns: counter('vgw_retention_runs_total', 'retention runs by outcome (ok, failed)', ['outcome']),
    retentionRemoved: counter('vgw_retention_rows_removed_total', 'log rows removed by retention'),
    retentionSeconds: histogram('vgw_retention_run_seconds', 'duration of a retention run', [0.1, 0.5, 1, 5, 30, 60, 300, 900, 3600]),
    crlAge: gauge('vgw_crl_age_seconds', 'seconds since the loaded CRL\'s thisUpdate'),
    crlNextUpdate: gauge('vgw_crl_next_update_seconds', 'seconds until the loaded CRL\'s nextUpdate (negative: past it)'),
    ready: gauge('vgw_ready', '1 when /ready would answer 200, else 0')
  }
}

export type GatewayMetrics = ReturnType<typeof createGatewayMetrics>
