// The simulators part: simulated fleets, as a library (tests, benchmarks) and behind `vgw fleet`.
export { runFleet, type FleetReport, type FleetHooks, type Progress } from './run-fleet.ts'
export { verifyFleet, type VerificationInput, type VerificationResult, type Mismatch } from './fleet-verify.ts'
export { checkFeed, feedHead, type FeedCheckInput, type FeedCheckResult } from './fleet-feed-verify.ts'
export { defaultFleetOptions, parseDuration, parseRange, parseMarkets, parseScenario, positive, SCENARIOS, type FleetOptions, type Scenario } from './fleet-options.ts'
export { progressText, progressLine, summaryText } from './fleet-summary.ts'
export { fleetVin, marketFor } from './vin-factory.ts'
