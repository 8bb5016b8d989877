/** What the ledger needs of a committed log row. */
export interface CommittedLeaf {
  id: string
  /** The inserting transaction's id (xid8 as text): the ledger's batch. */
  xid: string
  /** vgw_log_leaf of the stored row (migration 0015). */
  leaf: Buffer
}

/** The leaves of rows a statement answered with LOG_RETURNING or the append's aggregate. */
export function leavesOf (rows: ReadonlyArray<{ id: string, xid?: string, leaf?: Buffer }>): CommittedLeaf[] {
  const out: CommittedLeaf[] = []
  for (const r of rows) if (r.xid !== undefined && r.leaf !== undefined) out.push({ id: r.id, xid: r.xid, leaf: r.leaf })
  return out
}

/**
 * Every statement that writes log rows reports them here once its transaction has committed, all
 * of one transaction together, each row with its xid and its leaf hash (migration 0015). The
 * ledger listens (docs/architecture.md, "The ledger"); a listener that throws does not undo the commit.
 */
export class LogCommitted {
  readonly #listeners = new Set<(rows: readonly CommittedLeaf[]) => void>()

  on (listener: (rows: readonly CommittedLeaf[]) => void): () => void {
    this.#listeners.add(listener)
    return () => { this.#listeners.delete(listener) }
  }

  emit (rows: readonly CommittedLeaf[]): void {
    if (rows.length === 0 || this.#listeners.size === 0) return
    for (const listener of this.#listeners) {
      try {
        listener(rows)
      } catch {
        // The rows are committed whatever a listener does; the ledger reports its own failures.
      }
    }
  }
}
