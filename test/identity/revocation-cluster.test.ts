import fs from 'node:fs'
import path from 'node:path'
import t from 'tap'
import { gatewayEnv, startVgwForTest } from '../helpers/gateway-process.ts'
import { REDIS_URL, redisTestOptions } from '../helpers/redis.ts'
import { sharedDeployment } from '../helpers/shared-database.ts'
import { attemptConnect, closed, connectVehicle } from '../helpers/vehicle.ts'
import { revokeWithCli } from './revoke-cli.ts'

const A = 'WVWZZZ1JZXW000211'
const B = 'WVWZZZ1JZXW000212'

const redis = await redisTestOptions(t)

t.test('a revocation seen by one gateway closes the vehicle\'s session on another', redis, async (t) => {
  const { url, pki } = await sharedDeployment(t)
  const credsA = await pki.vehicle(A)
  const credsB = await pki.vehicle(B)
  // Gateway 2 reads a copy of the CRL that nobody updates: only the bus can tell it.
  const staleCopy = path.join(pki.dir, 'crl-copy.pem')
  fs.copyFileSync(pki.paths.crl, staleCopy)
  const one = await startVgwForTest(t, gatewayEnv(pki.paths, { DATABASE_URL: url, VGW_REDIS_URL: REDIS_URL }))
  const two = await startVgwForTest(t, gatewayEnv({ ...pki.paths, crl: staleCopy }, { DATABASE_URL: url, VGW_REDIS_URL: REDIS_URL }))
  const carA = await connectVehicle(t, { port: two.mqttPort, ca: pki.ca, creds: credsA })
  const carB = await connectVehicle(t, { port: two.mqttPort, ca: pki.ca, creds: credsB })
  const started = performance.now()
  const gone = closed(carA, 10_000)
  const cliMs = await revokeWithCli(pki.dir, A)
  await gone
  const totalMs = performance.now() - started
  t.comment(`revocation across two gateways: vgw certs revoke took ${Math.round(cliMs)} ms; command start to disconnect on the other gateway ${Math.round(totalMs)} ms; CRL written to disconnect ${Math.round(totalMs - cliMs)} ms`)
  t.ok(totalMs < 10_000, 'closed on the other gateway within 10 s')
  t.ok(carB.connected, 'another vehicle on that gateway is untouched')
  const again = await attemptConnect({ port: two.mqttPort, ca: pki.ca, creds: credsA })
  t.equal(again.connected, false, 'the revoked vehicle cannot reconnect to the gateway whose file is stale either')
  const onOne = await attemptConnect({ port: one.mqttPort, ca: pki.ca, creds: credsA })
  t.equal(onOne.connected, false, 'nor to the first')
})
