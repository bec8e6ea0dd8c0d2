import { z } from 'zod';
import { decisionForAction, mostRestrictive } from '../../core/decision.js';
import type { Finding, PolicyType } from '../../core/detector.js';
import type { AgentEvent } from '../../core/event.js';
import { compileGlobs, type GlobMatcher } from '../../core/glob.js';
import type { ValidatedPolicy } from '../../core/policy.js';
import type { Evidence } from '../../core/records.js';
import { LONG_RETENTION_MS, agentStateKey, type StateOp, type StateResult } from '../../core/state.js';
import { formatUtcMinute, listForEvidence, listForReason } from '../approval.js';
import { agentLabel } from '../describe.js';

/**
 * Capabilities whose addition escalates a finding to `critical` (and
 * `require_approval`). Globs, case-insensitive (`core/glob.ts`). Grouped by
 * what an agent could do with them:
 * - run arbitrary code or commands: `shell*`, `bash` (Claude Code's Bash tool), `*terminal*`,
 *   `run_*cmd*` (Cursor's run_terminal_cmd), `run_command`, `exec*`, `*:exec*`,
 *   `code_exec*`, `computer_use`, `process_spawn`;
 * - act with more privilege than its user: `sudo`, `admin*`, `*:admin`, `iam:*`;
 * - destroy data: `*_delete` (file_delete, repo_delete), `delete_*` (delete_file), `rm`, `*:delete`, `*:destroy`;
 * - read secrets: `secrets*`, `*:secrets`, `credential*`;
 * - bypass egress controls: `network_raw`.
 */
export const DEFAULT_DANGEROUS_CAPABILITIES: readonly string[] = [
  'shell*',
  'bash',
  '*terminal*',
  'run_*cmd*',
  'run_command',
  'exec*',
  '*:exec*',
  'code_exec*',
  'computer_use',
  'process_spawn',
  'sudo',
  'admin*',
  '*:admin',
  'iam:*',
  '*_delete',
  'delete_*',
  'rm',
  '*:delete',
  '*:destroy',
  'secrets*',
  '*:secrets',
  'credential*',
  'network_raw',
];

const CapabilityGlob = z.string().min(1).max(256);

export const CapabilityDriftConfigSchema = z.strictObject({
  /**
   * Capability globs whose addition escalates the finding. Giving the key
   * replaces the default list (`[]` turns escalation off); to extend the
   * defaults, use `extra_dangerous`. @default DEFAULT_DANGEROUS_CAPABILITIES
   */
  dangerous: z
    .array(CapabilityGlob)
    .max(1000)
    .default(() => [...DEFAULT_DANGEROUS_CAPABILITIES]),
  /** Globs added to `dangerous` (defaults or not), so a site can extend the list without repeating it. @default [] */
  extra_dangerous: z.array(CapabilityGlob).max(1000).default([]),
  /**
   * Whether every set seen becomes the approved one at once: one finding per
   * change. Off: the first set seen is the approved baseline, and every event
   * whose set differs from it fires until someone approves the new set. @default false
   */
  auto_approve: z.boolean().default(false),
  /** Whether a set that only lost capabilities fires (an addition always does). @default true */
  alert_on_removal: z.boolean().default(true),
});
export type CapabilityDriftConfig = z.output<typeof CapabilityDriftConfigSchema>;

interface CompiledCapabilityDrift {
  dangerous: GlobMatcher;
}

/** Sorted unique capabilities (UTF-16 code unit order, like `Array.prototype.sort`). */
export function uniqueSorted(capabilities: readonly string[]): string[] {
  return [...new Set(capabilities)].sort();
}

// A capability may itself hold a newline (the wire format only bounds its
// length); escaping "\" and newline keeps the joined form unambiguous, so
// ["a\nb"] and ["a", "b"] never look alike.
const escapeCapability = (c: string): string => c.replaceAll('\\', '\\\\').replaceAll('\n', '\\n');
const unescapeCapability = (c: string): string => c.replace(/\\([\\n])/g, (_, ch: string) => (ch === 'n' ? '\n' : '\\'));

/**
 * The canonical form of a capability set stored by `value_snapshot`: sorted
 * unique capabilities, surrounding white space trimmed (so `" shell_execute"`
 * is `shell_execute`, dangerous included; empty names dropped), joined with
 * "\n" ("\" and newline inside a capability escaped as `\\` and `\n`). The
 * empty set is "". Two events with the same set in any order or with repeats
 * give the same string.
 */
export function canonicalCapabilities(capabilities: readonly string[]): string {
  return uniqueSorted(normaliseCapabilities(capabilities)).map(escapeCapability).join('\n');
}

/** Capabilities as they are compared: trimmed, empty names dropped. */
export function normaliseCapabilities(capabilities: readonly string[]): string[] {
  const out: string[] = [];
  for (const cap of capabilities) {
    const trimmed = cap.trim();
    if (trimmed !== '') out.push(trimmed);
  }
  return out;
}

/** Inverse of {@link canonicalCapabilities}. */
export function parseCanonicalCapabilities(value: string): string[] {
  return value === '' ? [] : value.split('\n').map(unescapeCapability);
}

/** `after` minus `before`, and `before` minus `after`, both sorted. */
export function capabilityChanges(before: readonly string[], after: readonly string[]): { added: string[]; removed: string[] } {
  const had = new Set(before);
  const has = new Set(after);
  return {
    added: uniqueSorted(after.filter((c) => !had.has(c))),
    removed: uniqueSorted(before.filter((c) => !has.has(c))),
  };
}

