import type { Command } from 'commander'
import { v7 as uuidv7 } from 'uuid'
import { ACK_STATUSES, GatewayError, KINDS, encodeEnvelope, parseEnvelope, type AckStatus, type Kind } from '../protocol/index.ts'

async function stdin (): Promise<Buffer> {
  const chunks: Buffer[] = []
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer)
  return Buffer.concat(chunks)
}

/** `vgw envelope encode|decode`: make or read envelopes by hand, e.g. for mosquitto_pub. */
export function addEnvelopeCommand (program: Command): void {
  const env = program.command('envelope').description('encode or decode a vgw.v1.Envelope (for mosquitto_pub and friends)')
  env.command('encode')
    .description('write an encoded envelope to stdout (a fresh UUIDv7 message_id, created_at_ms now)')
    .requiredOption('--type <type>', 'dotted type, e.g. telemetry.position')
    .option('--kind <kind>', KINDS.slice(1).join(', '), 'TELEMETRY')
    .option('--payload <text>', 'payload as UTF-8 text', '')
    .option('--correlation-id <uuid>', 'for ACK and RESPONSE')
    .option('--ack-status <status>', ACK_STATUSES.slice(1).join(', '))
    .action((opts: { type: string, kind: string, payload: string, correlationId?: string, ackStatus?: string }) => {
      if (!(KINDS as readonly string[]).includes(opts.kind)) throw new GatewayError('GW_ERR_VALIDATION', `--kind ${opts.kind}: one of ${KINDS.slice(1).join(', ')}`)
      if (opts.ackStatus !== undefined && !(ACK_STATUSES as readonly string[]).includes(opts.ackStatus)) throw new GatewayError('GW_ERR_VALIDATION', `--ack-status ${opts.ackStatus}: one of ${ACK_STATUSES.slice(1).join(', ')}`)
      process.stdout.write(encodeEnvelope({
        messageId: uuidv7(),
        kind: opts.kind as Kind,
        type: opts.type,
        createdAtMs: Date.now(),
        payload: Buffer.from(opts.payload),
        ...(opts.correlationId !== undefined ? { correlationId: opts.correlationId } : {}),
        ...(opts.ackStatus !== undefined ? { ackStatus: opts.ackStatus as AckStatus } : {})
      }))
    })
  env.command('decode')
    .description('read an encoded envelope from stdin, print it as JSON')
    .action(async () => {
      const e = parseEnvelope(await stdin())
      process.stdout.write(JSON.stringify({ ...e, payload: Buffer.from(e.payload).toString('base64') }, null, 2) + '\n')
    })
}
