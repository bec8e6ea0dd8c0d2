import { validateEvent } from '../core/event.js';
import { MemoryStateStore } from './state/memory/memory-store.js';
import { evaluateBatch, type PolicyEngine } from './engine.js';

/** What one event would get, judged on fresh state. */
export interface DryRunOutcome {
  decision: string;
  would_decide: string;
  mode: string;
  evaluated: string[];
  matched: {
    policy_id: string;
    policy_type: string;
    severity: string;
    action: string;
    decision: string;
    would_decide: string;
    reason: string;
    evidence: unknown;
    exception: string;
  }[];
  state: 'fresh';
}

export type DryRunInput = { ok: true; outcome: DryRunOutcome } | { ok: false; reason: string };

/**
 * Judges one event with `engine` on a fresh, throw-away state store: nothing
 * the pipeline keeps (windows, approvals, audit chain, verdicts) is read or
 * changed. Stateful policies therefore judge the event as the agent's first.
 */
export async function dryRunEvent(engine: PolicyEngine, input: unknown): Promise<DryRunInput> {
  const validated = validateEvent(input);
  if (!validated.ok) return { ok: false, reason: validated.reason };
  const event = validated.event;
  const state = new MemoryStateStore();
  try {
    const outcome = await evaluateBatch(engine, state, [event]);
    const first = outcome.outcomes[0];
    const evaluated: string[] = [];
    const applicable: Parameters<PolicyEngine['applicable']>[1] = [];
    engine.applicable(event, applicable);
    for (const p of applicable) evaluated.push(p.policy.id);
    return {
      ok: true,
      outcome: {
        decision: first?.decision ?? 'allow',
        would_decide: first?.would_decide ?? 'allow',
        mode: engine.mode,
        evaluated,
        matched: outcome.verdicts.map((v) => ({
          policy_id: v.policy_id,
          policy_type: v.policy_type,
          severity: v.severity,
          action: v.action,
          decision: v.decision,
          would_decide: v.would_decide,
          reason: v.reason,
          evidence: v.evidence,
          exception: v.exception,
        })),
        state: 'fresh',
      },
    };
  } finally {
    await state.close();
  }
}
