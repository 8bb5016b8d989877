import http from 'node:http'
import { randomUUID } from 'node:crypto'
import type { AddressInfo } from 'node:net'
import t from 'tap'
import { BackendSimulator } from '../../simulators/backend-sim.ts'

// A gateway that answers slower than sends arrive: the simulated backend must queue its sends on a
// bounded set of keep-alive connections, not open one more connection per waiting send (bench D1
// held 16,000 connections that way, and their set-up took the CPU the answers needed).
t.test('sends that outpace the answers queue on a bounded set of connections, and all are answered', async (t) => {
  let connections = 0
  let requests = 0
  const server = http.createServer((req, res) => {
    requests++
    req.resume()
    req.on('end', () => setTimeout(() => {
      res.writeHead(202, { 'content-type': 'application/json' })
      res.end(JSON.stringify({ id: randomUUID() }))
    }, 200))
  })
  server.on('connection', () => { connections++ })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => server.close())
  const { port } = server.address() as AddressInfo
  const backend = new BackendSimulator(`http://127.0.0.1:${port}`, 'key', ['VIN'], 60)
  t.teardown(() => backend.close())
  backend.start(2000, () => 1)
  await new Promise((resolve) => setTimeout(resolve, 500))
  backend.stop()
  await backend.idle(30_000)
  t.ok(requests > 300, `${requests} sends made`)
  t.equal(backend.sent.size, requests, 'every send answered 202 and recorded')
  t.equal(backend.postFailures, 0)
  t.ok(connections <= 64, `${connections} connections for ${requests} sends`)
})
