import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { readdirSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { PolicyEngine } from './engine.js';
import { PolicyValidationError, builtinPacksDir, loadPolicyBundle, loadPolicyFile, parsePolicyText } from './policy-loader.js';
import { defaultRegistry } from './registry.js';
import { makeEvent } from '../test/support/events.js';
import { judgeEach } from '../test/support/policies.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'aw-include-'));
  await mkdir(path.join(dir, 'packs'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const write = (name: string, text: string) => writeFile(path.join(dir, name), text);
const problemsOf = (load: () => unknown): string[] => {
  try {
    load();
    return [];
  } catch (error) {
    expect(error).toBeInstanceOf(PolicyValidationError);
    return (error as PolicyValidationError).problems.map((p) => `${p.path}: ${p.message}`);
  }
};

const PACK_A = `version: 1
policies:
  - { id: a.names, type: unknown_agent, config: { allowed_agents: [cursor] } }
  - { id: a.egress, type: unauthorized_api, action: block, config: { allowed_domains: [ok.com] } }
`;

describe('include', () => {
  it('merges pack policies first, then the document; mode and timezone come from the top document; files are listed for watching', async () => {
    await write('packs/a.yaml', PACK_A);
    await write('top.yaml', 'version: 1\nmode: strict\ntimezone: Europe/Berlin\ninclude: [packs/a.yaml]\npolicies:\n  - { id: own, type: off_hours }\n');
    const { document, files } = loadPolicyBundle(path.join(dir, 'top.yaml'));
    expect(document.mode).toBe('strict');
    expect(document.timezone).toBe('Europe/Berlin');
    expect(document.policies.map((p) => p.id)).toEqual(['a.names', 'a.egress', 'own']);
    expect(files).toEqual([path.join(dir, 'top.yaml'), path.join(dir, 'packs/a.yaml')]);
  });

  it('a policy with the id of a pack policy replaces it; `{ id, enabled: false }` switches one off; `{ id, exceptions }` adds exceptions', async () => {
    await write('packs/a.yaml', PACK_A);
    await write(
      'top.yaml',
      `version: 1
include: [packs/a.yaml]
policies:
  - { id: a.egress, type: unauthorized_api, action: alert, config: { allowed_domains: [other.com] } }
  - { id: a.names, enabled: false }
`,
    );
    const doc = loadPolicyFile(path.join(dir, 'top.yaml'));
    expect(doc.policies.map((p) => [p.id, p.enabled, p.action])).toEqual([
      ['a.names', false, 'alert'],
      ['a.egress', true, 'alert'],
    ]);
    expect(doc.policies[1]!.config).toEqual({ allowed_domains: ['other.com'] });
    expect(new PolicyEngine(doc, defaultRegistry).policies.map((p) => p.policy.id)).toEqual(['a.egress']);

    await write('top.yaml', 'version: 1\ninclude: [packs/a.yaml]\npolicies:\n  - id: a.egress\n    exceptions: [{ agents: [ops-*], reason: backfill, approved_by: ciso }]\n');
    const patched = loadPolicyFile(path.join(dir, 'top.yaml'));
    expect(patched.policies[1]).toMatchObject({ id: 'a.egress', action: 'block', exceptions: [{ id: 'a.egress/exceptions[0]', agents: ['ops-*'] }] });
  });

  it('nested includes resolve relative to the including file; a file reached twice is merged once', async () => {
    await mkdir(path.join(dir, 'packs/base'));
    await write('packs/base/common.yaml', 'version: 1\npolicies:\n  - { id: common.spike, type: rate_spike }\n');
    await write('packs/x.yaml', 'version: 1\ninclude: [base/common.yaml]\npolicies:\n  - { id: x.hours, type: off_hours }\n');
    await write('packs/y.yaml', 'version: 1\ninclude: [base/common.yaml]\npolicies:\n  - { id: y.names, type: unknown_agent }\n');
    await write('top.yaml', 'version: 1\ninclude: [packs/x.yaml, packs/y.yaml]\n');
    const { document, files } = loadPolicyBundle(path.join(dir, 'top.yaml'));
    expect(document.policies.map((p) => p.id)).toEqual(['common.spike', 'x.hours', 'y.names']);
    expect(files.map((f) => path.relative(dir, f))).toEqual(['top.yaml', 'packs/x.yaml', 'packs/base/common.yaml', 'packs/y.yaml']);
  });

  it('errors name the included file and the path inside it', async () => {
    await write('packs/hipaa.yaml', 'version: 1\npolicies:\n  - { id: h.ok, type: off_hours }\n  - { id: h.bad, type: rate_spike, config: { window_minutes: 0 } }\n');
    await write('top.yaml', 'version: 1\ninclude: [packs/hipaa.yaml]\n');
    expect(problemsOf(() => loadPolicyFile(path.join(dir, 'top.yaml')))[0]).toMatch(/^packs\/hipaa\.yaml: policies\[1\]\.config\.window_minutes: /);

    await write('packs/hipaa.yaml', 'version: 1\npolicies:\n  - { id: h.ok, type: off_hours\n');
    expect(problemsOf(() => loadPolicyFile(path.join(dir, 'top.yaml')))[0]).toMatch(/^packs\/hipaa\.yaml: line \d+, column \d+: /);

    await write('packs/hipaa.yaml', 'version: 1\nmode: strict\n');
    expect(problemsOf(() => loadPolicyFile(path.join(dir, 'top.yaml')))).toEqual(['packs/hipaa.yaml: mode: only the top document sets mode; remove it from the included file']);
  });

  it('detects cycles, missing files, conflicting packs and patches of unknown ids', async () => {
    await write('packs/p.yaml', 'version: 1\ninclude: [q.yaml]\n');
    await write('packs/q.yaml', 'version: 1\ninclude: [p.yaml]\n');
    await write('top.yaml', 'version: 1\ninclude: [packs/p.yaml]\n');
    expect(problemsOf(() => loadPolicyFile(path.join(dir, 'top.yaml')))).toEqual([
      'packs/q.yaml: include[0]: include cycle: packs/p.yaml → packs/q.yaml → packs/p.yaml',
    ]);

    await write('top.yaml', 'version: 1\ninclude: [packs/missing.yaml]\n');
    expect(problemsOf(() => loadPolicyFile(path.join(dir, 'top.yaml')))[0]).toMatch(/^include\[0\]: cannot read packs\/missing\.yaml: ENOENT/);

    await write('packs/a.yaml', PACK_A);
    await write('packs/a2.yaml', PACK_A);
    await write('top.yaml', 'version: 1\ninclude: [packs/a.yaml, packs/a2.yaml]\n');
    expect(problemsOf(() => loadPolicyFile(path.join(dir, 'top.yaml')))[0]).toBe(
      'include[1]: policy id "a.names" is defined by both packs/a.yaml and packs/a2.yaml; override it in this document to choose',
    );

    await write('top.yaml', 'version: 1\ninclude: [packs/a.yaml]\npolicies:\n  - { id: nope, enabled: false }\n');
    expect(problemsOf(() => loadPolicyFile(path.join(dir, 'top.yaml')))[0]).toMatch(/^policies\[0\]\.type: required: "nope" is not a policy of an included pack/);
  });

  it('text without a location may include built-in packs only', () => {
    expect(problemsOf(() => parsePolicyText('version: 1\ninclude: [packs/a.yaml]\n', 'api'))[0]).toMatch(/^include\[0\]: "packs\/a\.yaml": a document that is not read from a file may only include built-in packs/);
    expect(problemsOf(() => parsePolicyText('version: 1\ninclude: ["pack:../etc"]\n', 'api'))[0]).toMatch(/^include\[0\]: "pack:\.\.\/etc" is not a pack name/);
    expect(parsePolicyText('version: 1\ninclude: ["pack:strict"]\n', 'api').policies.map((p) => p.id)).toContain('strict.dangerous-shell');
  });
});

describe('shipped packs', () => {
  const packs = readdirSync(builtinPacksDir())
    .filter((f) => f.endsWith('.yaml'))
    .sort();

  it('are the documented ones', () => {
    expect(packs).toEqual(['hipaa.yaml', 'permissive.yaml', 'read_only.yaml', 'security.yaml', 'soc2.yaml', 'strict.yaml']);
  });

  it.each(packs)('%s parses with the registered policy types, and every id starts with the pack name', (file) => {
    const doc = loadPolicyFile(path.join(builtinPacksDir(), file));
    expect(doc.policies.length).toBeGreaterThan(0);
    const name = file.replace(/\.yaml$/, '');
    for (const p of doc.policies) expect(p.id.startsWith(`${name}.`)).toBe(true);
    expect(() => new PolicyEngine(doc, defaultRegistry)).not.toThrow();
  });

  it('pack:strict judges as documented', () => {
    const engine = new PolicyEngine(parsePolicyText('version: 1\nmode: strict\ninclude: ["pack:strict"]\n', 'test'), defaultRegistry);
    const decide = (action: string, resource: string) =>
      judgeEach(engine, [makeEvent({ type: action === 'shell_execute' ? 'tool_call' : 'resource_access', action, resource })])[0]!.outcomes[0]!.decision;
    expect(decide('shell_execute', 'rm -rf /')).toBe('deny');
    expect(decide('shell_execute', 'ls -la')).toBe('allow');
    expect(decide('file_read', '/etc/passwd')).toBe('deny');
    expect(decide('file_read', '/home/dev/.ssh/id_rsa')).toBe('deny');
    expect(decide('file_write', '/workspace/app/main.ts')).toBe('allow');
    expect(decide('file_write', '/usr/local/bin/tool')).toBe('deny');
  });

  it('a document including all of them, with overrides by id, compiles', async () => {
    await write(
      'top.yaml',
      `version: 1
mode: strict
timezone: America/New_York
include: [${packs.map((f) => `"pack:${f.replace(/\.yaml$/, '')}"`).join(', ')}]
policies:
  - { id: strict.rate-limit, type: rate_limit, action: throttle, config: { per_minute: 10 } }
  - { id: read_only.shell, enabled: false }
  - id: security.dangerous-shell
    exceptions: [{ id: sre-cleanup, agents: [sre-bot], reason: scheduled cleanup, approved_by: sre-lead, expires: "2027-01-01T00:00:00Z" }]
`,
    );
    const { document, files } = loadPolicyBundle(path.join(dir, 'top.yaml'));
    expect(files).toHaveLength(1 + packs.length);
    expect(document.timezone).toBe('America/New_York');
    const byId = new Map(document.policies.map((p) => [p.id, p]));
    expect(byId.get('strict.rate-limit')?.config).toMatchObject({ per_minute: 10 });
    expect(byId.get('read_only.shell')?.enabled).toBe(false);
    expect(byId.get('security.dangerous-shell')?.exceptions?.[0]?.id).toBe('sre-cleanup');
    const engine = new PolicyEngine(document, defaultRegistry);
    expect(engine.policies.some((p) => p.policy.id === 'read_only.shell')).toBe(false);
    expect(engine.policies.find((p) => p.policy.id === 'security.dangerous-shell')?.exceptions).toHaveLength(1);
  });
});
