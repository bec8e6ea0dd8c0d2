import type { ValueReviewOp, ValueReviewResult, ValueSnapshotOp, ValueSnapshotResult } from '../../../core/state.js';
import { ReplayedKeyState } from './replay-log.js';

/**
 * A value under approval. The result is the state before the operation
 * (`approved`, `previous` = the last value seen, `approvedAt`, `rejected`,
 * `rejectedAt`; all null on first sight). Applying: the value becomes the last
 * seen; it becomes the approved one (at `ts`) when nothing is approved yet
 * (trust on first use), or with `autoApprove` when it differs from the approved
 * one — re-seeing the approved value keeps its `approvedAt`. A rejection stays
 * whatever values are seen: only a review approving that value clears it. A
 * pruned replay (peek) returns the current state and changes nothing.
 */
export class ValueSnapshotState extends ReplayedKeyState<ValueSnapshotOp, ValueSnapshotResult> {
  private approved: string | null = null;
  private approvedAt: number | null = null;
  private last: string | null = null;
  private rejected: string | null = null;
  private rejectedAt: number | null = null;

  protected apply(op: ValueSnapshotOp): ValueSnapshotResult {
    const result = this.peek();
    const { value } = op;
    this.last = value;
    if (this.approved === null || (op.autoApprove && this.approved !== value)) {
      this.approved = value;
      this.approvedAt = op.ts;
    }
    return result;
  }

  protected peek(): ValueSnapshotResult {
    return {
      op: 'value_snapshot',
      approved: this.approved,
      previous: this.last,
      approvedAt: this.approvedAt,
      rejected: this.rejected,
      rejectedAt: this.rejectedAt,
    };
  }

  /**
   * A `value_review` of this key (core/state.ts): applied only when `value` is
   * the last value seen; never logged for replays, as a review has no bus position.
   */
  review(op: ValueReviewOp): ValueReviewResult {
    const applied = op.action !== 'read' && this.last !== null && op.value === this.last;
    if (applied && op.action === 'approve') {
      this.approved = this.last;
      this.approvedAt = op.ts;
      if (this.rejected === this.last) {
        this.rejected = null;
        this.rejectedAt = null;
      }
    } else if (applied) {
      this.rejected = this.last;
      this.rejectedAt = op.ts;
    }
    return {
      op: 'value_review',
      approved: this.approved,
      last: this.last,
      approvedAt: this.approvedAt,
      rejected: this.rejected,
      rejectedAt: this.rejectedAt,
      applied,
    };
  }
}

/** The answer to a review of a key that does not exist (never seen, or expired). */
export function missingValueReview(): ValueReviewResult {
  return { op: 'value_review', approved: null, last: null, approvedAt: null, rejected: null, rejectedAt: null, applied: false };
}
