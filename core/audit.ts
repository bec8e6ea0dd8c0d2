import { sha256Hex } from './ids.js';
import type { AuditRecord } from './records.js';

/** The first link of every tenant's chain points at this hash. */
export const GENESIS_HASH = '0'.repeat(64);

/**
 * The exact text hashed for an audit row: every field except `hash`, in a
 * fixed order, unit-separated. Verifiers recompute it from stored rows, so it
 * must never change for existing rows (a new format needs a new version field).
 */
export function auditHashInput(row: Omit<AuditRecord, 'hash'>): string {
  return [
    row.prev_hash,
    row.seq,
    row.tenant,
    row.bus_partition,
    row.event_id,
    row.time,
    row.agent_id,
    row.event_type,
    row.decision,
    row.would_decide,
    row.mode,
    row.matched_policies.join(','),
    row.verdict_ids.join(','),
    row.policy_version,
    row.evaluated_at,
  ].join('\u001f');
}

export function auditRowHash(row: Omit<AuditRecord, 'hash'>): string {
  return sha256Hex(auditHashInput(row));
}
