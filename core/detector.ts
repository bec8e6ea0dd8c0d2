import type { z } from 'zod';
import type { Decision, Severity } from './decision.js';
import type { AgentEvent } from './event.js';
import type { ValidatedPolicy } from './policy.js';
import type { Evidence } from './records.js';
import type { StateOp, StateResult } from './state.js';

/** Document-wide settings a policy type may need when compiling its config. */
export interface CompileContext {
  /** The document's default IANA time zone. */
  timezone: string;
}

/** What a policy's `decide` reports when it fires. */
export interface Finding {
  /** A sentence a person can read: "agent-7 made 412 api_calls in 5 min; its baseline is 38 ± 6". */
  reason: string;
  evidence: Evidence;
  /** Overrides the policy's decision for this finding (e.g. `throttle`); default: from the policy's action. */
  decision?: Decision;
  /** Overrides the policy's severity for this finding (escalation). */
  severity?: Severity;
  late?: boolean;
}

/**
 * A policy type: its config schema and three pure functions. `plan` and
 * `decide` never do IO; the runtime executes the planned state operations for
 * a whole batch in one round trip between them.
 */
export interface PolicyType<Config, Compiled> {
  type: string;
  /** Validates and defaults `config`; strict, so a misspelt key is an error. */
  configSchema: z.ZodType<Config>;
  /** MITRE ATLAS techniques put on findings when the policy names none. */
  defaultAtlas: readonly string[];
  /** Precomputes matchers etc. once per policy document. */
  compile(policy: ValidatedPolicy<Config>, ctx: CompileContext): Compiled;
  /** Appends the state operations this event needs to `out`. Stateless types omit it. */
  plan?(event: AgentEvent, compiled: Compiled, policy: ValidatedPolicy<Config>, out: StateOp[]): void;
  /** Judges the event given the results of its planned operations (in plan order). */
  decide(event: AgentEvent, results: readonly StateResult[], compiled: Compiled, policy: ValidatedPolicy<Config>): Finding | null;
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- a registry holds types of many configs
export type AnyPolicyType = PolicyType<any, any>;
