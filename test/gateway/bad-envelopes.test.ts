import { createHash } from 'node:crypto'
import t from 'tap'
import { v7 as uuidv7 } from 'uuid'
import { encodeEnvelope, parseEnvelope, type EnvelopeInput } from '../../protocol/index.ts'
import { startTestGateway } from '../helpers/gateway.ts'
import { connectVehicle, envelope, nextMessage, publishEnvelope } from '../helpers/vehicle.ts'

const VIN = 'WVWZZZ1JZXW000040'

interface Case {
  name: string
  bytes: () => Buffer
  code: string
  /** The message_id the notice must quote, when readable. */
  messageId: string | null
}

function bad (name: string, code: string, overrides: Partial<EnvelopeInput>): Case {
  const e = envelope(overrides)
  const readable = /^[0-9a-f-]{36}$/.test(e.messageId) ? e.messageId : null
  return { name, code, bytes: () => Buffer.from(encodeEnvelope(e)), messageId: readable }
}

const cases: Case[] = [
  { name: 'bytes that are not protobuf', code: 'GW_ERR_ENVELOPE_MALFORMED', bytes: () => Buffer.from([0xff, 0xff, 0xff, 0xff, 0x0f]), messageId: null },
  { name: 'JSON instead of protobuf', code: 'GW_ERR_ENVELOPE_MALFORMED', bytes: () => Buffer.from('{"messageId":"x"}'), messageId: null },
  { name: 'an empty payload', code: 'GW_ERR_ENVELOPE_INVALID_MESSAGE_ID', bytes: () => Buffer.alloc(0), messageId: null },
  bad('a message_id that is not a UUID', 'GW_ERR_ENVELOPE_INVALID_MESSAGE_ID', { messageId: 'not-a-uuid' }),
  bad('kind unset', 'GW_ERR_ENVELOPE_INVALID_KIND', { kind: 'KIND_UNSPECIFIED' }),
  bad('type empty', 'GW_ERR_ENVELOPE_INVALID_TYPE', { type: '' }),
  bad('type of 129 characters', 'GW_ERR_ENVELOPE_INVALID_TYPE', { type: 'a'.repeat(129) }),
  bad('created_at_ms missing', 'GW_ERR_ENVELOPE_INVALID_CREATED_AT', { createdAtMs: 0 }),
  bad('created_at_ms a day ahead', 'GW_ERR_ENVELOPE_INVALID_CREATED_AT', { createdAtMs: Date.now() + 24 * 3600_000 }),
  bad('an ACK without correlation_id', 'GW_ERR_ENVELOPE_INVALID_CORRELATION_ID', { kind: 'ACK', ackStatus: 'READ' }),
  bad('an ACK without ack_status', 'GW_ERR_ENVELOPE_INVALID_ACK_STATUS', { kind: 'ACK', correlationId: uuidv7() }),
  bad('too many attributes', 'GW_ERR_ENVELOPE_INVALID_ATTRIBUTES', { attributes: Object.fromEntries(Array.from({ length: 40 }, (_, i) => [`k${i}`, 'v'])) }),
  bad('a NUL in an attribute', 'GW_ERR_ENVELOPE_INVALID_ATTRIBUTES', { attributes: { 'a\u0000b': 'v' } }),
  bad('larger than the limit', 'GW_ERR_ENVELOPE_TOO_LARGE', { payload: Buffer.alloc(8 * 1024, 7) })
]

t.test('bad envelopes are acknowledged, stored as rejected with raw bytes, and answered with an error notice', async (t) => {
  // A small envelope limit, so the oversized case stays small.
  const gw = await startTestGateway(t, { VGW_MAX_ENVELOPE_BYTES: '4096', VGW_MAX_PACKET_BYTES: '65536' })
  const car = await connectVehicle(t, { port: gw.mqttPort, ca: gw.pki.ca, creds: await gw.pki.vehicle(VIN) })
  await car.subscribeAsync(`vehicles/${VIN}/down`, { qos: 1 })

  for (const c of cases) {
    await t.test(c.name, async (t) => {
      const bytes = c.bytes()
      const notice = nextMessage(car, `vehicles/${VIN}/down`)
      await car.publishAsync(`vehicles/${VIN}/up`, bytes, { qos: 1 }) // resolves on PUBACK
      const n = parseEnvelope(await notice)
      t.match(n, { kind: 'RESPONSE', type: 'error', ackStatus: 'REJECTED', ackReason: c.code, correlationId: c.messageId ?? '' })

      const page = await gw.store.transactions.listForVehicle({ vin: VIN, direction: 'up', limit: 1 })
      const row = page.items[0]
      // Unreadable: an id derived from the bytes, so a retransmission meets the dedup index (issue #19 D).
      t.match(row, { status: 'rejected', errorCode: c.code, messageId: c.messageId ?? /^[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/ })
      if (c.messageId === null) t.match(row?.details, { messageIdDerived: true })
      if (c.code === 'GW_ERR_ENVELOPE_TOO_LARGE') {
        // Oversized: the first 4 KiB, and the length and SHA-256 of the whole, prove what was sent.
        t.same(row?.raw, bytes.subarray(0, 4096), 'the first 4 KiB kept')
        t.match(row?.details, { length: bytes.length, sha256: createHash('sha256').update(bytes).digest('hex'), storedBytes: 4096 })
      } else {
        t.same(row?.raw, bytes, 'raw bytes kept exactly')
      }
    })
  }

  await t.test('the vehicle is not blocked: a good envelope still goes through', async (t) => {
    const good = envelope()
    await publishEnvelope(car, VIN, good)
    const rows = await gw.store.transactions.findByMessageId(VIN, good.messageId)
    t.match(rows, [{ status: 'accepted' }])
  })

  await t.test('the error notices are in the log as downlinks', async (t) => {
    await gw.gateway.log.flush()
    const down = await gw.store.transactions.listForVehicle({ vin: VIN, direction: 'down', limit: 100 })
    t.equal(down.items.length, cases.length)
    t.ok(down.items.every((r) => r.kind === 'RESPONSE' && r.type === 'error' && r.ackStatus === 'REJECTED'))
  })

  await t.test('the API shows rejected uplinks with their code and raw bytes', async (t) => {
    const res = await gw.api(`/v1/vehicles/${VIN}/transactions?direction=up&limit=100&include=raw`)
    const items = (res.body as { items: Array<Record<string, unknown>> }).items
    const malformed = items.find((i) => i.errorCode === 'GW_ERR_ENVELOPE_MALFORMED' && i.rawBase64 === Buffer.from([0xff, 0xff, 0xff, 0xff, 0x0f]).toString('base64'))
    t.ok(malformed, 'rejected row with rawBase64')
    t.equal(malformed?.status, 'rejected')
  })
})
