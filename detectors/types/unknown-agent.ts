import { z } from 'zod';
import type { PolicyType } from '../../core/detector.js';
import { compileGlobs, type GlobMatcher } from '../../core/glob.js';

export const UnknownAgentConfigSchema = z.strictObject({
  /** Canonical agent names (`agent.name`) allowed to act; wildcards allowed. Empty: the policy is inactive. @default [] */
  allowed_agents: z.array(z.string().min(1).max(256)).max(10_000).default([]),
  /** Whether an event whose agent reports no `name` passes. @default false */
  allow_unnamed: z.boolean().default(false),
});
export type UnknownAgentConfig = z.output<typeof UnknownAgentConfigSchema>;

interface CompiledUnknownAgent {
  active: boolean;
  allowed: GlobMatcher;
}

/** `unknown_agent`: the acting agent's name is not on the allowed list. */
export const unknownAgentPolicy: PolicyType<UnknownAgentConfig, CompiledUnknownAgent> = {
  type: 'unknown_agent',
  configSchema: UnknownAgentConfigSchema,
  // AML.T0010 ML Supply Chain Compromise: an unvetted agent product acting inside the estate.
  defaultAtlas: ['AML.T0010'],

  compile(policy) {
    return { active: policy.config.allowed_agents.length > 0, allowed: compileGlobs(policy.config.allowed_agents) };
  },

  decide(event, _results, c, policy) {
    if (!c.active) return null;
    const name = event.agent.name;
    if (name === undefined) {
      if (policy.config.allow_unnamed) return null;
      return {
        reason: `agent ${event.agent.id} reports no agent.name, so it cannot be matched against the allowed agents`,
        evidence: { agent_id: event.agent.id, agent_name: '' },
      };
    }
    if (c.allowed(name)) return null;
    return {
      reason: `agent ${event.agent.id} identifies as "${name}", which is not an allowed agent (${policy.config.allowed_agents.join(', ')})`,
      evidence: { agent_id: event.agent.id, agent_name: name },
    };
  },
};
