/**
 * Who acts, as the audit trail names them (README, "Security"): an API key, by its id (the
 * database writes `api-key:<id> (<name>)` from its own row, and checks what the key may do), or
 * an operator on the server, by a name such as `cli:alice`.
 */
export type Actor = string | { keyId: string, name: string }

/** The actor as the audit trail writes it (what vgw_actor in migration 0013 computes). */
export function actorName (actor: Actor): string {
  return typeof actor === 'string' ? actor : `api-key:${actor.keyId} (${actor.name})`
}

/** The owner-run functions' last two arguments: the acting key's id, or the operator's name. */
export function actorArgs (actor: Actor): [string | null, string | null] {
  return typeof actor === 'string' ? [null, actor] : [actor.keyId, null]
}
