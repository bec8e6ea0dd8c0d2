import type { AgentEvent } from '../../core/event.js';
import type { PolicyDocument } from '../../core/policy.js';
import { PolicyEngine, evaluateBatchSync, type BatchOutcome } from '../../detectors/engine.js';
import { parsePolicyText } from '../../detectors/policy-loader.js';
import { defaultRegistry } from '../../detectors/registry.js';
import { MemoryStateStore } from '../../detectors/state/memory/memory-store.js';

/** Builds an engine from a policy document given as an object (validated like a file). */
export function engineFor(doc: Record<string, unknown>): PolicyEngine {
  const document: PolicyDocument = parsePolicyText(JSON.stringify({ version: 1, ...doc }), 'test');
  return new PolicyEngine(document, defaultRegistry);
}

/** Runs events through an engine on a fresh (or given) memory store, one event per batch. */
export function judgeEach(engine: PolicyEngine, events: readonly AgentEvent[], store = new MemoryStateStore()): BatchOutcome[] {
  return events.map((e) => evaluateBatchSync(engine, store, [e]));
}
