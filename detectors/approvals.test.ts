import { describe, expect, it } from 'vitest';
import type { StateStore } from '../core/ports.js';
import type { StateOp } from '../core/state.js';
import { makeEvent } from '../test/support/events.js';
import { engineFor } from '../test/support/policies.js';
import { pendingApprovals, reviewApproval, type ReviewRequest } from './approvals.js';
import { evaluateBatchSync, type PolicyEngine } from './engine.js';
import { MemoryStateStore } from './state/memory/memory-store.js';
import { canonicalCapabilities } from './types/capability-drift.js';

const T0 = Date.UTC(2026, 10, 24, 10, 0, 0);
const REVIEWED_AT = Date.UTC(2026, 10, 24, 11, 30, 0);
const OLD_KEY = 'SHA256:1b7d9a0c55e2f3a4b6c7d8e9f0a1b2c3d4e5f6a7b8c903aa';
const NEW_KEY = 'SHA256:9f2c41d0aa01bb02cc03dd04ee05ff0600112233445566e41a';

/** Two approval policies for every tenant, one for acme only, one disabled, and a policy of another type. */
function approvalEngine(): PolicyEngine {
  return engineFor({
    mode: 'strict',
    policies: [
      { id: 'drift', type: 'capability_drift', config: {} },
      { id: 'keys', type: 'key_rotation', config: {} },
      { id: 'acme-drift', type: 'capability_drift', match: { tenants: ['acme'] }, config: {} },
      { id: 'off', type: 'key_rotation', enabled: false, config: {} },
      { id: 'unknown', type: 'unknown_agent', config: { allowed_agents: ['*'] } },
    ],
  });
}

/** The port of a memory store, counting its round trips. */
function counting(store: MemoryStateStore): StateStore & { calls: number } {
  const counted = {
    calls: 0,
    applyStateOps<O extends StateOp>(ops: readonly O[]) {
      counted.calls++;
      return store.applyStateOps(ops);
    },
    close: () => store.close(),
  };
  return counted;
}

function judge(engine: PolicyEngine, store: MemoryStateStore, tenant: string, minute: number, fields: { capabilities?: string[]; key?: string }) {
  const event = makeEvent({
    tenant,
    agent: { id: 'agent-7', name: 'cursor' },
    type: fields.key === undefined ? 'capability_change' : 'key_rotation',
    time: T0 + minute * 60_000,
    ...(fields.capabilities === undefined ? {} : { capabilities: fields.capabilities }),
    ...(fields.key === undefined ? {} : { key: { fingerprint: fields.key } }),
  });
  return evaluateBatchSync(engine, store, [event]);
}

function request(overrides: Partial<ReviewRequest>): ReviewRequest {
  return { tenant: 'acme', agent_id: 'agent-7', policy_id: 'drift', action: 'approve', value: '', ...overrides };
}

describe('pendingApprovals', () => {
  it('lists values that differ from the approved one, decoded, for the tenant’s enabled approval policies, in one round trip', async () => {
    const engine = approvalEngine();
    const store = new MemoryStateStore();
    const port = counting(store);
    judge(engine, store, 'acme', 0, { capabilities: ['file_read'] });
    judge(engine, store, 'acme', 1, { capabilities: ['file_read', 'shell_execute'] });
    judge(engine, store, 'acme', 2, { key: OLD_KEY });
    judge(engine, store, 'acme', 3, { key: NEW_KEY });
    const pending = await pendingApprovals(engine, port, 'acme', 'agent-7');
    expect(port.calls).toBe(1);
    expect(pending).toEqual([
      {
        tenant: 'acme',
        agent_id: 'agent-7',
        policy_id: 'drift',
        policy_type: 'capability_drift',
        approved: ['file_read'],
        pending: ['file_read', 'shell_execute'],
        pending_value: canonicalCapabilities(['shell_execute', 'file_read']),
        approved_at: new Date(T0).toISOString(),
        rejected: false,
      },
      {
        tenant: 'acme',
        agent_id: 'agent-7',
        policy_id: 'keys',
        policy_type: 'key_rotation',
        approved: OLD_KEY,
        pending: NEW_KEY,
        pending_value: NEW_KEY,
        approved_at: new Date(T0 + 2 * 60_000).toISOString(),
        rejected: false,
      },
      expect.objectContaining({ policy_id: 'acme-drift', pending: ['file_read', 'shell_execute'] }),
    ]);
  });

  it('lists nothing for an agent never seen, or whose last value is approved, and reading creates no state', async () => {
    const engine = approvalEngine();
    const store = new MemoryStateStore();
    expect(await pendingApprovals(engine, store, 'acme', 'agent-7')).toEqual([]);
    expect(store.size()).toBe(0);
    judge(engine, store, 'globex', 0, { capabilities: ['a'] });
    judge(engine, store, 'globex', 1, { capabilities: ['a', 'b'] });
    judge(engine, store, 'globex', 2, { capabilities: ['a'] });
    expect(await pendingApprovals(engine, store, 'globex', 'agent-7')).toEqual([]);
  });

  it('leaves out policies of other tenants, and asks the store nothing when none applies', async () => {
    const engine = engineFor({ policies: [{ id: 'acme-drift', type: 'capability_drift', match: { tenants: ['acme'] }, config: {} }] });
    const store = new MemoryStateStore();
    const port = counting(store);
    judge(engine, store, 'acme', 0, { capabilities: ['a'] });
    judge(engine, store, 'acme', 1, { capabilities: [] });
    expect(await pendingApprovals(engine, port, 'globex', 'agent-7')).toEqual([]);
    expect(port.calls).toBe(0);
    expect(await pendingApprovals(engine, port, 'acme', 'agent-7')).toMatchObject([{ policy_id: 'acme-drift', approved: ['a'], pending: [], pending_value: '' }]);
  });
});

