import { EVENT_ATTRIBUTE_MAX_JSON_BYTES } from '../protocol/index.ts'

/**
 * The log's `attributes` as events carry them (protocol/event-attributes.ts): a value whose JSON
 * encoding is over the bound comes back as {bytes, sha256}, computed here so that a feed page or a
 * webhook batch never pulls the large values out of PostgreSQL (32 values of 1,024 control
 * characters are 200 KB of jsonb text per row). PostgreSQL escapes strings in JSON as
 * JSON.stringify does, and both count UTF-8 bytes, so both sides summarise the same values.
 */
export const EVENT_ATTRIBUTES_SQL = `CASE WHEN attributes IS NULL OR attributes = '{}'::jsonb THEN attributes ELSE (
    SELECT jsonb_object_agg(a.key, CASE WHEN octet_length(to_jsonb(a.value)::text) > ${EVENT_ATTRIBUTE_MAX_JSON_BYTES}
      THEN jsonb_build_object('bytes', octet_length(convert_to(a.value, 'UTF8')), 'sha256', encode(sha256(convert_to(a.value, 'UTF8')), 'hex'))
      ELSE to_jsonb(a.value) END)
    FROM jsonb_each_text(attributes) a) END AS attributes`
