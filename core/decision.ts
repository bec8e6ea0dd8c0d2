/** Per-policy actions an admin can choose. */
export const PolicyActions = ['alert', 'block', 'require_approval', 'throttle'] as const;
export type PolicyAction = (typeof PolicyActions)[number];

/** Decisions, from least to most restrictive. */
export const Decisions = ['allow', 'throttle', 'require_approval', 'deny'] as const;
export type Decision = (typeof Decisions)[number];

export const Severities = ['low', 'medium', 'high', 'critical'] as const;
export type Severity = (typeof Severities)[number];

export type EnforcementMode = 'monitoring' | 'strict';

const rank: Record<Decision, number> = { allow: 0, throttle: 1, require_approval: 2, deny: 3 };
const severityRank: Record<Severity, number> = { low: 0, medium: 1, high: 2, critical: 3 };

/** The decision a fired policy asks for: `block` means deny, `alert` lets the event through. */
export function decisionForAction(action: PolicyAction): Decision {
  switch (action) {
    case 'block':
      return 'deny';
    case 'require_approval':
      return 'require_approval';
    case 'throttle':
      return 'throttle';
    case 'alert':
      return 'allow';
  }
}

/** Most restrictive of two decisions: deny > require_approval > throttle > allow. */
export function mostRestrictive(a: Decision, b: Decision): Decision {
  return rank[a] >= rank[b] ? a : b;
}

export function maxSeverity(a: Severity, b: Severity): Severity {
  return severityRank[a] >= severityRank[b] ? a : b;
}

export function severityAtLeast(s: Severity, floor: Severity): boolean {
  return severityRank[s] >= severityRank[floor];
}

/**
 * Effective decision under the global mode: monitoring never blocks, so the
 * effective decision is `allow` while `would_decide` keeps what strict mode would do.
 */
export function effectiveDecision(wouldDecide: Decision, mode: EnforcementMode): Decision {
  return mode === 'monitoring' ? 'allow' : wouldDecide;
}
