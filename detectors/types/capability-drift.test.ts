import { describe, expect, it } from 'vitest';
import type { AgentEventInput } from '../../core/event.js';
import { parsePolicyDocument, type ValidatedPolicy } from '../../core/policy.js';
import type { StateOp, ValueSnapshotResult } from '../../core/state.js';
import { parsePolicyText } from '../policy-loader.js';
import { defaultRegistry } from '../registry.js';
import { MemoryStateStore } from '../state/memory/memory-store.js';
import { makeEvent } from '../../test/support/events.js';
import { engineFor, judgeEach } from '../../test/support/policies.js';
import {
  DEFAULT_DANGEROUS_CAPABILITIES,
  canonicalCapabilities,
  capabilityDriftPolicy,
  capabilityDriftStateKey,
  parseCanonicalCapabilities,
  type CapabilityDriftConfig,
} from './capability-drift.js';

const APPROVED_AT = Date.UTC(2026, 10, 20, 9, 14, 30);
const T0 = Date.UTC(2026, 10, 24, 10, 0, 0);

function policyOf(config: Record<string, unknown>, extra: Record<string, unknown> = {}): ValidatedPolicy<CapabilityDriftConfig> {
  const doc = parsePolicyText(JSON.stringify({ version: 1, policies: [{ id: 'drift', type: 'capability_drift', ...extra, config }] }));
  return doc.policies[0] as ValidatedPolicy<CapabilityDriftConfig>;
}

const REJECTED_AT = Date.UTC(2026, 10, 24, 9, 41, 10);

/** decide() alone, against a given approved set (and a rejected one): no store involved. */
function judgeAgainst(
  approved: readonly string[],
  current: readonly string[],
  config: Record<string, unknown> = {},
  extra: Record<string, unknown> = {},
  rejected: readonly string[] | null = null,
) {
  const policy = policyOf(config, extra);
  const compiled = capabilityDriftPolicy.compile(policy, { timezone: 'UTC' });
  const event = capabilityEvent(current, { agent: { id: 'agent-7', name: 'cursor' } });
  const result: ValueSnapshotResult = {
    op: 'value_snapshot',
    approved: canonicalCapabilities(approved),
    previous: canonicalCapabilities(approved),
    approvedAt: APPROVED_AT,
    rejected: rejected === null ? null : canonicalCapabilities(rejected),
    rejectedAt: rejected === null ? null : REJECTED_AT,
  };
  return capabilityDriftPolicy.decide(event, [result], compiled, policy);
}

function capabilityEvent(capabilities: readonly string[] | undefined, overrides: Partial<AgentEventInput> = {}) {
  return makeEvent({ type: 'capability_change', time: T0, ...(capabilities === undefined ? {} : { capabilities: [...capabilities] }), ...overrides });
}

function driftEngine(config: Record<string, unknown> = {}, extra: Record<string, unknown> = {}, mode = 'strict') {
  return engineFor({ mode, policies: [{ id: 'drift', type: 'capability_drift', severity: 'medium', ...extra, config }] });
}

const BASE = ['file_read', 'file_write', 'web_search'];

