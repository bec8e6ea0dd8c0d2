import type { StateStore } from '../core/ports.js';
import { LONG_RETENTION_MS, type ValueReviewOp, type ValueReviewResult } from '../core/state.js';
import type { CompiledPolicy, PolicyEngine } from './engine.js';
import { capabilityDriftStateKey, parseCanonicalCapabilities } from './types/capability-drift.js';
import { keyRotationStateKey } from './types/key-rotation.js';

/**
 * Pending approvals of the policy types that track a value under approval
 * (`capability_drift`, `key_rotation`), and their review: what the admin API
 * needs to list the capability sets and keys waiting for a person, and to
 * approve or reject one. Both go through the state store's `value_review`
 * operation on the key the policy's `value_snapshot` keeps (core/state.ts).
 */

/** The policy types whose values wait for approval. */
export type ApprovalPolicyType = 'capability_drift' | 'key_rotation';

/** One agent's value that differs from the approved one under one policy. */
export interface PendingApproval {
  tenant: string;
  agent_id: string;
  policy_id: string;
  policy_type: ApprovalPolicyType;
  /** Decoded: string[] of capabilities, or the fingerprint. */
  approved: string[] | string | null;
  pending: string[] | string;
  /** Raw stored value to pass back when approving. */
  pending_value: string;
  /** When the approved value was set (ISO 8601), null when unknown. */
  approved_at: string | null;
  /** An administrator rejected the pending value: the agent's events presenting it are denied. */
  rejected: boolean;
}

/** An administrator's decision on a pending value (`value` is `pending_value` from {@link pendingApprovals}). */
export interface ReviewRequest {
  tenant: string;
  agent_id: string;
  policy_id: string;
  action: 'approve' | 'reject';
  value: string;
}

/**
 * - `unknown_policy`: no enabled `capability_drift` or `key_rotation` policy
 *   with that id applies to the tenant;
 * - `not_pending`: the agent's last value is its approved one, or it was never seen;
 * - `stale`: the agent presented another value since the reviewed one was listed.
 */
export type ReviewOutcome = { ok: true; result: ValueReviewResult } | { ok: false; code: 'unknown_policy' | 'not_pending' | 'stale'; message: string };

/** The engine's enabled approval policies that apply to `tenant` (`match.tenants`), in document order. */
function approvalPolicies(engine: PolicyEngine, tenant: string): CompiledPolicy[] {
  return engine.policies.filter((p) => isApprovalType(p.policy.type) && (p.tenants === null || p.tenants(tenant)));
}

function isApprovalType(type: string): type is ApprovalPolicyType {
  return type === 'capability_drift' || type === 'key_rotation';
}

/** The state key a policy's `value_snapshot` keeps for the agent. */
function stateKeyOf(p: CompiledPolicy, tenant: string, agentId: string): string {
  return p.policy.type === 'capability_drift' ? capabilityDriftStateKey(tenant, agentId, p.policy.id) : keyRotationStateKey(tenant, agentId, p.policy.id);
}

/** A stored value as people read it: a capability list, or the fingerprint as is. */
function decodeValue(type: ApprovalPolicyType, value: string): string[] | string {
  return type === 'capability_drift' ? parseCanonicalCapabilities(value) : value;
}

function readOp(key: string, now: number): ValueReviewOp {
  return { op: 'value_review', key, action: 'read', ts: now };
}

/**
 * The agent's values waiting for a person, one per enabled approval policy
 * that applies to the tenant and whose last value seen differs from the
 * approved one (rejected values included, with `rejected: true`). Reads every
 * policy's key in one state-store round trip; reading changes nothing.
 * Policies whose `match.agents` leave the agent out have no state for it, so
 * they list nothing.
 */
export async function pendingApprovals(engine: PolicyEngine, state: StateStore, tenant: string, agentId: string): Promise<PendingApproval[]> {
  const policies = approvalPolicies(engine, tenant);
  if (policies.length === 0) return [];
  const now = Date.now();
  const results = await state.applyStateOps(policies.map((p) => readOp(stateKeyOf(p, tenant, agentId), now)));
  const pending: PendingApproval[] = [];
  for (let i = 0; i < policies.length; i++) {
    const p = policies[i] as CompiledPolicy;
    const r = results[i] as ValueReviewResult;
    if (r.last === null || r.last === r.approved) continue;
    const type = p.policy.type as ApprovalPolicyType;
    pending.push({
      tenant,
      agent_id: agentId,
      policy_id: p.policy.id,
      policy_type: type,
      approved: r.approved === null ? null : decodeValue(type, r.approved),
      pending: decodeValue(type, r.last),
      pending_value: r.last,
      approved_at: r.approvedAt === null ? null : new Date(r.approvedAt).toISOString(),
      rejected: r.rejected === r.last,
    });
  }
  return pending;
}

/**
 * Approves or rejects the agent's pending value under a policy, at wall-clock
 * `now` (ms). Applied only while `request.value` is still the agent's last
 * value seen: the store checks it atomically with the change, so a value the
 * agent replaced meanwhile is never approved (`stale`). Approving clears a
 * rejection of the same value; rejecting keeps the approved value, and the
 * agent's events presenting the rejected one are denied from then on.
 *
 * Two round trips: a read first, so that a value that is not pending (say,
 * the approved one) is refused rather than re-approved or rejected.
 */
export async function reviewApproval(engine: PolicyEngine, state: StateStore, request: ReviewRequest, now: number): Promise<ReviewOutcome> {
  const { tenant, agent_id: agentId, policy_id: policyId, action, value } = request;
  const policy = approvalPolicies(engine, tenant).find((p) => p.policy.id === policyId);
  if (policy === undefined) {
    return { ok: false, code: 'unknown_policy', message: `no enabled capability_drift or key_rotation policy ${JSON.stringify(policyId)} applies to tenant ${JSON.stringify(tenant)}` };
  }
  const key = stateKeyOf(policy, tenant, agentId);
  const [current] = await state.applyStateOps([readOp(key, now)]);
  if (current === undefined || current.last === null || current.last === current.approved) {
    return { ok: false, code: 'not_pending', message: `agent ${JSON.stringify(agentId)} has no value pending approval under policy ${JSON.stringify(policyId)}` };
  }
  const stale: ReviewOutcome = {
    ok: false,
    code: 'stale',
    message: `agent ${JSON.stringify(agentId)} presented another value under policy ${JSON.stringify(policyId)} since the one under review; list the pending approvals again`,
  };
  if (current.last !== value) return stale;
  // The approved value must outlive a quiet agent as long as the detectors keep it.
  const [result] = await state.applyStateOps([{ op: 'value_review', key, action, value, ts: now, retainMs: LONG_RETENTION_MS }]);
  if (result === undefined || !result.applied) return stale;
  return { ok: true, result };
}
