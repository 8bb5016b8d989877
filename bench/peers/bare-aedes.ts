// The benchmarks' ceiling for any Node/Aedes broker: Aedes 1.x with its permissive default
// hooks, no database, over mutual TLS (--tls CERT_DIR) or plain TCP. Prints {"port": N} when listening.
import fs from 'node:fs'
import net from 'node:net'
import path from 'node:path'
import tls from 'node:tls'
import { Aedes } from 'aedes'

const certDir = process.argv[2] === '--tls' ? process.argv[3] : undefined
const broker = await Aedes.createBroker({ drainTimeout: 10_000 })
const server = certDir === undefined
  ? net.createServer(broker.handle)
  : tls.createServer({
    ca: fs.readFileSync(path.join(certDir, 'ca.crt')),
    cert: fs.readFileSync(path.join(certDir, 'server.crt')),
    key: fs.readFileSync(path.join(certDir, 'server.key')),
    requestCert: true,
    rejectUnauthorized: true
  }, broker.handle)
server.listen(0, '127.0.0.1', () => {
  process.stdout.write(JSON.stringify({ port: (server.address() as net.AddressInfo).port }) + '\n')
})
process.on('SIGTERM', () => server.close(() => broker.close(() => process.exit(0))))