describe('capability_drift canonical form', () => {
  it('is sorted and unique, whatever the order and repeats', () => {
    expect(canonicalCapabilities(['b', 'a', 'b', 'c'])).toBe('a\nb\nc');
    expect(canonicalCapabilities(['c', 'a', 'b'])).toBe(canonicalCapabilities(['a', 'b', 'c', 'a']));
    expect(canonicalCapabilities([])).toBe('');
    expect(parseCanonicalCapabilities('')).toEqual([]);
  });

  it('keeps a capability holding a newline apart from two capabilities', () => {
    const one = canonicalCapabilities(['a\nb']);
    const two = canonicalCapabilities(['a', 'b']);
    expect(one).not.toBe(two);
    expect(parseCanonicalCapabilities(one)).toEqual(['a\nb']);
    expect(parseCanonicalCapabilities(two)).toEqual(['a', 'b']);
    const odd = ['x\\n', 'y\\', '\\\na', 'plain'];
    expect(parseCanonicalCapabilities(canonicalCapabilities(odd))).toEqual([...odd].sort());
  });

  it('plans one value_snapshot per event carrying capabilities, an empty list included', () => {
    const policy = policyOf({ auto_approve: true });
    const compiled = capabilityDriftPolicy.compile(policy, { timezone: 'UTC' });
    const ops: StateOp[] = [];
    capabilityDriftPolicy.plan!(capabilityEvent(['b', 'a'], { tenant: 'acme', agent: { id: 'agent-7' } }), compiled, policy, ops);
    capabilityDriftPolicy.plan!(capabilityEvent([]), compiled, policy, ops);
    capabilityDriftPolicy.plan!(capabilityEvent(undefined), compiled, policy, ops);
    expect(ops).toHaveLength(2);
    expect(ops[0]).toMatchObject({ op: 'value_snapshot', key: 'aw:{acme/agent-7}:drift:capabilities', value: 'a\nb', autoApprove: true, ts: T0 });
    expect(ops[1]).toMatchObject({ value: '' });
  });
});

describe('capability_drift decide', () => {
  it('reports added and removed capabilities against the approved set', () => {
    const f = judgeAgainst(BASE, ['file_write', 'web_search', 'calendar_read', 'browser']);
    expect(f).not.toBeNull();
    expect(f!.reason).toBe('agent-7 (cursor) gained browser, calendar_read and lost file_read since its approved set (approved 2026-11-20 09:14 UTC)');
    expect(f!.evidence).toEqual({
      added: 'browser, calendar_read',
      removed: 'file_read',
      dangerous_added: '',
      added_count: 2,
      removed_count: 1,
      dangerous_count: 0,
      capability_count: 4,
      approved_count: 3,
      pending_approval: true,
      approved_at: '2026-11-20T09:14:30.000Z',
    });
    // Not dangerous: the policy's own severity and action apply.
    expect(f!.severity).toBeUndefined();
    expect(f!.decision).toBeUndefined();
  });

  it('escalates a dangerous addition to critical and require_approval', () => {
    const f = judgeAgainst(BASE, [...BASE.filter((c) => c !== 'file_read'), 'shell_execute', 'admin:users']);
    expect(f!.reason).toBe(
      'agent-7 (cursor) gained admin:users, shell_execute and lost file_read since its approved set (approved 2026-11-20 09:14 UTC); dangerous: admin:users, shell_execute',
    );
    expect(f!.severity).toBe('critical');
    expect(f!.decision).toBe('require_approval');
    expect(f!.evidence).toMatchObject({ dangerous_added: 'admin:users, shell_execute', dangerous_count: 2 });
  });

  it('keeps deny when the policy blocks', () => {
    expect(judgeAgainst(BASE, [...BASE, 'sudo'], {}, { action: 'block' })!.decision).toBe('deny');
    expect(judgeAgainst(BASE, [...BASE, 'sudo'], {}, { action: 'throttle' })!.decision).toBe('require_approval');
  });

  it('matches the default dangerous globs at their boundaries, case-insensitively', () => {
    const dangerous = (cap: string) => judgeAgainst([], [cap])?.evidence.dangerous_count === 1;
    for (const cap of ['shell', 'shell_execute', 'Shell:run', 'exec', 'container:exec', 'code_execution', 'sudo', 'ADMIN', 'admin:users', 'db:admin', 'iam:roles', 'file_delete', 'repo:delete', 'stack:destroy', 'secrets:read', 'vault:secrets', 'credentials_read', 'network_raw', 'process_spawn', 'Bash', 'run_terminal_cmd', 'run_command', 'delete_file', 'rm', 'computer_use', ' shell_execute']) {
      expect(dangerous(cap), cap).toBe(true);
    }
    for (const cap of ['file_read', 'file_write', 'delete', 'repo:deleted', 'repo:delete_all', 'pseudo', 'db:administer', 'webshell', 'network', 'git_exec_hooks_info', 'sudoers_read']) {
      expect(dangerous(cap), cap).toBe(false);
    }
  });

  it('`dangerous` replaces the defaults; `extra_dangerous` extends them', () => {
    expect(judgeAgainst([], ['shell_execute'], { dangerous: [] })!.severity).toBeUndefined();
    expect(judgeAgainst([], ['shell_execute'], { dangerous: ['payments:*'] })!.severity).toBeUndefined();
    expect(judgeAgainst([], ['payments:refund'], { dangerous: ['payments:*'] })!.severity).toBe('critical');
    expect(judgeAgainst([], ['payments:refund'], { extra_dangerous: ['payments:*'] })!.severity).toBe('critical');
    expect(judgeAgainst([], ['shell_execute'], { extra_dangerous: ['payments:*'] })!.severity).toBe('critical');
    expect(judgeAgainst([], ['payments:refund'], { dangerous: [], extra_dangerous: ['payments:*'] })!.severity).toBe('critical');
  });

  it('ignores a removal-only change with alert_on_removal off, not a mixed one', () => {
    expect(judgeAgainst(BASE, ['file_read'], { alert_on_removal: false })).toBeNull();
    expect(judgeAgainst(BASE, ['file_read'])!.reason).toBe(
      'agent-7 (cursor) lost file_write, web_search since its approved set (approved 2026-11-20 09:14 UTC)',
    );
    expect(judgeAgainst(BASE, ['file_read', 'browser'], { alert_on_removal: false })!.evidence).toMatchObject({ added: 'browser', removed: 'file_write, web_search' });
  });

  it('does not fire for the approved set in another order or with repeats', () => {
    expect(judgeAgainst(BASE, ['web_search', 'file_read', 'file_write', 'file_read'])).toBeNull();
  });

  it('bounds a huge change in the reason and evidence, keeping exact counts', () => {
    const many = Array.from({ length: 600 }, (_, i) => `tool_${String(i).padStart(4, '0')}_with_a_long_descriptive_name`);
    const f = judgeAgainst([], many)!;
    expect(f.reason).toContain('tool_0007_with_a_long_descriptive_name and 592 more since');
    expect(String(f.evidence.added).length).toBeLessThanOrEqual(2048);
    expect(String(f.evidence.added).endsWith('…')).toBe(true);
    expect(f.evidence.added_count).toBe(600);
  });
});

