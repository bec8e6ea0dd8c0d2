import { describe, expect, it } from 'vitest';
import type { AgentEventInput } from '../../core/event.js';
import { parsePolicyDocument, type ValidatedPolicy } from '../../core/policy.js';
import type { StateOp } from '../../core/state.js';
import { parsePolicyText } from '../policy-loader.js';
import { defaultRegistry } from '../registry.js';
import { makeEvent } from '../../test/support/events.js';
import { engineFor, judgeEach } from '../../test/support/policies.js';
import { MemoryStateStore } from '../state/memory/memory-store.js';
import { keyRotationPolicy, keyRotationStateKey, shortFingerprint, type KeyRotationConfig } from './key-rotation.js';

const T0 = Date.UTC(2026, 10, 20, 9, 14, 0);
const at = (minutes: number) => T0 + minutes * 60_000;
const agent = { id: 'agent-7', name: 'cursor' };

const OLD = 'SHA256:1b7d9a0c55e2f3a4b6c7d8e9f0a1b2c3d4e5f6a7b8c903aa';
const NEW = 'SHA256:9f2c41d0aa01bb02cc03dd04ee05ff0600112233445566e41a';
const OTHER = 'SHA256:77aa88bb99cc00dd11ee22ff33aa44bb55cc66dd77ee88ff';

function keyEvent(fingerprint: string | undefined, time: number, overrides: Partial<AgentEventInput> = {}) {
  return makeEvent({
    type: 'key_rotation',
    agent,
    time,
    ...(fingerprint === undefined ? {} : { key: { fingerprint, algorithm: 'ed25519' } }),
    ...overrides,
  });
}

function keyEngine(config: Record<string, unknown> = {}, extra: Record<string, unknown> = {}) {
  return engineFor({ mode: 'strict', policies: [{ id: 'keys', type: 'key_rotation', severity: 'high', ...extra, config }] });
}

