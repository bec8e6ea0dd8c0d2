import { describe, expect, it } from 'vitest';
import type { ValueReviewOp, ValueSnapshotOp } from '../../../core/state.js';
import { ValueSnapshotState } from './value-snapshot.js';

function op(ts: number, value: string, autoApprove = false, offset = -1): ValueSnapshotOp {
  return { op: 'value_snapshot', key: 'k', partition: offset < 0 ? -1 : 0, offset, committedOffset: offset, ts, value, autoApprove };
}

function review(ts: number, action: ValueReviewOp['action'], value?: string): ValueReviewOp {
  return { op: 'value_review', key: 'k', action, ts, ...(value === undefined ? {} : { value }) };
}

describe('ValueSnapshotState', () => {
  it('trusts the first value, then only auto-approved changes move the approval', () => {
    const state = new ValueSnapshotState();
    const results = [op(1, 'a'), op(2, 'b'), op(3, 'b', true), op(4, 'b', true), op(5, 'a')].map((o) => state.answer(o));
    expect(results.map((r) => [r.approved, r.previous, r.approvedAt])).toEqual([
      [null, null, null],
      ['a', 'a', 1],
      ['a', 'b', 1],
      ['b', 'b', 3],
      ['b', 'b', 3],
    ]);
  });

  it('replays its first answer, and a returned result is the caller’s to change', () => {
    const state = new ValueSnapshotState();
    state.answer(op(1, 'a', false, 7));
    const first = state.answer(op(2, 'b', false, 8));
    first.approved = 'mutated';
    expect(state.answer(op(2, 'b', false, 8))).toEqual({ op: 'value_snapshot', approved: 'a', previous: 'a', approvedAt: 1, rejected: null, rejectedAt: null });
    const replay = state.answer(op(2, 'b', false, 8));
    replay.previous = 'mutated';
    expect(state.answer(op(2, 'b', false, 8)).previous).toBe('a');
    expect(state.lastAnswer).toBe('replayed');
  });

  it('reviews only the last value seen; a rejection outlives other values until that value is approved', () => {
    const state = new ValueSnapshotState();
    state.answer(op(1, 'a'));
    state.answer(op(2, 'b'));
    expect(state.review(review(100, 'approve', 'a'))).toMatchObject({ approved: 'a', last: 'b', applied: false });
    expect(state.review(review(101, 'reject'))).toMatchObject({ rejected: null, applied: false });
    expect(state.review(review(102, 'reject', 'b'))).toEqual({ op: 'value_review', approved: 'a', last: 'b', approvedAt: 1, rejected: 'b', rejectedAt: 102, applied: true });
    expect(state.answer(op(3, 'c', true))).toMatchObject({ approved: 'a', previous: 'b', rejected: 'b', rejectedAt: 102 });
    state.answer(op(4, 'b'));
    expect(state.review(review(103, 'approve', 'b'))).toEqual({ op: 'value_review', approved: 'b', last: 'b', approvedAt: 103, rejected: null, rejectedAt: null, applied: true });
    expect(state.review(review(104, 'read'))).toMatchObject({ approved: 'b', applied: false });
  });
});