describe('capability_drift decide on a rejected set', () => {
  it('denies the set an administrator rejected, as critical, saying so and when', () => {
    const f = judgeAgainst(BASE, [...BASE, 'browser'], {}, {}, [...BASE, 'browser']);
    expect(f!.reason).toBe(
      'agent-7 (cursor) gained browser since its approved set (approved 2026-11-20 09:14 UTC), a change rejected by an administrator on 2026-11-24 09:41 UTC',
    );
    expect(f!.severity).toBe('critical');
    expect(f!.decision).toBe('deny');
    expect(f!.evidence).toMatchObject({ added: 'browser', pending_approval: false, rejected: true, rejected_at: '2026-11-24T09:41:10.000Z' });
  });

  it('keeps the dangerous clause, and fires for a rejected removal even with alert_on_removal off', () => {
    expect(judgeAgainst(BASE, [...BASE, 'sudo'], {}, {}, [...BASE, 'sudo'])!.reason).toMatch(/, a change rejected by an administrator on 2026-11-24 09:41 UTC; dangerous: sudo$/);
    expect(judgeAgainst(BASE, ['file_read'], { alert_on_removal: false }, {}, ['file_read'])).toMatchObject({ severity: 'critical', decision: 'deny' });
    expect(judgeAgainst(BASE, ['file_read'], { alert_on_removal: false }, {}, ['web_search'])).toBeNull();
  });

  it('judges any other set as before', () => {
    const f = judgeAgainst(BASE, [...BASE, 'calendar_read'], {}, {}, [...BASE, 'browser']);
    expect(f).toEqual(judgeAgainst(BASE, [...BASE, 'calendar_read']));
    expect(f!.evidence.rejected).toBeUndefined();
    expect(judgeAgainst(BASE, BASE, {}, {}, [...BASE, 'browser'])).toBeNull();
  });

  it('denies a rejected set that is also the approved one (a revoked approval)', () => {
    expect(judgeAgainst(BASE, BASE, {}, {}, BASE)).toMatchObject({
      reason: 'agent-7 (cursor) presents its approved capability set (approved 2026-11-20 09:14 UTC), a change rejected by an administrator on 2026-11-24 09:41 UTC',
      severity: 'critical',
      decision: 'deny',
    });
  });
});