describe('key_rotation', () => {
  it('shortens fingerprints for reasons, keeping a scheme prefix', () => {
    expect(shortFingerprint(OLD)).toBe('SHA256:1b7d9a0c…03aa');
    expect(shortFingerprint('SHA256:abc')).toBe('SHA256:abc');
    expect(shortFingerprint('0123456789abcdef')).toBe('0123456789abcdef');
    expect(shortFingerprint('0123456789abcdef0')).toBe('01234567…def0');
    expect(shortFingerprint('ab:cd:ef:01:23:45:67:89')).toBe('ab:cd:ef…7:89');
  });

  it('plans one value_snapshot per event with a key, auto-approving only without require_approval', () => {
    const policy = (config: Record<string, unknown>) =>
      parsePolicyText(JSON.stringify({ version: 1, policies: [{ id: 'keys', type: 'key_rotation', config }] })).policies[0] as ValidatedPolicy<KeyRotationConfig>;
    const ops: StateOp[] = [];
    keyRotationPolicy.plan!(keyEvent(NEW, T0, { tenant: 'acme' }), null, policy({}), ops);
    keyRotationPolicy.plan!(keyEvent(NEW, T0), null, policy({ require_approval: false }), ops);
    keyRotationPolicy.plan!(keyEvent(undefined, T0), null, policy({}), ops);
    expect(ops).toHaveLength(2);
    expect(ops[0]).toMatchObject({ op: 'value_snapshot', key: 'aw:{acme/agent-7}:keys:key', value: NEW, autoApprove: false, ts: T0 });
    expect(ops[1]).toMatchObject({ autoApprove: true });
  });

  it('with require_approval: fires on every event signed with the unapproved key, deciding require_approval', () => {
    const outcomes = judgeEach(keyEngine(), [
      keyEvent(OLD, T0),
      keyEvent(OLD, at(60)),
      keyEvent(NEW, at(24 * 60)),
      keyEvent(NEW, at(24 * 60 + 1), { type: 'api_call' }),
      keyEvent(OLD, at(24 * 60 + 2)),
    ]);
    expect(outcomes.map((o) => o.verdicts.length)).toEqual([0, 0, 1, 1, 0]);
    const v = outcomes[2]!.verdicts[0]!;
    expect(v.reason).toBe(
      'agent-7 (cursor) presents ed25519 key SHA256:9f2c41d0…e41a, which is pending approval; its approved key is SHA256:1b7d9a0c…03aa (approved 2026-11-20 09:14 UTC)',
    );
    expect(v).toMatchObject({ severity: 'high', would_decide: 'require_approval', decision: 'require_approval', atlas: ['AML.T0073'] });
    expect(v.evidence).toEqual({
      fingerprint: NEW,
      approved_fingerprint: OLD,
      algorithm: 'ed25519',
      new_key: true,
      pending_approval: true,
      approved_at: '2026-11-20T09:14:00.000Z',
    });
    expect(outcomes[3]!.verdicts[0]!.evidence.new_key).toBe(false);
    expect(outcomes[3]!.outcomes[0]!.decision).toBe('require_approval');
  });

  it('keeps deny when the policy blocks', () => {
    const outcomes = judgeEach(keyEngine({}, { action: 'block' }), [keyEvent(OLD, T0), keyEvent(NEW, at(1))]);
    expect(outcomes[1]!.verdicts[0]!.would_decide).toBe('deny');
  });

  it('without require_approval: one finding per rotation, and the new key becomes approved', () => {
    const outcomes = judgeEach(keyEngine({ require_approval: false }), [
      keyEvent(OLD, T0),
      keyEvent(NEW, at(60), { key: { fingerprint: NEW } }),
      keyEvent(NEW, at(61)),
      keyEvent(OTHER, at(120)),
      keyEvent(OTHER, at(121)),
    ]);
    expect(outcomes.map((o) => o.verdicts.length)).toEqual([0, 1, 0, 1, 0]);
    const v = outcomes[1]!.verdicts[0]!;
    expect(v.reason).toBe(
      'agent-7 (cursor) rotated from key SHA256:1b7d9a0c…03aa (approved 2026-11-20 09:14 UTC) to key SHA256:9f2c41d0…e41a, now approved',
    );
    expect(v.would_decide).toBe('allow');
    expect(v.evidence).toMatchObject({ algorithm: '', new_key: true, pending_approval: false });
    expect(outcomes[3]!.verdicts[0]!.evidence).toMatchObject({ approved_fingerprint: NEW, approved_at: '2026-11-20T10:14:00.000Z' });
  });

  it('denies a key an administrator rejected, as critical, until it is approved', () => {
    const REJECTED_AT = Date.UTC(2026, 10, 21, 8, 5, 30);
    const store = new MemoryStateStore();
    const engine = keyEngine();
    const key = keyRotationStateKey('default', 'agent-7', 'keys');
    judgeEach(engine, [keyEvent(OLD, T0), keyEvent(NEW, at(1))], store);
    expect(store.applyStateOpsSync([{ op: 'value_review', key, action: 'reject', value: NEW, ts: REJECTED_AT }])).toMatchObject([{ applied: true }]);
    const outcomes = judgeEach(engine, [keyEvent(NEW, at(2)), keyEvent(OTHER, at(3)), keyEvent(OLD, at(4)), keyEvent(NEW, at(5))], store);
    expect(outcomes.map((o) => o.verdicts.map((v) => `${v.severity} ${v.would_decide}`))).toEqual([['critical deny'], ['high require_approval'], [], ['critical deny']]);
    const v = outcomes[0]!.verdicts[0]!;
    expect(v.reason).toBe(
      'agent-7 (cursor) presents ed25519 key SHA256:9f2c41d0…e41a, which was rejected by an administrator on 2026-11-21 08:05 UTC; its approved key is SHA256:1b7d9a0c…03aa (approved 2026-11-20 09:14 UTC)',
    );
    expect(v.evidence).toEqual({
      fingerprint: NEW,
      approved_fingerprint: OLD,
      algorithm: 'ed25519',
      new_key: false,
      pending_approval: false,
      approved_at: '2026-11-20T09:14:00.000Z',
      rejected: true,
      rejected_at: '2026-11-21T08:05:30.000Z',
    });
    expect(outcomes[1]!.verdicts[0]!.evidence.rejected).toBeUndefined();
    // Approving the rejected key lifts the rejection.
    expect(store.applyStateOpsSync([{ op: 'value_review', key, action: 'approve', value: NEW, ts: REJECTED_AT + 1 }])).toMatchObject([{ applied: true, rejected: null }]);
    expect(judgeEach(engine, [keyEvent(NEW, at(6))], store)[0]!.verdicts).toEqual([]);
  });

  it('without require_approval a rejected key stays denied, though the snapshot auto-approves it', () => {
    const store = new MemoryStateStore();
    const engine = keyEngine({ require_approval: false });
    judgeEach(engine, [keyEvent(OLD, T0)], store);
    store.applyStateOpsSync([{ op: 'value_review', key: keyRotationStateKey('default', 'agent-7', 'keys'), action: 'reject', value: OLD, ts: at(1) }]);
    const outcomes = judgeEach(engine, [keyEvent(OLD, at(2)), keyEvent(OLD, at(3))], store);
    expect(outcomes.map((o) => o.verdicts[0]?.would_decide)).toEqual(['deny', 'deny']);
  });

  it('does not fire on first sight, per agent, or for events without a key', () => {
    const outcomes = judgeEach(keyEngine(), [
      keyEvent(OLD, T0),
      keyEvent(NEW, T0, { agent: { id: 'agent-8' } }),
      keyEvent(undefined, at(1)),
      makeEvent({ type: 'auth', agent, time: at(2) }),
    ]);
    expect(outcomes.every((o) => o.verdicts.length === 0)).toBe(true);
  });

  it('compares fingerprints exactly (base64 fingerprints are case-sensitive)', () => {
    const outcomes = judgeEach(keyEngine(), [keyEvent('SHA256:abcDEF', T0), keyEvent('SHA256:abcdef', at(1))]);
    expect(outcomes[1]!.verdicts).toHaveLength(1);
  });

  it.each([
    [{ require_approval: 'yes' }, 'policies[0].config.require_approval'],
    [{ require_aproval: true }, 'policies[0].config'],
  ])('rejects bad config %j at %s', (config, path) => {
    const r = parsePolicyDocument({ version: 1, policies: [{ id: 'p', type: 'key_rotation', config }] }, defaultRegistry);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.problems.map((p) => p.path)).toContain(path);
    expect(() => keyEngine(config)).toThrow(path);
  });
});
