import { execFileSync, spawnSync } from 'node:child_process'
import t from 'tap'
import { parseEnvelope } from '../../protocol/index.ts'
import { ROOT } from '../helpers/gateway-process.ts'

t.test('vgw envelope encode writes an envelope that decode (and the codec) read back', async (t) => {
  const bytes = execFileSync(process.execPath, ['bin/vgw.js', 'envelope', 'encode', '--type', 'message.ack', '--kind', 'ACK', '--payload', 'hi',
    '--correlation-id', '01a216bc-339d-71b9-a7ad-21c86aa66624', '--ack-status', 'READ'], { cwd: ROOT })
  t.match(parseEnvelope(bytes), { kind: 'ACK', type: 'message.ack', ackStatus: 'READ', correlationId: '01a216bc-339d-71b9-a7ad-21c86aa66624', messageId: /^[0-9a-f-]{36}$/ })
  const decoded = JSON.parse(execFileSync(process.execPath, ['bin/vgw.js', 'envelope', 'decode'], { cwd: ROOT, input: bytes, encoding: 'utf8' })) as Record<string, unknown>
  t.match(decoded, { kind: 'ACK', payload: Buffer.from('hi').toString('base64') })
  const bad = spawnSync(process.execPath, ['bin/vgw.js', 'envelope', 'encode', '--type', 'x', '--kind', 'PING'], { cwd: ROOT, encoding: 'utf8' })
  t.equal(bad.status, 2)
  t.match(bad.stderr, /--kind PING/)
})
