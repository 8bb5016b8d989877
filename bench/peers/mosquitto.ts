import { spawn, type ChildProcess } from 'node:child_process'
import fs from 'node:fs'
import net from 'node:net'
import path from 'node:path'

async function freePort (): Promise<number> {
  return await new Promise((resolve) => {
    const s = net.createServer()
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port
      s.close(() => resolve(port))
    })
  })
}

/** Mosquitto over mutual TLS on a free port with a generated config, or null when no mosquitto binary is on the PATH. */
export async function startMosquitto (certDir: string, workDir: string): Promise<{ port: number, child: ChildProcess } | null> {
  const bin = ['/usr/sbin/mosquitto', '/usr/bin/mosquitto', '/usr/local/sbin/mosquitto'].find((p) => fs.existsSync(p))
  if (bin === undefined) return null
  const port = await freePort()
  const conf = path.join(workDir, 'mosquitto.conf')
  fs.writeFileSync(conf, [
    'per_listener_settings false',
    'persistence false',
    'log_type error',
    'max_inflight_messages 0',
    'max_queued_messages 100000',
    `listener ${port} 127.0.0.1`,
    'allow_anonymous true',
    `cafile ${path.join(certDir, 'ca.crt')}`,
    `certfile ${path.join(certDir, 'server.crt')}`,
    `keyfile ${path.join(certDir, 'server.key')}`,
    'require_certificate true',
    ''
  ].join('\n'))
  // mosquitto drops root privileges to the mosquitto user: it must be able to read the files.
  for (const f of ['ca.crt', 'server.crt', 'server.key']) fs.chmodSync(path.join(certDir, f), 0o644)
  const child = spawn(bin, ['-c', conf], { stdio: ['ignore', 'ignore', 'pipe'] })
  const deadline = Date.now() + 5000
  while (Date.now() < deadline) {
    const up = await new Promise<boolean>((resolve) => {
      const s = net.connect(port, '127.0.0.1', () => { s.destroy(); resolve(true) })
      s.on('error', () => resolve(false))
    })
    if (up) return { port, child }
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
  child.kill()
  return null
}
