import { describe, expect, it } from 'vitest';
import { parsePolicyDocument } from '../../core/policy.js';
import { defaultRegistry } from '../registry.js';
import { makeEvent } from '../../test/support/events.js';
import { engineFor, judgeEach } from '../../test/support/policies.js';
import { egressDomain } from './unauthorized-api.js';

function engine(config: Record<string, unknown>) {
  return engineFor({ policies: [{ id: 'egress', type: 'unauthorized_api', config }] });
}

describe('unauthorized_api', () => {
  const allowed = { allowed_domains: ['*.openai.com', 'api.anthropic.com'] };

  it('fires for an unapproved domain', () => {
    const [o] = judgeEach(engine(allowed), [
      makeEvent({ type: 'network_egress', network: { domain: 'paste.exfil-drop.net', method: 'post', url: 'https://paste.exfil-drop.net/upload' } }),
    ]);
    expect(o!.verdicts).toHaveLength(1);
    expect(o!.verdicts[0]!.reason).toBe('agent-1 (claude-code) called POST paste.exfil-drop.net, which is not an approved domain');
    expect(o!.verdicts[0]!.evidence).toMatchObject({ domain: 'paste.exfil-drop.net', method: 'POST' });
  });

  it('allows subdomains of a wildcard and exact names', () => {
    const outcomes = judgeEach(engine(allowed), [
      makeEvent({ network: { domain: 'api.openai.com' } }),
      makeEvent({ network: { domain: 'API.ANTHROPIC.COM.' } }),
      makeEvent({ network: { url: 'https://files.openai.com:443/v1' } }),
    ]);
    expect(outcomes.every((o) => o.verdicts.length === 0)).toBe(true);
  });

  it('a wildcard does not cover the apex or look-alike domains', () => {
    const outcomes = judgeEach(engine(allowed), [
      makeEvent({ network: { domain: 'openai.com' } }),
      makeEvent({ network: { domain: 'api.openai.com.evil.io' } }),
      makeEvent({ network: { domain: 'notopenai.com' } }),
    ]);
    expect(outcomes.map((o) => o.verdicts.length)).toEqual([1, 1, 1]);
  });

  it('finds the domain in network.url or a URL resource, and ignores events without one', () => {
    expect(egressDomain(makeEvent({ network: { url: 'https://x.example.org:8443/a' } }))).toBe('x.example.org');
    expect(egressDomain(makeEvent({ resource: 'https://y.example.org/path' }))).toBe('y.example.org');
    expect(egressDomain(makeEvent({ resource: '/etc/passwd' }))).toBeUndefined();
    expect(judgeEach(engine(allowed), [makeEvent({ resource: '/etc/passwd' })])[0]!.verdicts).toHaveLength(0);
  });

  it('is inactive with an empty list', () => {
    expect(judgeEach(engine({}), [makeEvent({ network: { domain: 'anything.io' } })])[0]!.verdicts).toHaveLength(0);
  });

  it.each([
    [{ allowed_domains: ['http://x.com'] }, 'policies[0].config.allowed_domains[0]'],
    [{ allowed_domains: ['a b.com'] }, 'policies[0].config.allowed_domains[0]'],
    [{ domains: [] }, 'policies[0].config'],
  ])('rejects bad config %j', (config, path) => {
    const r = parsePolicyDocument({ version: 1, policies: [{ id: 'p', type: 'unauthorized_api', config }] }, defaultRegistry);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.problems.map((p) => p.path)).toContain(path);
  });
});
