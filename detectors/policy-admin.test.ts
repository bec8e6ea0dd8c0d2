import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import type { PublishedPolicyVersion } from '../core/topics.js';
import { MemoryPolicyVersionStore } from '../storage/clickhouse/policy-versions.js';
import { changedPolicyIds, PolicyAdmin, PolicyAdminError } from './policy-admin.js';
import { loadPolicyBundle } from './policy-loader.js';
import { defaultRegistry } from './registry.js';

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

const DOC = `version: 1
mode: monitoring
policies:
  - id: agents
    type: unknown_agent
    config: { allowed_agents: [cursor] }
  - id: egress
    type: unauthorized_api
    config: { allowed_domains: ["*.example.com"] }
`;

function policyFile(text: string, name = 'policies.yaml', dir?: string) {
  const folder = dir ?? mkdtempSync(path.join(tmpdir(), 'aw-admin-'));
  if (dir === undefined) dirs.push(folder);
  const file = path.join(folder, name);
  writeFileSync(file, text);
  return { path: file, text, loaded: loadPolicyBundle(file) };
}

function admin(store = new MemoryPolicyVersionStore()) {
  const published: PublishedPolicyVersion[] = [];
  let now = 1_000;
  const a = new PolicyAdmin({
    store,
    registry: defaultRegistry,
    publish: async (v) => {
      published.push(v);
    },
    logger: pino({ level: 'silent' }),
    clock: () => (now += 1000),
  });
  return { admin: a, store, published };
}

const ctx = { author: 'tester' };

