import { execFileSync } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import t from 'tap'
import protobuf from 'protobufjs'
import { v7 as uuidv7 } from 'uuid'
import { decodeEnvelope, defaultEnvelopeLimits, encodeEnvelope, parseEnvelope } from '../../protocol/index.ts'

const NOW = Date.UTC(2026, 10, 26, 12)

t.test('encode and decode round-trip every field', async (t) => {
  const input = {
    messageId: uuidv7(),
    correlationId: uuidv7(),
    kind: 'ACK' as const,
    type: 'service.reminder',
    createdAtMs: NOW - 1000,
    ttlSeconds: 3600,
    payload: Buffer.from('hello'),
    attributes: { locale: 'de-DE', 'content-type': 'text/plain' },
    ackStatus: 'READ' as const,
    ackReason: 'ok'
  }
  const result = decodeEnvelope(encodeEnvelope(input), defaultEnvelopeLimits, NOW)
  t.ok(result.ok)
  if (result.ok) t.same({ ...result.envelope, payload: Buffer.from(result.envelope.payload) }, input)
})

t.test('field names and numbers match the contract when read by another implementation', async (t) => {
  // protobufjs reflection reads the .proto itself, as a vehicle in another language would.
  const root = new protobuf.Root().loadSync(path.join(import.meta.dirname, '../../protocol/envelope.proto'), { keepCase: true })
  const Type = root.lookupType('vgw.v1.Envelope')
  const numbers = Object.fromEntries(Type.fieldsArray.map((f) => [f.name, f.id]))
  t.same(numbers, {
    message_id: 1, correlation_id: 2, kind: 3, type: 4, created_at_ms: 5, ttl_seconds: 6, payload: 7, attributes: 8, ack_status: 9, ack_reason: 10
  })
  const id = uuidv7()
  const bytes = Type.encode(Type.fromObject({ message_id: id, kind: 2, type: 'ota.announcement', created_at_ms: NOW })).finish()
  t.match(parseEnvelope(bytes), { messageId: id, kind: 'EVENT', type: 'ota.announcement', createdAtMs: NOW })
})

t.test('validation names each problem with its own code', async (t) => {
  const ok = { messageId: uuidv7(), kind: 'TELEMETRY' as const, type: 'telemetry.position', createdAtMs: NOW }
  const check = (over: object): string => {
    const r = decodeEnvelope(encodeEnvelope({ ...ok, ...over }), defaultEnvelopeLimits, NOW)
    return r.ok ? 'ok' : r.code
  }
  t.equal(check({}), 'ok')
  t.equal(check({ messageId: 'x' }), 'GW_ERR_ENVELOPE_INVALID_MESSAGE_ID')
  t.equal(check({ kind: 'KIND_UNSPECIFIED' }), 'GW_ERR_ENVELOPE_INVALID_KIND')
  t.equal(check({ type: 'has space' }), 'GW_ERR_ENVELOPE_INVALID_TYPE')
  t.equal(check({ type: 'x'.repeat(128) }), 'ok', '128 characters are allowed')
  t.equal(check({ createdAtMs: NOW - defaultEnvelopeLimits.maxAgeMs - 1 }), 'GW_ERR_ENVELOPE_INVALID_CREATED_AT')
  t.equal(check({ createdAtMs: NOW + defaultEnvelopeLimits.maxFutureSkewMs + 1 }), 'GW_ERR_ENVELOPE_INVALID_CREATED_AT')
  t.equal(check({ kind: 'RESPONSE', correlationId: 'nope' }), 'GW_ERR_ENVELOPE_INVALID_CORRELATION_ID')
  t.equal(check({ kind: 'ACK', correlationId: uuidv7() }), 'GW_ERR_ENVELOPE_INVALID_ACK_STATUS')
  t.equal(check({ kind: 'ACK', correlationId: uuidv7(), ackStatus: 'REJECTED', ackReason: 'GW_X' }), 'ok')
  t.equal(check({ ackReason: 'a\u0000b' }), 'GW_ERR_ENVELOPE_MALFORMED')
  const unknownKind = Buffer.from([0x18, 0x63]) // field 3 (kind) = 99
  const r = decodeEnvelope(unknownKind, defaultEnvelopeLimits, NOW)
  t.equal(r.ok ? 'ok' : r.code, 'GW_ERR_ENVELOPE_INVALID_MESSAGE_ID')
})

t.test('the generated codec is what pbjs makes from envelope.proto today', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vgw-proto-'))
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }))
  const root = path.join(import.meta.dirname, '../..')
  const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')) as { scripts: Record<string, string> }
  const command = (pkg.scripts['proto:generate'] ?? '').replace('-o protocol/generated/envelope.js', `-o ${dir}/envelope.js`)
  t.match(command, /^pbjs /)
  execFileSync('npx', command.split(' '), { cwd: root, stdio: 'pipe' })
  for (const f of ['envelope.js', 'envelope.d.ts']) {
    t.equal(fs.readFileSync(path.join(dir, f), 'utf8'), fs.readFileSync(path.join(root, 'protocol/generated', f), 'utf8'), `${f} is up to date (run npm run proto:generate)`)
  }
})