describe('capability_drift with the state store', () => {
  const agent = { id: 'agent-7', name: 'cursor' };
  const at = (minutes: number) => T0 + minutes * 60_000;

  it('takes the first set as the baseline and fires on every event until the new set is approved', () => {
    const outcomes = judgeEach(driftEngine(), [
      capabilityEvent(BASE, { agent, time: APPROVED_AT }),
      capabilityEvent([...BASE].reverse(), { agent, time: at(1) }),
      capabilityEvent([...BASE, 'browser'], { agent, time: at(2) }),
      capabilityEvent([...BASE, 'browser'], { agent, time: at(3) }),
      capabilityEvent(BASE, { agent, time: at(4) }),
    ]);
    expect(outcomes.map((o) => o.verdicts.length)).toEqual([0, 0, 1, 1, 0]);
    const v = outcomes[2]!.verdicts[0]!;
    expect(v.reason).toBe('agent-7 (cursor) gained browser since its approved set (approved 2026-11-20 09:14 UTC)');
    expect(v.severity).toBe('medium');
    expect(v.would_decide).toBe('allow');
    expect(v.atlas).toEqual(['AML.T0081']);
    expect(outcomes[3]!.verdicts[0]!.reason).toBe(v.reason);
  });

  it('with auto_approve fires once per change, against the set seen before', () => {
    const outcomes = judgeEach(driftEngine({ auto_approve: true }), [
      capabilityEvent(BASE, { agent, time: APPROVED_AT }),
      capabilityEvent([...BASE, 'browser'], { agent, time: at(2) }),
      capabilityEvent([...BASE, 'browser'], { agent, time: at(3) }),
      capabilityEvent(['browser'], { agent, time: at(4) }),
    ]);
    expect(outcomes.map((o) => o.verdicts.length)).toEqual([0, 1, 0, 1]);
    expect(outcomes[3]!.verdicts[0]!.reason).toBe(
      'agent-7 (cursor) lost file_read, file_write, web_search since its approved set (approved 2026-11-24 10:02 UTC)',
    );
    expect(outcomes[3]!.verdicts[0]!.evidence.pending_approval).toBe(false);
  });

  it('escalates in strict mode: decision require_approval, severity critical; monitoring only records it', () => {
    const events = [capabilityEvent(BASE, { agent, time: at(0) }), capabilityEvent([...BASE, 'shell_execute'], { agent, time: at(1) })];
    const strict = judgeEach(driftEngine(), events)[1]!;
    expect(strict.verdicts[0]).toMatchObject({ severity: 'critical', decision: 'require_approval', would_decide: 'require_approval' });
    expect(strict.outcomes[0]!.decision).toBe('require_approval');
    const monitoring = judgeEach(driftEngine({}, {}, 'monitoring'), events)[1]!;
    expect(monitoring.verdicts[0]).toMatchObject({ severity: 'critical', decision: 'allow', would_decide: 'require_approval' });
  });

  it('keeps one baseline per agent and policy, and ignores events without capabilities', () => {
    const store = new MemoryStateStore();
    const engine = driftEngine();
    const outcomes = judgeEach(
      engine,
      [
        capabilityEvent(BASE, { agent: { id: 'a' } }),
        capabilityEvent(['shell_execute'], { agent: { id: 'b' } }),
        makeEvent({ type: 'capability_change', agent: { id: 'a' } }),
        makeEvent({ type: 'api_call', agent: { id: 'a' }, action: 'shell_execute' }),
        capabilityEvent(BASE, { agent: { id: 'a' } }),
        capabilityEvent(['shell_execute'], { agent: { id: 'b' } }),
      ],
      store,
    );
    expect(outcomes.every((o) => o.verdicts.length === 0)).toBe(true);
  });

  it('denies a set once rejected through a value_review, in strict mode; auto-approval does not lift it', () => {
    for (const config of [{}, { auto_approve: true }]) {
      const store = new MemoryStateStore();
      const engine = driftEngine(config);
      const key = capabilityDriftStateKey('default', 'agent-7', 'drift');
      judgeEach(engine, [capabilityEvent(BASE, { agent, time: at(0) }), capabilityEvent([...BASE, 'browser'], { agent, time: at(1) })], store);
      const [review] = store.applyStateOpsSync([{ op: 'value_review', key, action: 'reject', value: canonicalCapabilities([...BASE, 'browser']), ts: REJECTED_AT }]);
      expect(review).toMatchObject({ applied: true });
      const outcomes = judgeEach(engine, [capabilityEvent([...BASE, 'browser'], { agent, time: at(2) }), capabilityEvent([...BASE, 'browser'], { agent, time: at(3) })], store);
      for (const o of outcomes) {
        expect(o.verdicts[0], JSON.stringify(config)).toMatchObject({ severity: 'critical', would_decide: 'deny', decision: 'deny' });
        expect(o.verdicts[0]!.reason).toContain('a change rejected by an administrator on 2026-11-24 09:41 UTC');
      }
    }
    const monitoring = new MemoryStateStore();
    const engine = driftEngine({}, {}, 'monitoring');
    judgeEach(engine, [capabilityEvent(BASE, { agent }), capabilityEvent(['x'], { agent })], monitoring);
    monitoring.applyStateOpsSync([{ op: 'value_review', key: capabilityDriftStateKey('default', 'agent-7', 'drift'), action: 'reject', value: 'x', ts: REJECTED_AT }]);
    expect(judgeEach(engine, [capabilityEvent(['x'], { agent })], monitoring)[0]!.verdicts[0]).toMatchObject({ decision: 'allow', would_decide: 'deny' });
  });

  it('treats an empty list as a set that lost everything', () => {
    const outcomes = judgeEach(driftEngine(), [capabilityEvent(['file_read'], { agent }), capabilityEvent([], { agent })]);
    expect(outcomes[1]!.verdicts[0]!.reason).toMatch(/^agent-7 \(cursor\) lost file_read since its approved set/);
  });

  it('judges events of any type that carry capabilities, unless match narrows it', () => {
    const events = [capabilityEvent(['a'], { agent, type: 'config_change' }), capabilityEvent(['a', 'b'], { agent, type: 'config_change' })];
    expect(judgeEach(driftEngine(), events)[1]!.verdicts).toHaveLength(1);
    expect(judgeEach(driftEngine({}, { match: { event_types: ['capability_change'] } }), events)[1]!.verdicts).toHaveLength(0);
  });
});

describe('capability_drift config', () => {
  it('defaults', () => {
    expect(policyOf({}).config).toEqual({ dangerous: [...DEFAULT_DANGEROUS_CAPABILITIES], extra_dangerous: [], auto_approve: false, alert_on_removal: true });
  });

  it.each([
    [{ dangerous: 'shell*' }, 'policies[0].config.dangerous'],
    [{ dangerous: ['shell*', ''] }, 'policies[0].config.dangerous[1]'],
    [{ extra_dangerous: [42] }, 'policies[0].config.extra_dangerous[0]'],
    [{ auto_approve: 'yes' }, 'policies[0].config.auto_approve'],
    [{ alert_on_removal: 1 }, 'policies[0].config.alert_on_removal'],
    [{ dangerous_extra: ['x'] }, 'policies[0].config'],
  ])('rejects bad config %j at %s', (config, path) => {
    const r = parsePolicyDocument({ version: 1, policies: [{ id: 'p', type: 'capability_drift', config }] }, defaultRegistry);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.problems.map((p) => p.path)).toContain(path);
  });

  it('names the path in the loader error', () => {
    expect(() => driftEngine({ dangerous: [''] })).toThrow(/policies\[0\]\.config\.dangerous\[0\]/);
  });
});