describe('reviewApproval', () => {
  it('approves the pending value: it leaves the list and stops firing', async () => {
    const engine = approvalEngine();
    const store = new MemoryStateStore();
    judge(engine, store, 'acme', 0, { key: OLD_KEY });
    expect(judge(engine, store, 'acme', 1, { key: NEW_KEY }).verdicts).toHaveLength(1);
    const outcome = await reviewApproval(engine, store, request({ policy_id: 'keys', value: NEW_KEY }), REVIEWED_AT);
    expect(outcome).toEqual({
      ok: true,
      result: { op: 'value_review', approved: NEW_KEY, last: NEW_KEY, approvedAt: REVIEWED_AT, rejected: null, rejectedAt: null, applied: true },
    });
    expect((await pendingApprovals(engine, store, 'acme', 'agent-7')).map((p) => p.policy_id)).toEqual([]);
    expect(judge(engine, store, 'acme', 2, { key: NEW_KEY }).verdicts).toEqual([]);
  });

  it('rejects the pending value: it stays listed as rejected, and events presenting it are denied', async () => {
    const engine = approvalEngine();
    const store = new MemoryStateStore();
    judge(engine, store, 'acme', 0, { key: OLD_KEY });
    judge(engine, store, 'acme', 1, { key: NEW_KEY });
    const outcome = await reviewApproval(engine, store, request({ policy_id: 'keys', action: 'reject', value: NEW_KEY }), REVIEWED_AT);
    expect(outcome).toMatchObject({ ok: true, result: { approved: OLD_KEY, rejected: NEW_KEY, rejectedAt: REVIEWED_AT, applied: true } });
    expect(await pendingApprovals(engine, store, 'acme', 'agent-7')).toMatchObject([{ policy_id: 'keys', pending: NEW_KEY, rejected: true }]);
    const verdict = judge(engine, store, 'acme', 2, { key: NEW_KEY }).verdicts[0];
    expect(verdict).toMatchObject({ severity: 'critical', would_decide: 'deny' });
    expect(verdict?.reason).toContain('rejected by an administrator on 2026-11-24 11:30 UTC');
    // A rejected value can still be approved; the rejection goes with it.
    expect(await reviewApproval(engine, store, request({ policy_id: 'keys', value: NEW_KEY }), REVIEWED_AT + 1)).toMatchObject({ ok: true, result: { rejected: null } });
    expect(judge(engine, store, 'acme', 3, { key: NEW_KEY }).verdicts).toEqual([]);
  });

  it('refuses a value the agent replaced since it was listed (stale), changing nothing', async () => {
    const engine = approvalEngine();
    const store = new MemoryStateStore();
    judge(engine, store, 'acme', 0, { capabilities: ['a'] });
    judge(engine, store, 'acme', 1, { capabilities: ['a', 'b'] });
    const [listed] = await pendingApprovals(engine, store, 'acme', 'agent-7');
    judge(engine, store, 'acme', 2, { capabilities: ['a', 'b', 'shell'] });
    for (const action of ['approve', 'reject'] as const) {
      expect(await reviewApproval(engine, store, request({ action, value: listed!.pending_value }), REVIEWED_AT)).toMatchObject({ ok: false, code: 'stale' });
    }
    expect(await pendingApprovals(engine, store, 'acme', 'agent-7')).toMatchObject([
      { policy_id: 'drift', approved: ['a'], pending: ['a', 'b', 'shell'], rejected: false },
      { policy_id: 'acme-drift' },
    ]);
  });

  it('refuses what is not pending: an agent never seen, or its approved value', async () => {
    const engine = approvalEngine();
    const store = new MemoryStateStore();
    expect(await reviewApproval(engine, store, request({ value: 'a' }), REVIEWED_AT)).toMatchObject({ ok: false, code: 'not_pending' });
    expect(store.size()).toBe(0);
    judge(engine, store, 'acme', 0, { capabilities: ['a'] });
    for (const action of ['approve', 'reject'] as const) {
      expect(await reviewApproval(engine, store, request({ action, value: 'a' }), REVIEWED_AT)).toMatchObject({ ok: false, code: 'not_pending' });
    }
    expect(await pendingApprovals(engine, store, 'acme', 'agent-7')).toEqual([]);
  });

  it('refuses a policy that is unknown, disabled, of another type or not for the tenant', async () => {
    const engine = approvalEngine();
    const store = new MemoryStateStore();
    for (const [policy_id, tenant] of [
      ['nope', 'acme'],
      ['off', 'acme'],
      ['unknown', 'acme'],
      ['acme-drift', 'globex'],
    ] as const) {
      const outcome = await reviewApproval(engine, store, request({ policy_id, tenant, value: 'a' }), REVIEWED_AT);
      expect(outcome, policy_id).toMatchObject({ ok: false, code: 'unknown_policy' });
      if (!outcome.ok) expect(outcome.message).toContain(policy_id);
    }
  });
});
