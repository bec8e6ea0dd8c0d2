import { z } from 'zod';
import { decisionForAction, mostRestrictive } from '../../core/decision.js';
import type { Finding, PolicyType } from '../../core/detector.js';
import type { AgentEvent } from '../../core/event.js';
import type { ValidatedPolicy } from '../../core/policy.js';
import type { Evidence } from '../../core/records.js';
import { LONG_RETENTION_MS, agentStateKey, type StateOp, type StateResult } from '../../core/state.js';
import { formatUtcMinute } from '../approval.js';
import { agentLabel } from '../describe.js';

export const KeyRotationConfigSchema = z.strictObject({
  /**
   * Whether a new key needs an approval. On: the first key seen is approved
   * (trust on first use); every event signed with another key fires with
   * decision `require_approval` until someone approves it. Off: each new key
   * fires once, on the event that introduces it, and becomes the approved key. @default true
   */
  require_approval: z.boolean().default(true),
});
export type KeyRotationConfig = z.output<typeof KeyRotationConfigSchema>;

/** A scheme prefix such as `SHA256:` or `MD5:` (three characters or more, so the hex pair of `ab:cd:…` is not one). */
const FINGERPRINT_SCHEME = /^[A-Za-z][A-Za-z0-9-]{2,15}:/;

/**
 * A fingerprint short enough for a sentence: `SHA256:9f2c41d0…e41a`. The
 * scheme prefix is kept; a body longer than 16 characters keeps its first 8
 * and last 4. Evidence carries the full fingerprints.
 */
export function shortFingerprint(fingerprint: string): string {
  const scheme = FINGERPRINT_SCHEME.exec(fingerprint)?.[0] ?? '';
  const body = fingerprint.slice(scheme.length);
  return body.length <= 16 ? fingerprint : `${scheme}${body.slice(0, 8)}…${body.slice(-4)}`;
}

/** The `value_snapshot` key of an agent's key fingerprint under a `key_rotation` policy. */
export function keyRotationStateKey(tenant: string, agentId: string, policyId: string): string {
  return agentStateKey(tenant, agentId, policyId, 'key');
}

/**
 * `key_rotation`: the public key an agent presents (`key.fingerprint`, usually
 * on `key_rotation` events) is not its approved key.
 *
 * State: one `value_snapshot` per agent and policy (part `key`) whose value is
 * the fingerprint, auto-approving unless `require_approval`. Approving a
 * pending key = setting the key's approved value to its fingerprint
 * (`value_review`, detectors/approvals.ts).
 *
 * A key an administrator rejected fires `critical` with decision `deny` on
 * every event presenting it, whatever the approved key (auto-approval
 * included) — until someone approves it.
 */
export const keyRotationPolicy: PolicyType<KeyRotationConfig, null> = {
  type: 'key_rotation',
  configSchema: KeyRotationConfigSchema,
  // AML.T0073 Impersonation: an agent identity presenting key material nobody
  // approved may be someone else acting as that agent (a cloned or hijacked
  // agent, a swapped signing key) to be trusted like it.
  defaultAtlas: ['AML.T0073'],

  compile(): null {
    return null;
  },

  plan(event: AgentEvent, _c: null, policy: ValidatedPolicy<KeyRotationConfig>, out: StateOp[]): void {
    if (event.key === undefined) return;
    out.push({
      op: 'value_snapshot',
      key: keyRotationStateKey(event.tenant, event.agent.id, policy.id),
      // The runtime fills in the bus position of the event.
      partition: -1,
      offset: -1,
      committedOffset: -1,
      ts: event.time,
      value: event.key.fingerprint,
      autoApprove: !policy.config.require_approval,
      // The approved key must outlive a quiet weekend, or the next key is trusted on first use.
      retainMs: LONG_RETENTION_MS,
    });
  },

  decide(event: AgentEvent, results: readonly StateResult[], _c: null, policy: ValidatedPolicy<KeyRotationConfig>): Finding | null {
    const result = results[0];
    // First sight is the trusted baseline; the approved key itself is fine.
    if (result?.op !== 'value_snapshot' || result.approved === null || event.key === undefined) return null;
    const fingerprint = event.key.fingerprint;
    // Compared with the approved key rather than the previous one: without
    // approvals the two are the same, and after `require_approval` is turned
    // off a still-pending key fires once more, on the event that approves it.
    // Checked before the approved key: an auto-approved key stays rejected.
    const rejected = result.rejected !== null && fingerprint === result.rejected;
    if (!rejected && fingerprint === result.approved) return null;

    const algorithm = event.key.algorithm;
    const newKey = `${algorithm === undefined ? '' : `${algorithm} `}key ${shortFingerprint(fingerprint)}`;
    const oldKey = `${shortFingerprint(result.approved)}${result.approvedAt === null ? '' : ` (approved ${formatUtcMinute(result.approvedAt)})`}`;
    const evidence: Evidence = {
      fingerprint,
      approved_fingerprint: result.approved,
      algorithm: algorithm ?? '',
      // The event that introduced this key (later events with it repeat a pending finding).
      new_key: result.previous !== fingerprint,
      pending_approval: !rejected && policy.config.require_approval,
    };
    if (result.approvedAt !== null) evidence.approved_at = new Date(result.approvedAt).toISOString();
    if (rejected) {
      evidence.rejected = true;
      if (result.rejectedAt !== null) evidence.rejected_at = new Date(result.rejectedAt).toISOString();
      const rejectedWhen = result.rejectedAt === null ? '' : ` on ${formatUtcMinute(result.rejectedAt)}`;
      // A person already said no: nothing is left to approve, so the event is blocked.
      return {
        reason: `${agentLabel(event)} presents ${newKey}, which was rejected by an administrator${rejectedWhen}; its approved key is ${oldKey}`,
        evidence,
        severity: 'critical',
        decision: 'deny',
      };
    }
    if (!policy.config.require_approval) {
      return {
        reason: `${agentLabel(event)} rotated from key ${oldKey} to ${newKey}, now approved`,
        evidence,
      };
    }
    return {
      reason: `${agentLabel(event)} presents ${newKey}, which is pending approval; its approved key is ${oldKey}`,
      evidence,
      decision: mostRestrictive(decisionForAction(policy.action), 'require_approval'),
    };
  },
};
