// The gateway part: wires protocol and store into the vehicle edge (MQTT over mTLS) and the REST API.
export { buildGateway, type Gateway, type GatewayDeps } from './build-gateway.ts'
export { loadConfig, SETTINGS, DEV_CERT_DIR, type GatewayConfig, type ConfigInput, type SettingName } from './config.ts'
export { CommitBatcher } from './commit-batcher.ts'
export { startGateway, prepareDeployment, startGatewayProcess, type RunningGateway, type PreparedDeployment } from './start-gateway.ts'