describe('PolicyAdmin', () => {
  it('seeds version 1 from the file and publishes it; a restart adopts the stored version, not the file', async () => {
    const file = policyFile(DOC);
    const first = admin();
    const seeded = await first.admin.init(file);
    expect(seeded).toMatchObject({ version: 1, action: 'seed', author: 'seed', changed: ['agents', 'egress'] });
    expect(first.published.map((p) => p.version)).toEqual([1]);
    await first.admin.toggle('egress', false, ctx);

    const restarted = admin(first.store);
    const adopted = await restarted.admin.init(file);
    expect(adopted.version).toBe(2);
    expect(restarted.admin.getPolicy('egress')?.enabled).toBe(false);
    expect(restarted.published.map((p) => p.version)).toEqual([2]);
  });

  it('a file edited while the process was down becomes the next version', async () => {
    const file = policyFile(DOC);
    const first = admin();
    await first.admin.init(file);
    const edited = policyFile(DOC.replace('mode: monitoring', 'mode: strict'), 'policies.yaml', path.dirname(file.path));
    const restarted = admin(first.store);
    const record = await restarted.admin.init(edited);
    expect(record).toMatchObject({ version: 2, action: 'file', mode: 'strict', changed: [] });
    // Unchanged file later: nothing new.
    expect((await restarted.admin.fromFile(edited)).version).toBe(2);
  });

  it('keeps pack includes as references and takes in relative includes', async () => {
    const packed = admin();
    await packed.admin.init(policyFile('version: 1\ninclude: [pack:read_only]\npolicies: []\n'));
    expect(packed.admin.source.include).toEqual(['pack:read_only']);
    expect(packed.admin.listPolicies().every((p) => p.origin === 'include')).toBe(true);

    const dir = mkdtempSync(path.join(tmpdir(), 'aw-admin-'));
    dirs.push(dir);
    writeFileSync(path.join(dir, 'team.yaml'), 'version: 1\npolicies:\n  - { id: team-egress, type: unauthorized_api, config: { allowed_domains: [a.example.com] } }\n');
    const relative = admin();
    await relative.admin.init(policyFile('version: 1\ninclude: [./team.yaml]\npolicies: []\n', 'main.yaml', dir));
    expect(relative.admin.source.include).toBeUndefined();
    expect(relative.admin.listPolicies().map((p) => [p.id, p.origin])).toEqual([['team-egress', 'document']]);
  });

  it('a policy from a pack can be overridden and toggled but not deleted', async () => {
    const a = admin();
    await a.admin.init(policyFile('version: 1\ninclude: [pack:read_only]\npolicies: []\n'));
    const id = a.admin.listPolicies()[0]!.id;
    await a.admin.toggle(id, false, ctx);
    expect(a.admin.getPolicy(id)?.enabled).toBe(false);
    expect(a.admin.source.policies).toEqual([{ id, enabled: false }]);
    await expect(a.admin.remove(id, ctx)).rejects.toMatchObject({ code: 'conflict' });
    await a.admin.patch(id, { severity: 'critical' }, ctx);
    expect(a.admin.getPolicy(id)).toMatchObject({ severity: 'critical', origin: 'document' });
  });

  it('refuses invalid changes with paths and keeps the version in force', async () => {
    const a = admin();
    await a.admin.init(policyFile(DOC));
    const error = await a.admin.create({ id: 'bad', type: 'rate_spike', config: { window_minutes: 0 } }, ctx).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(PolicyAdminError);
    expect((error as PolicyAdminError).problems[0]?.path).toBe('policies[2].config.window_minutes');
    await expect(a.admin.update('missing', { type: 'unknown_agent' }, ctx)).rejects.toMatchObject({ code: 'not_found' });
    await expect(a.admin.replace('version: 1\npolicies: [', ctx)).rejects.toMatchObject({ code: 'invalid' });
    await expect(a.admin.replace({ version: 1, include: ['../../etc/passwd'] }, ctx)).rejects.toMatchObject({ code: 'invalid' });
    expect(a.admin.version.version).toBe(1);
    expect(a.published).toHaveLength(1);
  });

  it('serialises concurrent changes into consecutive versions and honours expected_version', async () => {
    const a = admin();
    await a.admin.init(policyFile(DOC));
    const results = await Promise.all([
      a.admin.toggle('egress', false, ctx),
      a.admin.setMode('strict', ctx),
      a.admin.toggle('agents', false, ctx),
    ]);
    expect(results.map((r) => r.version)).toEqual([2, 3, 4]);
    expect(a.admin.document.mode).toBe('strict');
    await expect(a.admin.setMode('monitoring', { ...ctx, expected_version: 3 })).rejects.toMatchObject({ code: 'stale' });
    expect((await a.admin.setMode('monitoring', { ...ctx, expected_version: 4 })).version).toBe(5);
  });

  it('rolls back the document or one policy as new versions, and lists a policy’s history', async () => {
    const a = admin();
    await a.admin.init(policyFile(DOC));
    await a.admin.patch('egress', { severity: 'high' }, ctx);
    await a.admin.remove('egress', ctx);
    await a.admin.setMode('strict', ctx);
    const back = await a.admin.rollbackPolicy('egress', 2, ctx);
    expect(back).toMatchObject({ version: 5, action: 'rollback', changed: ['egress'] });
    expect(a.admin.getPolicy('egress')?.severity).toBe('high');
    expect(a.admin.document.mode).toBe('strict');
    const whole = await a.admin.rollback(1, ctx);
    expect(whole.version).toBe(6);
    expect(a.admin.document.mode).toBe('monitoring');
    expect(a.admin.getPolicy('egress')?.severity).toBe('medium');
    const history = await a.admin.policyHistory('egress', 10);
    expect(history.map((h) => [h.version.version, h.version.action, h.policy?.severity ?? null])).toEqual([
      [6, 'rollback', 'medium'],
      [5, 'rollback', 'high'],
      [3, 'delete', null],
      [2, 'update', 'high'],
      [1, 'seed', 'medium'],
    ]);
    await expect(a.admin.rollback(99, ctx)).rejects.toMatchObject({ code: 'not_found' });
  });

  it('adopts a newer version stored by another API process before changing anything', async () => {
    const file = policyFile(DOC);
    const one = admin();
    await one.admin.init(file);
    const two = admin(one.store);
    await two.admin.init(file);
    await one.admin.setMode('strict', ctx);
    const next = await two.admin.toggle('egress', false, ctx);
    expect(next.version).toBe(3);
    expect(two.admin.document.mode).toBe('strict');
  });
});

describe('changedPolicyIds', () => {
  it('lists added, removed and changed ids', () => {
    const policy = (id: string, severity = 'medium') => ({ id, type: 't', enabled: true, severity, action: 'alert', config: {} }) as never;
    expect(changedPolicyIds(null, { version: 1, mode: 'monitoring', timezone: 'UTC', policies: [policy('a')] })).toEqual(['a']);
    expect(
      changedPolicyIds(
        { version: 1, mode: 'monitoring', timezone: 'UTC', policies: [policy('a'), policy('b'), policy('c')] },
        { version: 1, mode: 'strict', timezone: 'UTC', policies: [policy('a'), policy('b', 'high'), policy('d')] },
      ),
    ).toEqual(['b', 'c', 'd']);
  });
});
