import { auditRowHash, GENESIS_HASH } from '../core/audit.js';
import type { EnforcementMode } from '../core/decision.js';
import type { AuditRecord } from '../core/records.js';
import type { EventOutcome } from './engine.js';

type Head = { seq: number; hash: string };
/** Reads the last link before `beforeSeq` of each tenant's chain on a partition. */
export type ChainHeadLoader = (partition: number, beforeSeq: number, tenants: readonly string[]) => Promise<Map<string, Head>>;

/**
 * Appends audit rows to hash chains, one per (tenant, bus partition): each row
 * carries the previous row's hash, so deleting or editing a row breaks every
 * later link. `seq` is the event's offset, so a batch replayed after a crash
 * (from the committed offset, with the head as it was there) produces exactly
 * the same rows, which the replacing table collapses.
 */
export class AuditChain {
  private readonly heads = new Map<string, Head>();

  constructor(private readonly loadHeads: ChainHeadLoader) {}

  /**
   * Makes sure the heads of the batch's chains are those just before `firstSeq`:
   * cached heads are used when they are behind it (the normal, sequential case);
   * otherwise (first sight, or a rewind) they are read from the store.
   */
  async prepare(partition: number, firstSeq: number, tenants: Iterable<string>): Promise<void> {
    const stale: string[] = [];
    for (const tenant of new Set(tenants)) {
      const head = this.heads.get(chainKey(tenant, partition));
      if (head === undefined || head.seq >= firstSeq) stale.push(tenant);
    }
    if (stale.length === 0) return;
    const loaded = await this.loadHeads(partition, firstSeq, stale);
    for (const tenant of stale) this.heads.set(chainKey(tenant, partition), loaded.get(tenant) ?? { seq: -1, hash: GENESIS_HASH });
  }

  append(outcome: EventOutcome, partition: number, seq: number, policyVersion: string, mode: EnforcementMode, evaluatedAt: number): AuditRecord {
    const { event } = outcome;
    const key = chainKey(event.tenant, partition);
    const head = this.heads.get(key) ?? { seq: -1, hash: GENESIS_HASH };
    const row: Omit<AuditRecord, 'hash'> = {
      event_id: event.event_id,
      time: event.time,
      tenant: event.tenant,
      bus_partition: partition,
      agent_id: event.agent.id,
      event_type: event.type,
      decision: outcome.decision,
      would_decide: outcome.would_decide,
      mode,
      matched_policies: outcome.matched_policies,
      verdict_ids: outcome.verdict_ids,
      policy_version: policyVersion,
      evaluated_at: evaluatedAt,
      seq,
      prev_hash: head.hash,
    };
    const hash = auditRowHash(row);
    this.heads.set(key, { seq, hash });
    return { ...row, hash };
  }
}

function chainKey(tenant: string, partition: number): string {
  return `${tenant}\u0000${partition}`;
}
