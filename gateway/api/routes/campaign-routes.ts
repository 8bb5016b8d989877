import type { FastifyInstance } from 'fastify'
import { GatewayError, isUuid, isValidVin, type EnvelopeLimits } from '../../../protocol/index.ts'
import type { Store } from '../../../store/index.ts'
import type { EventHub } from '../../events/event-hub.ts'
import { actorOf } from '../auth.ts'
import { messageProperties, parseMessage, type MessageInput } from '../message-input.ts'

export interface CampaignRoutesDeps {
  store: Store
  hub: EventHub
  /** Tells the gateways of the cluster that the campaign's messages wait. */
  announceCampaign: (campaignId: string) => void
  limits: EnvelopeLimits
  defaultTtlSeconds: number
  maxTtlSeconds: number
  now: () => number
  newId: () => string
  /** Vehicles one campaign may name, whether listed or resolved from a market; past it 413 GW_ERR_TOO_MANY_RECIPIENTS. */
  maxRecipients: number
  /** Bytes one campaign may write (its envelope's size times its recipients); past it 413 GW_ERR_CAMPAIGN_TOO_LARGE. */
  maxBytes: number
}

type CampaignBody = MessageInput & { vins?: string[], market?: string }

export async function campaignRoutes (app: FastifyInstance, deps: CampaignRoutesDeps): Promise<void> {
  app.post<{ Body: CampaignBody }>('/v1/campaigns', {
    config: { scope: 'messages:send' },
    // 100,000 VINs are about 2 MB of JSON.
    bodyLimit: 64 * 1024 * 1024,
    schema: {
      summary: 'Send one message to each vehicle of a list or of a market',
      description: 'Give exactly one of `vins` or `market`. Messages are created set-based in one transaction; unknown VINs are skipped and listed. ' +
        'A list of more than VGW_CAMPAIGN_MAX_RECIPIENTS distinct VINs, or a market with more vehicles than that, is refused with 413 GW_ERR_TOO_MANY_RECIPIENTS; ' +
        'one whose envelope size times its recipients exceeds VGW_CAMPAIGN_MAX_BYTES with 413 GW_ERR_CAMPAIGN_TOO_LARGE.',
      body: {
        type: 'object',
        required: ['type', 'payload'],
        additionalProperties: false,
        properties: {
          vins: { type: 'array', minItems: 1, maxItems: 1_000_000, items: { type: 'string' } },
          market: { type: 'string', pattern: '^[A-Z]{2}$' },
          ...messageProperties(deps.limits, deps.maxTtlSeconds)
        }
      }
    }
  }, async (request, reply) => {
    const { vins, market, ...input } = request.body
    if ((vins === undefined) === (market === undefined)) throw new GatewayError('GW_ERR_VALIDATION', 'body: give exactly one of vins or market')
    const bad = vins?.find((v) => !isValidVin(v))
    if (bad !== undefined) throw new GatewayError('GW_ERR_INVALID_VIN', `body.vins: "${bad.slice(0, 40)}" is not a valid VIN`)
    const named = vins !== undefined ? new Set(vins).size : 0
    if (named > deps.maxRecipients) throw new GatewayError('GW_ERR_TOO_MANY_RECIPIENTS', `body.vins names ${named} vehicles; a campaign may name ${deps.maxRecipients} at most`)
    const m = parseMessage(input, deps.limits, deps.defaultTtlSeconds)
    // Each recipient gets a row holding the payload and an envelope of this size: the campaign's bytes are bounded before anything is written.
    const maxRecipientsForBytes = Math.floor(deps.maxBytes / m.envelopeBytes)
    if (named > maxRecipientsForBytes) {
      throw new GatewayError('GW_ERR_CAMPAIGN_TOO_LARGE', `body.vins names ${named} vehicles and the message's envelope is ${m.envelopeBytes} bytes: ` +
        `${named * m.envelopeBytes} bytes, more than the ${deps.maxBytes} one campaign may write (VGW_CAMPAIGN_MAX_BYTES)`)
    }
    const created = await deps.store.campaigns.create({
      id: deps.newId(),
      apiKeyId: request.apiKey?.id ?? null,
      target: vins !== undefined ? { vins } : { market: market as string },
      ...m,
      createdAt: new Date(deps.now()),
      maxRecipients: deps.maxRecipients,
      maxRecipientsForBytes
    })
    await deps.store.lifecycle.audit(actorOf(request), 'campaign.create',
      { campaignId: created.id, type: m.type, target: vins !== undefined ? { vins: named } : { market }, messageCount: created.messageCount })
    deps.hub.publish({ event: 'campaign.created', vin: null, kind: 'MESSAGE', type: m.type, campaignId: created.id, messageCount: created.messageCount })
    deps.announceCampaign(created.id)
    return reply.code(202).send({ id: created.id, status: 'queued', messageCount: created.messageCount, skippedVins: created.skippedVins })
  })

  app.get<{ Params: { id: string } }>('/v1/campaigns/:id', {
    config: { scope: 'messages:read' },
    schema: { summary: 'A campaign and its message counts per status', params: { type: 'object', required: ['id'], properties: { id: { type: 'string' } } } }
  }, async (request) => {
    const { id } = request.params
    const report = isUuid(id) ? await deps.store.campaigns.report(id) : null
    if (report === null) throw new GatewayError('GW_ERR_CAMPAIGN_NOT_FOUND', `no campaign ${id.slice(0, 40)}`)
    return { ...report, createdAt: report.createdAt.toISOString() }
  })
}
