import { describe, expect, it } from 'vitest';
import { parsePolicyDocument } from '../../core/policy.js';
import { defaultRegistry } from '../registry.js';
import { makeEvent } from '../../test/support/events.js';
import { engineFor, judgeEach } from '../../test/support/policies.js';

function engine(config: Record<string, unknown>) {
  return engineFor({ policies: [{ id: 'agents', type: 'unknown_agent', action: 'block', config }] });
}

describe('unknown_agent', () => {
  it('fires for a name not on the list, with a readable reason', () => {
    const [o] = judgeEach(engine({ allowed_agents: ['claude-code', 'cursor'] }), [makeEvent({ agent: { id: 'a-13', name: 'shadow-gpt' } })]);
    expect(o!.verdicts).toHaveLength(1);
    expect(o!.verdicts[0]!.reason).toBe('agent a-13 identifies as "shadow-gpt", which is not an allowed agent (claude-code, cursor)');
    expect(o!.verdicts[0]!.would_decide).toBe('deny');
    expect(o!.verdicts[0]!.decision).toBe('allow'); // monitoring mode
  });

  it('does not fire for allowed names, case-insensitively and with wildcards', () => {
    const e = engine({ allowed_agents: ['claude-code', 'copilot-*'] });
    const outcomes = judgeEach(e, [
      makeEvent({ agent: { id: 'a', name: 'Claude-Code' } }),
      makeEvent({ agent: { id: 'b', name: 'copilot-chat' } }),
    ]);
    expect(outcomes.every((o) => o.verdicts.length === 0)).toBe(true);
  });

  it('is inactive with an empty list', () => {
    expect(judgeEach(engine({}), [makeEvent({ agent: { id: 'x', name: 'anything' } })])[0]!.verdicts).toHaveLength(0);
  });

  it('fires for an unnamed agent unless allow_unnamed', () => {
    const unnamed = makeEvent({ agent: { id: 'nameless' } });
    expect(judgeEach(engine({ allowed_agents: ['cursor'] }), [unnamed])[0]!.verdicts).toHaveLength(1);
    expect(judgeEach(engine({ allowed_agents: ['cursor'], allow_unnamed: true }), [unnamed])[0]!.verdicts).toHaveLength(0);
  });

  it.each([
    [{ allowed_agents: 'cursor' }, 'policies[0].config.allowed_agents'],
    [{ allowed_agents: [''] }, 'policies[0].config.allowed_agents[0]'],
    [{ allow: ['x'] }, 'policies[0].config'],
  ])('rejects bad config %j', (config, path) => {
    const r = parsePolicyDocument({ version: 1, policies: [{ id: 'p', type: 'unknown_agent', config }] }, defaultRegistry);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.problems.map((p) => p.path)).toContain(path);
  });
});
