import { auditRowHash, GENESIS_HASH } from '../core/audit.js';
import type { EnforcementMode } from '../core/decision.js';
import type { AuditRecord } from '../core/records.js';
import type { EventOutcome } from './engine.js';

/**
 * Appends audit rows to per-tenant hash chains: each row carries the previous
 * row's hash, so deleting or editing a row breaks every later link.
 * Appending is synchronous, so concurrent batches cannot interleave a chain.
 */
export class AuditChain {
  private readonly heads: Map<string, { seq: number; hash: string }>;

  constructor(heads: Map<string, { seq: number; hash: string }> = new Map()) {
    this.heads = new Map(heads);
  }

  append(outcome: EventOutcome, policyVersion: string, mode: EnforcementMode, evaluatedAt: number): AuditRecord {
    const { event } = outcome;
    const head = this.heads.get(event.tenant) ?? { seq: 0, hash: GENESIS_HASH };
    const row: Omit<AuditRecord, 'hash'> = {
      event_id: event.event_id,
      time: event.time,
      tenant: event.tenant,
      agent_id: event.agent.id,
      event_type: event.type,
      decision: outcome.decision,
      would_decide: outcome.would_decide,
      mode,
      matched_policies: outcome.matched_policies,
      verdict_ids: outcome.verdict_ids,
      policy_version: policyVersion,
      evaluated_at: evaluatedAt,
      seq: head.seq + 1,
      prev_hash: head.hash,
    };
    const hash = auditRowHash(row);
    this.heads.set(event.tenant, { seq: row.seq, hash });
    return { ...row, hash };
  }
}
