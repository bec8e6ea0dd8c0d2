import { describe, expect, it } from 'vitest';
import type { StateOp } from '../../../core/state.js';
import { MemoryStateStore } from './memory-store.js';

const unpositioned = { partition: -1, offset: -1, committedOffset: -1 };

/** One operation of every kind on `key`, at event time `ts`. */
function everyKind(key: string, ts: number): StateOp[] {
  return [
    { op: 'window_count', key, ...unpositioned, ts, windowMs: 10, bucketMs: 2, latenessMs: 0, historyWindows: 0 },
    { op: 'distinct_count', key, ...unpositioned, ts, member: 'm', windowMs: 10, bucketMs: 2, latenessMs: 0, historyWindows: 0, maxMembers: 10 },
    { op: 'first_seen', key, ...unpositioned, ts, member: 'm', lookbackMs: 0, maxMembers: 10 },
    { op: 'token_bucket', key, ...unpositioned, ts, capacity: 2, refillPerSecond: 0 },
    { op: 'value_snapshot', key, ...unpositioned, ts, value: 'v', autoApprove: false },
    { op: 'recent_values', key, ...unpositioned, series: 's', ts, value: 1, windowMs: 10, maxSamples: 10 },
  ];
}

describe('MemoryStateStore', () => {
  it('keeps one key space per operation kind', () => {
    const store = new MemoryStateStore();
    const first = store.applyStateOpsSync(everyKind('k', 1), 0);
    expect(first).toEqual([
      { op: 'window_count', count: 1, late: false, baseline: null },
      { op: 'distinct_count', count: 1, late: false, baseline: null, approximate: false },
      { op: 'first_seen', first: true, lastSeen: null, members: 1 },
      { op: 'token_bucket', allowed: true, tokens: 1 },
      { op: 'value_snapshot', approved: null, previous: null, approvedAt: null, rejected: null, rejectedAt: null },
      { op: 'recent_values', max: null, previous: null },
    ]);
    expect(store.size()).toBe(6);
  });

  it('sweeps idle keys of every kind, replays keeping a key alive', () => {
    const store = new MemoryStateStore({ idleTtlMs: 1000 });
    store.applyStateOpsSync(everyKind('old', 1), 0);
    const positioned = everyKind('busy', 1).map((op, i) => ({ ...op, partition: 0, offset: i, committedOffset: 0 }));
    store.applyStateOpsSync(positioned, 0);
    expect(store.size()).toBe(12);
    // At 900 the busy keys see their operations again (replays), so only the old ones are idle at 1500.
    store.applyStateOpsSync(positioned, 900);
    expect(store.replayedOps).toBe(6);
    expect(store.sweep(1500)).toBe(6);
    expect(store.size()).toBe(6);
    // A swept key starts afresh.
    expect(store.applyStateOpsSync(everyKind('old', 2), 1500)[2]).toEqual({ op: 'first_seen', first: true, lastSeen: null, members: 1 });
    expect(store.sweep(2000)).toBe(6);
    expect(store.sweep(3000)).toBe(6);
    expect(store.size()).toBe(0);
  });

  it("keeps a key as long as its last operation's retainMs asks, when longer than the idle TTL", () => {
    const store = new MemoryStateStore({ idleTtlMs: 1000 });
    const retained = (ops: StateOp[], retainMs: number | undefined): StateOp[] => ops.map((op) => ({ ...op, retainMs }));
    store.applyStateOpsSync(retained(everyKind('long', 1), 5000), 0);
    store.applyStateOpsSync(retained(everyKind('short', 1), 500), 0);
    store.applyStateOpsSync(retained(everyKind('shortened', 1), 5000), 0);
    // The last operation decides: without retainMs the idle TTL applies again.
    store.applyStateOpsSync(retained(everyKind('shortened', 2), undefined), 100);
    expect(store.sweep(1200)).toBe(12);
    expect(store.sweep(5000)).toBe(0);
    expect(store.sweep(5001)).toBe(6);
    expect(store.size()).toBe(0);
  });

  it('lets only an applied review touch a key: reads and stale reviews neither create nor keep one', () => {
    const store = new MemoryStateStore({ idleTtlMs: 1000 });
    const snapshot = (key: string, ts: number, value: string): StateOp => ({ op: 'value_snapshot', key, ...unpositioned, ts, value, autoApprove: false, retainMs: 5000 });
    const review = (key: string, action: 'read' | 'approve' | 'reject', value?: string): StateOp => ({ op: 'value_review', key, action, ts: 1, ...(value === undefined ? {} : { value }), retainMs: 5000 });
    store.applyStateOpsSync(['kept', 'read-only'].flatMap((key) => [snapshot(key, 1, 'a'), snapshot(key, 2, 'b')]), 0);
    const untouched = store.applyStateOpsSync([review('kept', 'read'), review('read-only', 'read'), review('read-only', 'approve', 'a'), review('missing', 'read'), review('missing', 'reject', 'b')], 4000);
    expect(untouched.map((r) => r.op === 'value_review' && r.applied)).toEqual([false, false, false, false, false]);
    expect(store.size()).toBe(2);
    expect(store.applyStateOpsSync([review('kept', 'approve', 'b')], 4500)).toMatchObject([{ applied: true }]);
    expect(store.sweep(5001)).toBe(1);
    expect(store.sweep(9500)).toBe(0);
    expect(store.sweep(9501)).toBe(1);
    expect(store.size()).toBe(0);
  });

  it('empties every key space on close', async () => {
    const store = new MemoryStateStore();
    store.applyStateOpsSync(everyKind('k', 1));
    await store.close();
    expect(store.size()).toBe(0);
  });

  it('rejects an unknown operation kind', () => {
    const store = new MemoryStateStore();
    expect(() => store.applyStateOpsSync([{ op: 'nope', key: 'k' } as unknown as StateOp])).toThrow(/unknown operation nope/);
  });
});
