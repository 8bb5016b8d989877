import path from 'node:path'
import t from 'tap'
import { loadConfig } from '../../gateway/index.ts'

t.test('defaults are the documented ones', async (t) => {
  const c = loadConfig({}, {}, '/srv/vgw')
  t.equal(c.databaseUrl, undefined)
  t.equal(c.dataDir, '/srv/vgw/.data')
  t.equal(c.mqttPort, 8883)
  t.equal(c.httpPort, 8080)
  t.equal(c.tls.ca, path.join('/srv/vgw/certs/dev/ca.crt'))
  t.equal(c.devCerts, true)
  t.equal(c.envelope.maxBytes, 256 * 1024)
})

t.test('flags win over the environment', async (t) => {
  const c = loadConfig({ VGW_MQTT_PORT: '1' }, { mqttPort: '2' })
  t.equal(c.mqttPort, 2)
})

t.test('TLS paths switch off the dev certificates', async (t) => {
  t.equal(loadConfig({ VGW_TLS_CA: '/x/ca.pem' }).devCerts, false)
})

t.test('every bad value stops start-up with a message naming the variable', async (t) => {
  const bad: Array<[Record<string, string>, RegExp]> = [
    [{ VGW_MQTT_PORT: 'abc' }, /VGW_MQTT_PORT \(--mqtt-port\)/],
    [{ VGW_HTTP_PORT: '70000' }, /VGW_HTTP_PORT/],
    [{ VGW_LOG_LEVEL: 'loud' }, /VGW_LOG_LEVEL/],
    [{ DATABASE_URL: 'mysql://x' }, /DATABASE_URL/],
    [{ DATABASE_URL: 'not a url' }, /DATABASE_URL/],
    // Nothing secret to derive the gateway's own login's password from (README, "Security").
    [{ DATABASE_URL: 'postgres://vgw@db.example:5432/vgw' }, /DATABASE_URL \(--database-url\) = "<hidden>": carries no password.*VGW_APP_DATABASE_URL/],
    [{ VGW_HOST: 'a b' }, /VGW_HOST/],
    [{ VGW_BATCH_MAX_SIZE: '0' }, /VGW_BATCH_MAX_SIZE/],
    [{ VGW_MAX_ENVELOPE_BYTES: '4096', VGW_MAX_PACKET_BYTES: '4096' }, /VGW_MAX_PACKET_BYTES/]
  ]
  for (const [env, message] of bad) {
    t.throws(() => loadConfig(env), { code: 'GW_ERR_CONFIG_INVALID', message }, JSON.stringify(env))
  }
})

t.test('DATABASE_URL without a password is accepted with a login of the gateway\'s own (VGW_APP_DATABASE_URL)', async (t) => {
  const config = loadConfig({ DATABASE_URL: 'postgres://vgw@db.example:5432/vgw', VGW_APP_DATABASE_URL: 'postgres://gw:pw@db.example:5432/vgw' })
  t.equal(config.appDatabaseUrl, 'postgres://gw:pw@db.example:5432/vgw')
})

t.test('a database password never appears in the message', async (t) => {
  let message = ''
  try {
    loadConfig({ DATABASE_URL: 'nonsense-with-secret' })
  } catch (err) {
    message = (err as Error).message
  }
  t.match(message, /DATABASE_URL/)
  t.notMatch(message, /secret/)
})