/** The `value_snapshot` key of an agent's capability set under a `capability_drift` policy. */
export function capabilityDriftStateKey(tenant: string, agentId: string, policyId: string): string {
  return agentStateKey(tenant, agentId, policyId, 'capabilities');
}

/**
 * `capability_drift`: an agent's capability set (events carrying
 * `capabilities`, typically `capability_change`) differs from its last
 * approved set. An added capability matching `dangerous` escalates the finding
 * to `critical` and at least `require_approval`.
 *
 * State: one `value_snapshot` per agent and policy (part `capabilities`) whose
 * value is {@link canonicalCapabilities}. The first set seen is the approved
 * baseline (no finding). Approving a pending set = setting the key's approved
 * value to that set's canonical form (`value_review`, detectors/approvals.ts).
 *
 * A set an administrator rejected is not merely pending: every event
 * presenting exactly that set fires `critical` with decision `deny`, whatever
 * the approved set (auto-approval included) — until someone approves it.
 */
export const capabilityDriftPolicy: PolicyType<CapabilityDriftConfig, CompiledCapabilityDrift> = {
  type: 'capability_drift',
  configSchema: CapabilityDriftConfigSchema,
  // AML.T0081 Modify AI Agent Configuration: an adversary (or a poisoned tool
  // or prompt) widens what an agent may do — its tools and permissions — to
  // persist or escalate; an unapproved change of the capability set is that act.
  defaultAtlas: ['AML.T0081'],

  compile(policy: ValidatedPolicy<CapabilityDriftConfig>): CompiledCapabilityDrift {
    return { dangerous: compileGlobs([...policy.config.dangerous, ...policy.config.extra_dangerous]) };
  },

  plan(event: AgentEvent, _c: CompiledCapabilityDrift, policy: ValidatedPolicy<CapabilityDriftConfig>, out: StateOp[]): void {
    // An empty list is a snapshot too (the agent lost everything); only an absent one is not.
    if (event.capabilities === undefined) return;
    out.push({
      op: 'value_snapshot',
      key: capabilityDriftStateKey(event.tenant, event.agent.id, policy.id),
      // The runtime fills in the bus position of the event.
      partition: -1,
      offset: -1,
      committedOffset: -1,
      ts: event.time,
      value: canonicalCapabilities(event.capabilities),
      autoApprove: policy.config.auto_approve,
      // The approved set must outlive a quiet weekend, or the next set is trusted on first use.
      retainMs: LONG_RETENTION_MS,
    });
  },

  decide(
    event: AgentEvent,
    results: readonly StateResult[],
    c: CompiledCapabilityDrift,
    policy: ValidatedPolicy<CapabilityDriftConfig>,
  ): Finding | null {
    const result = results[0];
    // No snapshot (no capabilities on the event), or first sight: the baseline.
    if (result?.op !== 'value_snapshot' || result.approved === null || event.capabilities === undefined) return null;
    const value = canonicalCapabilities(event.capabilities);
    // Checked before the approved set: an auto-approved set stays rejected.
    const rejected = result.rejected !== null && value === result.rejected;
    if (!rejected && value === result.approved) return null;

    const approved = parseCanonicalCapabilities(result.approved);
    const current = uniqueSorted(normaliseCapabilities(event.capabilities));
    const { added, removed } = capabilityChanges(approved, current);
    if (!rejected && added.length === 0 && !policy.config.alert_on_removal) return null;
    const dangerousAdded = added.filter((cap) => c.dangerous(cap));

    const changes: string[] = [];
    if (added.length > 0) changes.push(`gained ${listForReason(added)}`);
    if (removed.length > 0) changes.push(`lost ${listForReason(removed)}`);
    const when = result.approvedAt === null ? '' : ` (approved ${formatUtcMinute(result.approvedAt)})`;
    const rejectedWhen = result.rejectedAt === null ? '' : ` on ${formatUtcMinute(result.rejectedAt)}`;
    // No changes: a rejected set that is also the approved one.
    let reason = changes.length > 0 ? `${agentLabel(event)} ${changes.join(' and ')} since its approved set${when}` : `${agentLabel(event)} presents its approved capability set${when}`;
    if (rejected) reason += `, a change rejected by an administrator${rejectedWhen}`;
    if (dangerousAdded.length > 0) reason += `; dangerous: ${listForReason(dangerousAdded)}`;

    const evidence: Evidence = {
      added: listForEvidence(added),
      removed: listForEvidence(removed),
      dangerous_added: listForEvidence(dangerousAdded),
      added_count: added.length,
      removed_count: removed.length,
      dangerous_count: dangerousAdded.length,
      capability_count: current.length,
      approved_count: approved.length,
      pending_approval: !rejected && !policy.config.auto_approve,
    };
    if (result.approvedAt !== null) evidence.approved_at = new Date(result.approvedAt).toISOString();
    if (rejected) {
      evidence.rejected = true;
      if (result.rejectedAt !== null) evidence.rejected_at = new Date(result.rejectedAt).toISOString();
      // A person already said no: nothing is left to approve, so the event is blocked.
      return { reason, evidence, severity: 'critical', decision: 'deny' };
    }
    if (dangerousAdded.length === 0) return { reason, evidence };
    // Escalation: a dangerous addition is critical and waits for a person,
    // unless the policy already blocks (deny is more restrictive still).
    return {
      reason,
      evidence,
      severity: 'critical',
      decision: mostRestrictive(decisionForAction(policy.action), 'require_approval'),
    };
  },
};
