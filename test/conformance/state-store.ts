import { afterEach, describe, expect, it } from 'vitest';
import type { StateStore } from '../../core/ports.js';
import {
  type CircuitOp,
  agentStateKey,
  LONG_RETENTION_MS,
  type DistinctCountOp,
  type FirstSeenOp,
  type RecentValuesOp,
  type ResultOf,
  type StateOp,
  type StateResult,
  type TokenBucketOp,
  type ValueReviewOp,
  type ValueSnapshotOp,
  type WindowCountOp,
} from '../../core/state.js';
import { validateEvent, type AgentEvent, type AgentEventInput } from '../../core/event.js';
import { pendingApprovals, reviewApproval, type ReviewRequest } from '../../detectors/approvals.js';
import { PolicyEngine, evaluateBatch } from '../../detectors/engine.js';
import { parsePolicyText } from '../../detectors/policy-loader.js';
import { defaultRegistry } from '../../detectors/registry.js';
import { MemoryStateStore } from '../../detectors/state/memory/memory-store.js';

/** A state store under test: the port plus the replay counters both adapters expose. */
export interface ConformanceStateStore extends StateStore {
  readonly replayedOps: number;
  readonly prunedReplayOps: number;
}

interface WindowConfig {
  windowMs: number;
  bucketMs: number;
  latenessMs: number;
  historyWindows: number;
}

/** Small configs make rings wrap and windows close within a few operations. */
const SMALL: WindowConfig = { windowMs: 10, bucketMs: 2, latenessMs: 4, historyWindows: 0 };
/** Buckets that do not divide the window (3.33 buckets per window). */
const UNEVEN: WindowConfig = { windowMs: 10, bucketMs: 3, latenessMs: 0, historyWindows: 0 };
const BASELINE: WindowConfig = { windowMs: 10, bucketMs: 5, latenessMs: 0, historyWindows: 3 };
const LATE_BASELINE: WindowConfig = { windowMs: 6, bucketMs: 2, latenessMs: 10, historyWindows: 5 };
/** The default rate_spike policy: 5-minute window, 30 s buckets, 5 minutes lateness, 48 windows of history. */
export const RATE_SPIKE_DEFAULT: WindowConfig = { windowMs: 300_000, bucketMs: 30_000, latenessMs: 300_000, historyWindows: 48 };
const CONFIGS: readonly WindowConfig[] = [SMALL, UNEVEN, BASELINE, LATE_BASELINE, RATE_SPIKE_DEFAULT];

const T0 = Date.UTC(2026, 10, 24, 10, 0, 0);

function keyOf(agent: string, part = 'rate'): string {
  return agentStateKey('tenant-1', agent, 'policy-1', part);
}

interface Position {
  partition: number;
  offset: number;
  committedOffset: number;
}

const NO_POSITION: Position = { partition: -1, offset: -1, committedOffset: -1 };

function windowOp(key: string, ts: number, config: WindowConfig, position: Position = NO_POSITION): WindowCountOp {
  return { op: 'window_count', key, ...position, ts, ...config };
}

/** Ops for consecutive offsets of one partition, one per timestamp, as a batch starting at `committedOffset`. */
function batchAt(key: string, config: WindowConfig, partition: number, firstOffset: number, times: readonly number[], committedOffset = firstOffset): WindowCountOp[] {
  return times.map((ts, i) => windowOp(key, ts, config, { partition, offset: firstOffset + i, committedOffset }));
}

function counts(results: readonly StateResult[]): number[] {
  return results.map((r) => (r.op === 'window_count' ? r.count : Number.NaN));
}

function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface Delivery {
  ops: StateOp[];
  /** The first complete delivery of these operations (what a failure-free run would apply). */
  first: boolean;
  /** Unpositioned reads of every key: a store must answer them as a failure-free run does. */
  probe?: boolean;
}

interface ScenarioOptions {
  batches: number;
  configChanges: boolean;
  partitionSwitches: boolean;
}

/**
 * A random run of a worker over one partition log: several agents, on-time,
 * late, very late and far-future events, idle gaps, two policies on one event,
 * batches without bus positions, unknown committed offsets — and failures:
 * a crash after part of a batch was applied (then the whole batch again), a
 * committed offset moving backwards (an older batch delivered again), a
 * partition moving (offsets restart elsewhere), a policy config change.
 */
function randomScenario(seed: number, options: ScenarioOptions): { deliveries: Delivery[]; probes: StateOp[] } {
  const rand = mulberry32(seed);
  const int = (n: number): number => Math.floor(rand() * n);
  const agents = Array.from({ length: 4 }, (_, i) => {
    const config = CONFIGS[int(CONFIGS.length)] as WindowConfig;
    return { key: keyOf(`agent-${i}`), config, t: config === RATE_SPIKE_DEFAULT ? T0 : 1000 };
  });
  const nextTime = (agent: (typeof agents)[number]): number => {
    const { windowMs, bucketMs, latenessMs } = agent.config;
    const unit = Math.max(1, Math.floor(bucketMs / 2));
    const r = rand();
    if (r < 0.55) agent.t += int(3) * unit;
    else if (r < 0.67) return agent.t - int(Math.floor(latenessMs / unit) + 1) * unit;
    else if (r < 0.79) return agent.t - latenessMs - (1 + int(Math.ceil(((windowMs + latenessMs) / unit) * 2))) * unit;
    else if (r < 0.87) agent.t += Math.floor((1 + rand() * 6) * windowMs);
    else if (r < 0.9) agent.t += windowMs * (60 + int(40));
    return agent.t;
  };
  const deliveries: Delivery[] = [];
  let partition = 0;
  let offset = 1000 + int(100);
  let previous: { ops: StateOp[]; partition: number } | null = null;
  for (let b = 0; b < options.batches; b++) {
    const positioned = rand() >= 0.06;
    const committedOffset = positioned && rand() >= 0.03 ? offset : -1;
    const ops: StateOp[] = [];
    const events = 1 + int(10);
    for (let e = 0; e < events; e++) {
      const first = int(agents.length);
      const targets = rand() < 0.2 ? [first, (first + 1 + int(agents.length - 1)) % agents.length] : [first];
      const position = positioned ? { partition, offset, committedOffset } : NO_POSITION;
      for (const index of targets) {
        const agent = agents[index] as (typeof agents)[number];
        if (options.configChanges && rand() < 0.03) {
          const config = CONFIGS[int(CONFIGS.length)] as WindowConfig;
          if ((config === RATE_SPIKE_DEFAULT) !== (agent.config === RATE_SPIKE_DEFAULT)) agent.t = config === RATE_SPIKE_DEFAULT ? T0 : 1000;
          agent.config = config;
        }
        ops.push(windowOp(agent.key, nextTime(agent), agent.config, position));
      }
      if (positioned) offset++;
    }
    if (positioned && rand() < 0.15) deliveries.push({ ops: ops.slice(0, int(ops.length)), first: false });
    deliveries.push({ ops, first: true });
    if (previous !== null && previous.partition === partition && rand() < 0.1) deliveries.push({ ops: previous.ops, first: false });
    if (positioned) previous = { ops, partition };
    if (options.partitionSwitches && rand() < 0.04) {
      partition = 1 - partition;
      offset = int(5000);
      previous = null;
    }
  }
  const probes = agents.map((agent) => windowOp(agent.key, agent.t, agent.config));
  return { deliveries, probes };
}

/**
 * The conformance suite of the window state store port: every adapter must give
 * exactly the results of the reference (`MemoryStateStore`, whose window logic
 * is `detectors/state/memory/window.ts`) for the same operations, including
 * replays. `makeStore` is called once per test and must return an empty store
 * (e.g. a fresh random key prefix); the suite closes it.
 */
export function runStateStoreConformance(name: string, makeStore: () => ConformanceStateStore | Promise<ConformanceStateStore>): void {
  describe(`state store conformance: ${name}`, () => {
    let open: ConformanceStateStore[] = [];
    const fresh = async (): Promise<ConformanceStateStore> => {
      const store = await makeStore();
      open.push(store);
      return store;
    };
    afterEach(async () => {
      await Promise.all(open.map((s) => s.close()));
      open = [];
    });

    /** Applies `ops` to the store and the reference; asserts identical results and returns them. */
    const both = async <O extends StateOp>(store: ConformanceStateStore, reference: MemoryStateStore, ops: readonly O[]): Promise<ResultOf<O['op']>[]> => {
      const results = await store.applyStateOps(ops);
      expect(results).toEqual(reference.applyStateOpsSync(ops));
      return results;
    };

    it('counts on-time events in a sliding window at bucket granularity', async () => {
      const store = await fresh();
      const key = keyOf('a');
      // Buckets of 2 ms, 5 per window: ts 0,1 → bucket 0; 2,3 → 1; 9 → 4; 10 → 5; 12 → 6.
      const results = await store.applyStateOps([0, 1, 2, 3, 9, 10, 12].map((ts) => windowOp(key, ts, SMALL)));
      expect(counts(results)).toEqual([1, 2, 3, 4, 5, 4, 3]);
      expect(results.every((r) => !r.late && r.baseline === null && r.op === 'window_count')).toBe(true);
    });

    it('keeps keys apart, and a batch gives the same results as one operation per call', async () => {
      const store = await fresh();
      const ops = [keyOf('a'), keyOf('b'), keyOf('a'), keyOf('a', 'other'), keyOf('b')].map((key, i) => windowOp(key, 100 + i, SMALL));
      expect(counts(await store.applyStateOps(ops))).toEqual([1, 1, 2, 1, 2]);
      const single = await fresh();
      const one: StateResult[] = [];
      for (const op of ops) one.push(...(await single.applyStateOps([op])));
      expect(one).toEqual(await (await fresh()).applyStateOps(ops));
      expect(await store.applyStateOps([])).toEqual([]);
    });

    it('flags late events and still counts them in their own bucket', async () => {
      const store = await fresh();
      const key = keyOf('a');
      // Watermark 20, lateness 4: 19 and 16 are on time, 15 is late (bucket 7, still held).
      const results = await store.applyStateOps([20, 19, 16, 15, 21].map((ts) => windowOp(key, ts, SMALL)));
      expect(results.map((r) => r.late)).toEqual([false, false, false, true, false]);
      // 21 → bucket 10, window buckets 6..10: 15 (7), 16 (8), 19 (9), 20 and 21 (10).
      expect(counts(results)).toEqual([1, 1, 1, 1, 5]);
    });

    it('counts very late events against the buckets still held, without storing them', async () => {
      const store = await fresh();
      const key = keyOf('a');
      // Ring of 8 buckets. 8 → bucket 4 (slot 4); 26 → bucket 13 (slot 5): oldest held is bucket 6,
      // bucket 4 is outside the ring's range but its slot was not reused, so it still counts.
      const results = await store.applyStateOps([8, 26, 9, 9, 7, 12].map((ts) => windowOp(key, ts, SMALL)));
      // 9 → bucket 4, not held: 1 (stored bucket 4) + itself; again 2 (the first was not stored);
      // 7 → bucket 3: window 0..3 holds nothing: itself; 12 → bucket 6, held: window 2..6 → bucket 4 and itself.
      expect(counts(results)).toEqual([1, 1, 2, 2, 1, 2]);
      expect(results.map((r) => r.late)).toEqual([false, false, true, true, true, true]);
    });

    it('uneven buckets: a window covers whole buckets only', async () => {
      const store = await fresh();
      const key = keyOf('a');
      // Buckets of 3 ms, 10/3 per window: the window of bucket b is buckets b-2..b.
      const results = await store.applyStateOps([0, 3, 6, 9, 10, 12].map((ts) => windowOp(key, ts, UNEVEN)));
      // 10 → bucket 3 (3 counts 9 and 10); 12 → bucket 4: buckets 2..4.
      expect(counts(results)).toEqual([1, 2, 3, 3, 4, 4]);
    });

    it('counts windows of many buckets, rings of thousands of slots', async () => {
      const store = await fresh();
      const reference = new MemoryStateStore();
      const config: WindowConfig = { windowMs: 1200, bucketMs: 1, latenessMs: 2000, historyWindows: 4 };
      const rand = mulberry32(99);
      const ops: StateOp[] = [];
      let t = 5000;
      for (let i = 0; i < 300; i++) {
        t += Math.floor(rand() * 40);
        ops.push(windowOp(keyOf('long'), rand() < 0.2 ? t - Math.floor(rand() * 4000) : t, config));
      }
      const results = await both(store, reference, ops);
      expect(Math.max(...counts(results))).toBeGreaterThan(50);
    });

    it('keeps a tumbling history with idle windows as zeros and returns median and MAD of the active windows', async () => {
      const store = await fresh();
      const key = keyOf('a');
      const results = await store.applyStateOps([0, 1, 2, 10, 11, 35, 41, 100].map((ts) => windowOp(key, ts, BASELINE)));
      expect(results.map((r) => r.baseline)).toEqual([
        { windows: 0, median: 0, mad: 0 },
        { windows: 0, median: 0, mad: 0 },
        { windows: 0, median: 0, mad: 0 },
        { windows: 1, median: 3, mad: 0 }, // window 0 closed with 3
        { windows: 1, median: 3, mad: 0 },
        { windows: 2, median: 2.5, mad: 0.5 }, // [3, 2, 0]: window 1 closed with 2, window 2 idle (not counted)
        { windows: 2, median: 1.5, mad: 0.5 }, // [2, 0, 1]
        { windows: 0, median: 0, mad: 0 }, // five idle windows, bounded by the history of 3: no active window left
      ]);
    });

    it('returns half-integer medians and MADs exactly, and ignores events in closed windows', async () => {
      const store = await fresh();
      const key = keyOf('a');
      const config = { ...BASELINE, historyWindows: 2 };
      const results = await store.applyStateOps([0, 1, 2, 10, 11, 20, 5].map((ts) => windowOp(key, ts, config)));
      expect(results[5]?.baseline).toEqual({ windows: 2, median: 2.5, mad: 0.5 });
      expect(results[6]?.baseline).toEqual({ windows: 2, median: 2.5, mad: 0.5 });
      expect(results[6]?.late).toBe(true);
    });

    it('starts a fresh key when the window config changes', async () => {
      const store = await fresh();
      const key = keyOf('a');
      const other = { ...SMALL, windowMs: 20 };
      const results = await store.applyStateOps([
        windowOp(key, 0, SMALL),
        windowOp(key, 1, SMALL),
        windowOp(key, 2, other),
        windowOp(key, 3, other),
        windowOp(key, 4, SMALL),
        windowOp(key, 5, { ...SMALL, historyWindows: 2 }),
      ]);
      expect(counts(results)).toEqual([1, 2, 1, 2, 1, 1]);
      expect(results[5]?.baseline).toEqual({ windows: 0, median: 0, mad: 0 });
    });

    it('applies operations without a bus position every time', async () => {
      const store = await fresh();
      const key = keyOf('a');
      const op = windowOp(key, 10, SMALL);
      const unpositionedOffset = windowOp(key, 10, SMALL, { partition: 0, offset: -1, committedOffset: -1 });
      expect(counts(await store.applyStateOps([op, op, unpositionedOffset, unpositionedOffset]))).toEqual([1, 2, 3, 4]);
      expect(store.replayedOps).toBe(0);
    });

    it('answers a replayed operation with its first result and changes nothing', async () => {
      const store = await fresh();
      const key = keyOf('a');
      const batch = batchAt(key, SMALL, 0, 100, [10, 11, 12]);
      const first = await store.applyStateOps(batch);
      expect(counts(first)).toEqual([1, 2, 3]);
      expect(await store.applyStateOps([batch[1] as StateOp])).toEqual([first[1]]);
      expect(store.replayedOps).toBe(1);
      // Same offset with other content (a replay is decided by position alone).
      expect(await store.applyStateOps([{ ...(batch[0] as WindowCountOp), ts: 1000 }])).toEqual([first[0]]);
      expect(counts(await store.applyStateOps(batchAt(key, SMALL, 0, 103, [13], 100)))).toEqual([4]);
      expect(store.prunedReplayOps).toBe(0);
    });

    it('replays whole batches and partly applied batches exactly', async () => {
      const store = await fresh();
      const reference = new MemoryStateStore();
      const ops: StateOp[] = [];
      for (let i = 0; i < 12; i++) ops.push(windowOp(keyOf(`agent-${i % 3}`), 20 + i, i % 2 === 0 ? SMALL : BASELINE, { partition: 2, offset: 500 + i, committedOffset: 500 }));
      // Per key the configs alternate, so give each key one config.
      for (const op of ops) Object.assign(op, op.key === keyOf('agent-1') ? BASELINE : SMALL);
      const once = await both(store, reference, ops);
      expect(await store.applyStateOps(ops)).toEqual(once);
      expect(store.replayedOps).toBe(12);
      // A crash after 5 operations, then the whole batch again, on a fresh store.
      const crashed = await fresh();
      await crashed.applyStateOps(ops.slice(0, 5));
      expect(await crashed.applyStateOps(ops)).toEqual(once);
      expect(crashed.replayedOps).toBe(5);
      // Both stores continue alike.
      const next = ops.map((op, i) => ({ ...op, offset: 512 + i, committedOffset: 512, ts: op.ts + 3 }));
      expect(await crashed.applyStateOps(next)).toEqual(await store.applyStateOps(next));
    });

    it('keeps replay results, baselines included, until the committed offset passes them', async () => {
      const store = await fresh();
      const reference = new MemoryStateStore();
      const key = keyOf('a');
      // Window 0 closes at offset 2 (stats change); offset 3 has the same stats.
      const batch1 = batchAt(key, BASELINE, 0, 0, [0, 1, 10, 11]);
      const first = await both(store, reference, batch1);
      expect(first[2]?.baseline).toEqual({ windows: 1, median: 2, mad: 0 });
      // The next batch began with offset 3 committed: offsets 0..2 are pruned.
      const batch2 = batchAt(key, BASELINE, 0, 4, [12, 20], 3);
      const second = await both(store, reference, batch2);
      expect(await both(store, reference, [batch1[3] as StateOp, ...batch2])).toEqual([first[3], ...second]);
      expect(store.prunedReplayOps).toBe(0);
      // Offset 2 was pruned: answered from the current state, not applied again.
      // ts 10 → bucket 2, window buckets 1..2 hold 10, 11 and 12; 20 closed window 1, baseline [2, 3].
      const pruned = await both(store, reference, [batch1[2] as StateOp]);
      expect(pruned).toEqual([{ op: 'window_count', count: 3, late: true, baseline: { windows: 2, median: 2.5, mad: 0.5 } }]);
      expect(store.prunedReplayOps).toBe(1);
      expect(store.replayedOps).toBe(4);
      // Nothing was counted twice.
      expect(counts(await both(store, reference, batchAt(key, BASELINE, 0, 6, [21], 6)))).toEqual([2]);
    });

    it('does not keep results below the batch committed offset, and prunes all of them once passed', async () => {
      const store = await fresh();
      const reference = new MemoryStateStore();
      const key = keyOf('a');
      // Offsets 10 and 11 sit below their batch's committed offset 12: applied, not kept.
      await both(store, reference, batchAt(key, SMALL, 0, 10, [1, 2, 3], 12));
      await both(store, reference, batchAt(key, SMALL, 0, 10, [1, 2, 3], 12));
      expect(store.replayedOps).toBe(3);
      expect(store.prunedReplayOps).toBe(2);
      await both(store, reference, batchAt(key, SMALL, 0, 20, [4], 20));
      await both(store, reference, batchAt(key, SMALL, 0, 12, [3], 12));
      expect(store.prunedReplayOps).toBe(3);
    });

    it('applies an operation from another partition, which then owns the key', async () => {
      const store = await fresh();
      const reference = new MemoryStateStore();
      const key = keyOf('a');
      const p0 = batchAt(key, SMALL, 0, 50, [10, 11]);
      await both(store, reference, p0);
      const p1 = batchAt(key, SMALL, 1, 7, [12]);
      expect(counts(await both(store, reference, p1))).toEqual([3]);
      expect(counts(await both(store, reference, p1))).toEqual([3]);
      // Back on partition 0 at an offset it already applied: a new position, applied
      // (ts 11 → bucket 5, window buckets 1..5: 10, 11 and 11 again).
      expect(counts(await both(store, reference, [p0[1] as StateOp]))).toEqual([3]);
      expect(store.replayedOps).toBe(1);
    });

    it('keeps replay results across large offset gaps, large offsets and large counts', async () => {
      const store = await fresh();
      const reference = new MemoryStateStore();
      const key = keyOf('a');
      // Offsets like the in-process bus's (microseconds since the epoch), gaps of every size.
      const gaps = [1, 127, 128, 16_383, 16_384, 2 ** 35, 3];
      let offset = 1_700_000_000_000_000;
      const ops: WindowCountOp[] = [];
      for (let i = 0; i < 150; i++) {
        ops.push(windowOp(key, 100 + (i % 2), BASELINE, { partition: 0, offset, committedOffset: 1_700_000_000_000_000 }));
        offset += gaps[i % gaps.length] as number;
      }
      const first = await both(store, reference, ops);
      expect(first[149]?.count).toBe(150);
      expect(await store.applyStateOps(ops)).toEqual(first);
      // The next batch commits up to the 100th operation: the last 50 are kept, the rest pruned.
      const committed = (ops[100] as WindowCountOp).offset;
      await both(store, reference, [windowOp(key, 102, BASELINE, { partition: 0, offset, committedOffset: committed })]);
      expect(await both(store, reference, ops.slice(100))).toEqual(first.slice(100));
      const prunedBefore = store.prunedReplayOps;
      await both(store, reference, ops.slice(90, 100));
      expect(store.prunedReplayOps - prunedBefore).toBe(10);
    });

    it('replays on one key do not affect replays on another', async () => {
      const store = await fresh();
      const reference = new MemoryStateStore();
      const a = batchAt(keyOf('a'), SMALL, 0, 0, [1, 2]);
      const b = batchAt(keyOf('b'), BASELINE, 0, 2, [1, 2]);
      await both(store, reference, [a[0] as StateOp, b[0] as StateOp, a[1] as StateOp]);
      await both(store, reference, [...a, ...b]);
      expect(store.replayedOps).toBe(3);
    });

    const seeds = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12];
    it.each(seeds)('random run %i: identical results to the reference, replays and failures included', async (seed) => {
      const store = await fresh();
      const reference = new MemoryStateStore();
      const { deliveries } = randomScenario(seed, { batches: 80, configChanges: true, partitionSwitches: true });
      for (const [i, delivery] of deliveries.entries()) {
        const results = await store.applyStateOps(delivery.ops);
        expect(results, `seed ${seed}, delivery ${i}`).toEqual(reference.applyStateOpsSync(delivery.ops));
      }
      expect(store.replayedOps).toBe(reference.replayedOps);
      expect(store.prunedReplayOps).toBe(reference.prunedReplayOps);
    });

    it.each(seeds.slice(0, 6))('random run %i: replays and crashes leave the state of a failure-free run', async (seed) => {
      const store = await fresh();
      const failureFree = new MemoryStateStore();
      const { deliveries, probes } = randomScenario(seed * 7919, { batches: 80, configChanges: false, partitionSwitches: false });
      for (const delivery of deliveries) {
        await store.applyStateOps(delivery.ops);
        if (delivery.first) failureFree.applyStateOpsSync(delivery.ops);
      }
      expect(store.replayedOps).toBeGreaterThan(0);
      expect(await store.applyStateOps(probes)).toEqual(failureFree.applyStateOpsSync(probes));
    });

    newKindCases(fresh, both);
    approvalCases(fresh);
  });
}

// ---------------------------------------------------------------- approvals over the port

const APPROVAL_POLICIES = {
  mode: 'strict',
  policies: [
    { id: 'drift', type: 'capability_drift', config: {} },
    { id: 'keys', type: 'key_rotation', config: {} },
  ],
};

function approvalEvent(i: number, fields: Pick<AgentEventInput, 'capabilities' | 'key'>): AgentEvent {
  const result = validateEvent({
    event_id: `approval-${i}`,
    time: T0 + i * 60_000,
    tenant: 'acme',
    agent: { id: 'agent-7', name: 'cursor' },
    type: fields.key === undefined ? 'capability_change' : 'key_rotation',
    ...fields,
  });
  if (!result.ok) throw new Error(result.reason);
  return result.event;
}

/**
 * A person's side of `capability_drift` and `key_rotation` (detectors/approvals.ts)
 * on the store under test, next to the worker judging events with bus positions
 * (each batch judged twice, the second time as a replay): every verdict, list
 * and review outcome must equal the memory store's.
 */
function approvalCases(fresh: () => Promise<ConformanceStateStore>): void {
  describe('approvals (value_review through detectors/approvals.ts)', () => {
    it('lists, approves and rejects pending values as the reference does; replays judge as they first did', async () => {
      const engine = new PolicyEngine(parsePolicyText(JSON.stringify({ version: 1, ...APPROVAL_POLICIES }), 'approvals'), defaultRegistry);
      const run = async (store: StateStore) => {
        const log: unknown[] = [];
        let offset = 100;
        const judge = async (events: AgentEvent[]) => {
          const position = { partition: 0, offsets: events.map((_, i) => offset + i), committedOffset: offset };
          offset += events.length;
          const first = await evaluateBatch(engine, store, events, position);
          const replay = await evaluateBatch(engine, store, events, position);
          expect(replay.verdicts).toEqual(first.verdicts);
          log.push(first.verdicts.map((v) => [v.event_id, v.policy_id, v.severity, v.would_decide, v.reason, v.evidence]));
        };
        const review = async (request: Omit<ReviewRequest, 'tenant' | 'agent_id'>, now: number) => {
          const outcome = await reviewApproval(engine, store, { tenant: 'acme', agent_id: 'agent-7', ...request }, now);
          log.push(outcome);
          return outcome;
        };
        const pending = async () => {
          const list = await pendingApprovals(engine, store, 'acme', 'agent-7');
          log.push(list);
          return list;
        };
        const reviewedAt = T0 + 3_600_000;
        await judge([approvalEvent(0, { capabilities: ['file_read'] }), approvalEvent(1, { key: { fingerprint: 'SHA256:old' } })]);
        await judge([approvalEvent(2, { capabilities: ['file_read', 'shell'] }), approvalEvent(3, { key: { fingerprint: 'SHA256:new' } })]);
        const listed = await pending();
        expect(listed.map((p) => [p.policy_id, p.pending, p.rejected])).toEqual([
          ['drift', ['file_read', 'shell'], false],
          ['keys', 'SHA256:new', false],
        ]);
        expect(await review({ policy_id: 'drift', action: 'reject', value: listed[0]!.pending_value }, reviewedAt)).toMatchObject({ ok: true });
        expect(await review({ policy_id: 'keys', action: 'approve', value: 'SHA256:new' }, reviewedAt + 1)).toMatchObject({ ok: true });
        await judge([approvalEvent(4, { capabilities: ['shell', 'file_read'] }), approvalEvent(5, { key: { fingerprint: 'SHA256:new' } })]);
        await judge([approvalEvent(6, { capabilities: ['file_read', 'web'] }), approvalEvent(7, { key: { fingerprint: 'SHA256:other' } })]);
        expect(await review({ policy_id: 'drift', action: 'approve', value: listed[0]!.pending_value }, reviewedAt + 2)).toMatchObject({ ok: false, code: 'stale' });
        expect((await pending()).map((p) => [p.policy_id, p.pending, p.rejected])).toEqual([
          ['drift', ['file_read', 'web'], false],
          ['keys', 'SHA256:other', false],
        ]);
        await judge([approvalEvent(8, { capabilities: ['file_read', 'shell'] })]);
        expect((await pending()).map((p) => [p.policy_id, p.rejected])).toEqual([
          ['drift', true],
          ['keys', false],
        ]);
        expect(await review({ policy_id: 'drift', action: 'approve', value: listed[0]!.pending_value }, reviewedAt + 3)).toMatchObject({ ok: true, result: { rejected: null } });
        await judge([approvalEvent(9, { capabilities: ['file_read', 'shell'] }), approvalEvent(10, { key: { fingerprint: 'SHA256:new' } })]);
        expect(await review({ policy_id: 'keys', action: 'reject', value: 'SHA256:new' }, reviewedAt + 4)).toMatchObject({ ok: false, code: 'not_pending' });
        return log;
      };
      const store = await fresh();
      const log = await run(store);
      expect(log).toEqual(await run(new MemoryStateStore()));
      // The rejected set was denied on the events presenting it, and only on those.
      const denied = log.flatMap((entry) => (Array.isArray(entry) ? entry : [])).filter((v): v is unknown[] => Array.isArray(v) && v[3] === 'deny');
      expect(denied.map((v) => [v[0], v[2]])).toEqual([
        ['approval-4', 'critical'],
        ['approval-8', 'critical'],
      ]);
    });
  });
}

// ---------------------------------------------------------------- the replay-log kinds

/** The kinds that keep the shared replay log (a review has no bus position, window_count a log of its own). */
type LogKind = Exclude<StateOp['op'], 'window_count' | 'value_review'>;
const LOG_KINDS: readonly LogKind[] = ['distinct_count', 'first_seen', 'token_bucket', 'value_snapshot', 'recent_values', 'circuit'];

interface DistinctConfig extends WindowConfig {
  maxMembers: number;
}

/** `maxMembers` stays far above the members used: only the memory store has the bound, and Redis's HyperLogLog is exact at these sizes. */
const DSMALL: DistinctConfig = { ...SMALL, maxMembers: 10_000 };
const DUNEVEN: DistinctConfig = { ...UNEVEN, maxMembers: 10_000 };
const DBASELINE: DistinctConfig = { ...BASELINE, maxMembers: 10_000 };

function at(partition: number, offset: number, committedOffset = offset): Position {
  return { partition, offset, committedOffset };
}

function distinctOp(key: string, ts: number, member: string, config: DistinctConfig = DSMALL, position: Position = NO_POSITION): DistinctCountOp {
  return { op: 'distinct_count', key, ...position, ts, member, ...config };
}

function firstSeenOp(key: string, ts: number, member: string, lookbackMs = 0, maxMembers = 1000, position: Position = NO_POSITION): FirstSeenOp {
  return { op: 'first_seen', key, ...position, ts, member, lookbackMs, maxMembers };
}

function tokenOp(key: string, ts: number, capacity: number, refillPerSecond: number, position: Position = NO_POSITION): TokenBucketOp {
  return { op: 'token_bucket', key, ...position, ts, capacity, refillPerSecond };
}

function snapshotOp(key: string, ts: number, value: string, autoApprove = false, position: Position = NO_POSITION): ValueSnapshotOp {
  return { op: 'value_snapshot', key, ...position, ts, value, autoApprove };
}

function reviewOp(key: string, ts: number, action: ValueReviewOp['action'], value?: string, retainMs?: number): ValueReviewOp {
  return { op: 'value_review', key, action, ts, ...(value === undefined ? {} : { value }), ...(retainMs === undefined ? {} : { retainMs }) };
}

interface CircuitConfig {
  windowMs: number;
  minCalls: number;
  errorRatePct: number;
  p95LatencyMs: number;
  openMs: number;
  maxSamples: number;
}

const CIRCUIT: CircuitConfig = { windowMs: 100, minCalls: 4, errorRatePct: 50, p95LatencyMs: 0, openMs: 50, maxSamples: 10 };

function circuitOp(
  key: string,
  ts: number,
  failed: boolean,
  durationMs = -1,
  config: CircuitConfig = CIRCUIT,
  position: Position = NO_POSITION,
  series = 'mcp://git/commit',
  record = true,
): CircuitOp {
  return { op: 'circuit', key, ...position, series, record, ts, failed, durationMs, ...config };
}

function recentOp(key: string, ts: number, value: number, windowMs = 100, maxSamples = 10, position: Position = NO_POSITION, series = 's'): RecentValuesOp {
  return { op: 'recent_values', key, ...position, series, ts, value, windowMs, maxSamples };
}

/** `ops` at consecutive offsets of one partition, as one batch that began with `committedOffset` committed. */
function positioned<O extends StateOp>(ops: readonly O[], partition: number, firstOffset: number, committedOffset = firstOffset): O[] {
  return ops.map((op, i) => ({ ...op, partition, offset: firstOffset + i, committedOffset }));
}

/**
 * The i-th operation of a short per-kind sequence whose results keep changing,
 * so that a replay applied a second time, or an operation skipped, shows.
 */
const SEQUENCES: Record<LogKind, (key: string, i: number) => StateOp> = {
  distinct_count: (key, i) => distinctOp(key, 3 * i, `m${(i * 5) % 7}`, DBASELINE),
  first_seen: (key, i) => firstSeenOp(key, 100 * i, `m${i % 4}`, 250, 3),
  token_bucket: (key, i) => tokenOp(key, 100 * i, 5, 1.5),
  value_snapshot: (key, i) => snapshotOp(key, i, `v${i % 3}`, i % 4 === 0),
  recent_values: (key, i) => recentOp(key, 10 * i, ((i * 7) % 5) - 1.5, 35, 3),
  circuit: (key, i) =>
    circuitOp(key, 7 * i, i % 3 !== 0, (i * 37) % 100, { ...CIRCUIT, windowMs: 30, minCalls: 3, openMs: 20, p95LatencyMs: 90, maxSamples: 4 }, NO_POSITION, 'mcp://git/commit', i % 5 !== 4),
};

function sequence(kind: LogKind, key: string, from: number, to: number): StateOp[] {
  const ops: StateOp[] = [];
  for (let i = from; i < to; i++) ops.push(SEQUENCES[kind](key, i));
  return ops;
}

/**
 * A random run over keys of all five replay-log kinds, shaped like
 * `randomScenario`: on-time, late and very late events, idle gaps, batches
 * without positions or with unknown committed offsets, partial deliveries,
 * redelivered batches and (optionally) partition moves.
 */
function randomLogKindScenario(seed: number, options: { batches: number; partitionSwitches: boolean }): { deliveries: Delivery[]; probes: StateOp[] } {
  const rand = mulberry32(seed);
  const int = (n: number): number => Math.floor(rand() * n);
  // Reviews draw from their own generator, so the bus traffic of a seed stays what it was before reviews existed.
  const reviewRand = mulberry32(seed ^ 0x5eed);
  const reviewInt = (n: number): number => Math.floor(reviewRand() * n);
  const reviewTime = { t: T0 };
  const keys = LOG_KINDS.flatMap((kind, k) => [0, 1].map((j) => ({ kind, variant: j, key: keyOf(`agent-${k}-${j}`, kind), t: 10_000 })));
  const nextTime = (key: (typeof keys)[number]): number => {
    const r = rand();
    if (r < 0.6) key.t += int(4) * 25;
    else if (r < 0.75) return key.t - int(8) * 25;
    else if (r < 0.85) return key.t - 200 - int(40) * 25;
    else if (r < 0.95) key.t += 100 + int(2000);
    else key.t += 100_000;
    return key.t;
  };
  const opFor = (key: (typeof keys)[number], position: Position): StateOp => {
    const ts = nextTime(key);
    switch (key.kind) {
      case 'distinct_count':
        return distinctOp(key.key, ts, `m${int(8)}`, key.variant === 0 ? { ...DSMALL, windowMs: 100, bucketMs: 20, latenessMs: 60 } : { ...DBASELINE, windowMs: 150, bucketMs: 50, historyWindows: 4 }, position);
      case 'first_seen':
        return firstSeenOp(key.key, ts, `m${int(10)}`, key.variant === 0 ? 0 : 300, 4, position);
      case 'token_bucket':
        return tokenOp(key.key, ts, 3, key.variant === 0 ? 2.5 : 0.7, position);
      case 'value_snapshot':
        return snapshotOp(key.key, ts, `v${int(4)}`, rand() < 0.3, position);
      case 'recent_values':
        // Full-precision doubles: a store must hand values back bit for bit.
        return recentOp(key.key, ts, rand() * 100 - 50, key.variant === 0 ? 200 : 75, 5, position);
      case 'circuit':
        return circuitOp(
          key.key,
          ts,
          rand() < 0.4,
          rand() < 0.2 ? -1 : rand() * 1000,
          key.variant === 0 ? CIRCUIT : { ...CIRCUIT, errorRatePct: 0, p95LatencyMs: 700, minCalls: 2, maxSamples: 3 },
          position,
          'mcp://git/commit',
          rand() < 0.85,
        );
    }
  };
  const snapshotKeys = keys.filter((key) => key.kind === 'value_snapshot');
  const deliveries: Delivery[] = [];
  let partition = 0;
  let offset = 1000 + int(100);
  let previous: StateOp[] | null = null;
  for (let b = 0; b < options.batches; b++) {
    const isPositioned = rand() >= 0.06;
    const committedOffset = isPositioned && rand() >= 0.03 ? offset : -1;
    const ops: StateOp[] = [];
    const events = 1 + int(10);
    for (let e = 0; e < events; e++) {
      const position = isPositioned ? { partition, offset, committedOffset } : NO_POSITION;
      ops.push(opFor(keys[int(keys.length)] as (typeof keys)[number], position));
      if (rand() < 0.2) ops.push(opFor(keys[int(keys.length)] as (typeof keys)[number], position));
      if (isPositioned) offset++;
    }
    if (isPositioned && rand() < 0.15) deliveries.push({ ops: ops.slice(0, int(ops.length)), first: false });
    deliveries.push({ ops, first: true });
    if (previous !== null && rand() < 0.1) deliveries.push({ ops: previous, first: false });
    if (isPositioned) previous = ops;
    if (options.partitionSwitches && rand() < 0.04) {
      partition = 1 - partition;
      offset = int(5000);
      previous = null;
    }
    if (b % 10 === 9) deliveries.push({ ops: keys.map((key) => opFor(key, NO_POSITION)), first: true, probe: true });
    // An administrator's reviews, between batches (a review is no bus record and is
    // never redelivered): of the last value or of a stale one, so some apply and
    // some do not; later replays of the snapshots must answer as they first did.
    if (reviewRand() < 0.3) {
      const ops: StateOp[] = [];
      for (const key of snapshotKeys) {
        if (reviewRand() < 0.5) continue;
        const action = (['read', 'approve', 'reject', 'reject'] as const)[reviewInt(4)] as ValueReviewOp['action'];
        reviewTime.t += 1 + reviewInt(60_000);
        ops.push(reviewOp(key.key, reviewTime.t, action, action === 'read' ? undefined : `v${reviewInt(4)}`, reviewRand() < 0.5 ? LONG_RETENTION_MS : undefined));
      }
      if (ops.length > 0) deliveries.push({ ops, first: true });
    }
  }
  const probes = [...keys.map((key) => opFor(key, NO_POSITION)), ...snapshotKeys.map((key) => reviewOp(key.key, reviewTime.t, 'read'))];
  return { deliveries, probes };
}

type Both = <O extends StateOp>(store: ConformanceStateStore, reference: MemoryStateStore, ops: readonly O[]) => Promise<ResultOf<O['op']>[]>;

/** The cases of `distinct_count`, `first_seen`, `token_bucket`, `value_snapshot` and `recent_values`. */
function newKindCases(fresh: () => Promise<ConformanceStateStore>, both: Both): void {
  describe.each(LOG_KINDS)('replays of %s', (kind) => {
    const key = keyOf('a', kind);

    it('answers a replayed batch with its first results, and replays change nothing', async () => {
      const store = await fresh();
      const reference = new MemoryStateStore();
      const batch = positioned(sequence(kind, key, 0, 6), 3, 700);
      const first = await both(store, reference, batch);
      expect(await store.applyStateOps(batch)).toEqual(first);
      expect(store.replayedOps).toBe(6);
      // Same position, other content: a replay is decided by position alone.
      expect(await store.applyStateOps([{ ...(batch[2] as StateOp), ts: 1_000_000 }])).toEqual([first[2]]);
      expect(store.replayedOps).toBe(7);
      // A crash after 3 operations, then the whole batch again.
      const crashed = await fresh();
      await crashed.applyStateOps(batch.slice(0, 3));
      expect(await crashed.applyStateOps(batch)).toEqual(first);
      expect(crashed.replayedOps).toBe(3);
      // All continue like a store that saw each operation once.
      const next = positioned(sequence(kind, key, 6, 12), 3, 706);
      const expected = reference.applyStateOpsSync(next);
      expect(await store.applyStateOps(next)).toEqual(expected);
      expect(await crashed.applyStateOps(next)).toEqual(expected);
      expect(store.prunedReplayOps + crashed.prunedReplayOps).toBe(0);
    });

    it('applies operations without a bus position every time', async () => {
      const store = await fresh();
      const reference = new MemoryStateStore();
      // partition -1 with an offset, and offset -1 on a partition: neither is a position.
      const ops = sequence(kind, key, 0, 6).map((op, i) => ({ ...op, ...(i % 2 === 0 ? at(-1, 5) : at(0, -1, -1)) }));
      const unpositioned = sequence(kind, key, 0, 6);
      expect(await store.applyStateOps(ops)).toEqual(reference.applyStateOpsSync(unpositioned));
      expect(store.replayedOps).toBe(0);
    });

    it("keeps each partition's position and results apart", async () => {
      const store = await fresh();
      const reference = new MemoryStateStore();
      const ops = sequence(kind, key, 0, 5);
      const p0 = positioned(ops.slice(0, 2), 0, 50);
      const p1 = positioned(ops.slice(2, 3), 1, 7);
      const first = await both(store, reference, [...p0, ...p1]);
      // Back on partition 0 at an offset it applied: still a replay.
      expect(await store.applyStateOps([p0[1] as StateOp, p1[0] as StateOp])).toEqual([first[1], first[2]]);
      // Partition 1's committed offset does not prune partition 0's results.
      await both(store, reference, positioned(ops.slice(3, 4), 1, 600));
      expect(await store.applyStateOps([p0[0] as StateOp])).toEqual([first[0]]);
      expect(store.replayedOps).toBe(3);
      expect(store.prunedReplayOps).toBe(0);
      await both(store, reference, positioned(ops.slice(4, 5), 0, 52));
    });

    it('answers replays whose results were not kept from the current state, without applying them', async () => {
      const store = await fresh();
      const reference = new MemoryStateStore();
      // Offsets 10 and 11 sit below their batch's committed offset 12: applied, not kept.
      const batch = positioned(sequence(kind, key, 0, 3), 0, 10, 12);
      await both(store, reference, batch);
      await both(store, reference, batch);
      expect(store.replayedOps).toBe(3);
      expect(store.prunedReplayOps).toBe(2);
      // The next batch commits offset 13, pruning offset 12; it is replayed from the current state.
      const next = positioned(sequence(kind, key, 3, 5), 0, 13, 13);
      const second = await both(store, reference, next);
      expect(await both(store, reference, [batch[2] as StateOp, next[1] as StateOp])).toEqual([expect.anything(), second[1]]);
      expect(store.prunedReplayOps).toBe(3);
      expect(store.replayedOps).toBe(5);
      // Nothing was applied twice: the store continues like one that saw each operation once.
      const failureFree = new MemoryStateStore();
      failureFree.applyStateOpsSync([...batch, ...next]);
      const last = positioned(sequence(kind, key, 5, 8), 0, 15);
      expect(await store.applyStateOps(last)).toEqual(failureFree.applyStateOpsSync(last));
    });
  });

  describe('distinct_count', () => {
    const members = (results: readonly ResultOf<'distinct_count'>[]): number[] => results.map((r) => r.count);

    it('counts distinct members in a sliding window at bucket granularity', async () => {
      const store = await fresh();
      const key = keyOf('a', 'tools');
      const events: [number, string][] = [
        [0, 'a'],
        [1, 'a'],
        [1, 'b'],
        [3, 'a'], // bucket 1: window 0..1 holds a, b
        [9, 'c'], // bucket 4: window 0..4
        [10, 'a'], // bucket 5: window 1..5 holds a (1), c (4), a (5)
        [12, 'b'], // bucket 6: window 2..6 holds c, a, b
        [12, 'b'],
      ];
      const results = await store.applyStateOps(events.map(([ts, m]) => distinctOp(key, ts, m)));
      expect(members(results)).toEqual([1, 1, 2, 2, 3, 2, 3, 3]);
      expect(results.every((r) => r.op === 'distinct_count' && !r.late && r.baseline === null && !r.approximate)).toBe(true);
    });

    it('keeps keys apart, and members are exact strings', async () => {
      const store = await fresh();
      const results = await store.applyStateOps([
        distinctOp(keyOf('a', 'tools'), 5, 'x'),
        distinctOp(keyOf('b', 'tools'), 5, 'x'),
        distinctOp(keyOf('a', 'tools'), 5, 'X'),
        distinctOp(keyOf('a', 'tools'), 5, 'x '),
        distinctOp(keyOf('a', 'tools'), 5, 'ünïcødé/工具:{}'),
        distinctOp(keyOf('a', 'tools'), 5, ''),
        distinctOp(keyOf('a', 'tools'), 5, 'X'),
      ]);
      expect(members(results)).toEqual([1, 1, 2, 3, 4, 5, 5]);
    });

    it('flags late events, and counts them in their own bucket while it is held', async () => {
      const store = await fresh();
      const key = keyOf('a', 'tools');
      // Watermark 20, lateness 4: 19 and 16 are on time, 15 is late (bucket 7, still held).
      const events: [number, string][] = [
        [20, 'x'],
        [19, 'y'],
        [16, 'y'],
        [15, 'x'],
        [21, 'z'], // bucket 10: window 6..10 holds x (7), y (8), y (9), x and z (10)
      ];
      const results = await store.applyStateOps(events.map(([ts, m]) => distinctOp(key, ts, m)));
      expect(results.map((r) => r.late)).toEqual([false, false, false, true, false]);
      expect(members(results)).toEqual([1, 1, 1, 1, 3]);
    });

    it('counts a member too old for the ring once, against the buckets still held, without storing it', async () => {
      const store = await fresh();
      const key = keyOf('a', 'tools');
      // Ring of 8 buckets. 8 → bucket 4; 26 → bucket 13, oldest held 6: bucket 4's slot
      // was not reused, so a window ending at bucket 4 still reads it.
      const events: [number, string][] = [
        [8, 'a'],
        [26, 'b'],
        [9, 'a'], // bucket 4, not stored: {a} and itself
        [9, 'c'], // {a} + c
        [9, 'c'], // c was not stored: again {a} + c
        [7, 'a'], // bucket 3: window 0..3 holds nothing
        [12, 'a'], // bucket 6, held: stored; window 2..6 holds a (4), a (6)
        [12, 'd'],
      ];
      const results = await store.applyStateOps(events.map(([ts, m]) => distinctOp(key, ts, m)));
      expect(members(results)).toEqual([1, 1, 1, 2, 2, 1, 1, 2]);
      expect(results.map((r) => r.late)).toEqual([false, false, true, true, true, true, true, true]);
    });

    it('uneven buckets: a window covers whole buckets only', async () => {
      const store = await fresh();
      const key = keyOf('a', 'tools');
      // Buckets of 3 ms, 10/3 per window: the window of bucket b is buckets b-2..b.
      const events: [number, string][] = [
        [0, 'a'],
        [3, 'b'],
        [6, 'a'],
        [9, 'c'], // buckets 1..3: b, a, c
        [10, 'b'],
        [12, 'a'], // buckets 2..4: a, c b, a
        [15, 'd'], // buckets 3..5: c b, a, d
      ];
      const results = await store.applyStateOps(events.map(([ts, m]) => distinctOp(key, ts, m, DUNEVEN)));
      expect(members(results)).toEqual([1, 2, 2, 3, 3, 3, 4]);
    });

    it('keeps a tumbling history of distinct counts, idle windows as zeros, ignoring closed windows', async () => {
      const store = await fresh();
      const key = keyOf('a', 'tools');
      const events: [number, string][] = [
        [0, 'a'],
        [1, 'a'],
        [2, 'b'],
        [10, 'a'], // window 0 closed with 2 members (3 events)
        [11, 'c'],
        [11, 'a'],
        [35, 'a'], // window 1 closed with 2, window 2 idle: [2, 2, 0]
        [41, 'b'], // window 3 closed with 1: [2, 0, 1]
        [5, 'z'], // window 0 is closed: no change
        [100, 'c'], // window 4 closed with 1, then five idle windows: [0, 0, 0]
      ];
      const results = await store.applyStateOps(events.map(([ts, m]) => distinctOp(key, ts, m, DBASELINE)));
      const none = { windows: 0, median: 0, mad: 0 };
      expect(results.map((r) => r.baseline)).toEqual([
        none,
        none,
        none,
        { windows: 1, median: 2, mad: 0 },
        { windows: 1, median: 2, mad: 0 },
        { windows: 1, median: 2, mad: 0 },
        { windows: 2, median: 2, mad: 0 }, // the idle window does not count
        { windows: 2, median: 1.5, mad: 0.5 },
        { windows: 2, median: 1.5, mad: 0.5 },
        none, // only idle windows left
      ]);
      // 5 → bucket 1, not held (oldest held is 6), late; window 0..1 reads bucket 0 (a, b), whose slot was not reused.
      expect(results[8]).toEqual({ op: 'distinct_count', count: 3, late: true, baseline: { windows: 2, median: 1.5, mad: 0.5 }, approximate: false });
    });

    it('returns half-integer medians and MADs exactly', async () => {
      const store = await fresh();
      const key = keyOf('a', 'tools');
      const config = { ...DBASELINE, historyWindows: 2 };
      const events: [number, string][] = [
        [0, 'a'],
        [1, 'b'],
        [10, 'a'],
        [11, 'b'],
        [12, 'c'],
        [20, 'a'], // [2, 3]
      ];
      const results = await store.applyStateOps(events.map(([ts, m]) => distinctOp(key, ts, m, config)));
      expect(results[5]?.baseline).toEqual({ windows: 2, median: 2.5, mad: 0.5 });
    });

    it('starts a fresh key, replay memory included, when the window config changes', async () => {
      const store = await fresh();
      const key = keyOf('a', 'tools');
      const other = { ...DSMALL, windowMs: 20 };
      const results = await store.applyStateOps([
        distinctOp(key, 0, 'a', DSMALL, at(0, 10)),
        distinctOp(key, 1, 'b', DSMALL, at(0, 11)),
        distinctOp(key, 2, 'c', other, at(0, 11)), // not a replay: the fresh key has no position yet
        distinctOp(key, 3, 'a', other, at(0, 11)), // a replay of the line above
        distinctOp(key, 4, 'a', DSMALL, at(0, 12)),
        distinctOp(key, 5, 'b', { ...DSMALL, maxMembers: 500 }, at(0, 13)), // maxMembers is no window config
        distinctOp(key, 6, 'c', { ...DSMALL, historyWindows: 2 }, at(0, 14)),
      ]);
      expect(members(results)).toEqual([1, 2, 1, 1, 1, 2, 1]);
      expect(results[6]?.baseline).toEqual({ windows: 0, median: 0, mad: 0 });
      expect(store.replayedOps).toBe(1);
    });

    it('answers a pruned replay with the current window, the member included, without storing it', async () => {
      const store = await fresh();
      const key = keyOf('a', 'tools');
      const batch = positioned(
        [distinctOp(key, 10, 'a'), distinctOp(key, 11, 'b'), distinctOp(key, 12, 'a')],
        0,
        100,
      );
      expect(members(await store.applyStateOps(batch))).toEqual([1, 2, 2]);
      // Offsets 100..102 pruned by the next batch's committed offset.
      const next = positioned([distinctOp(key, 13, 'c'), distinctOp(key, 14, 'd')], 0, 103);
      expect(members(await store.applyStateOps(next))).toEqual([3, 4]);
      const replays = await store.applyStateOps([
        { ...(batch[1] as DistinctCountOp), committedOffset: 103 }, // ts 11 → bucket 5, window 1..5: a, b
        { ...(batch[1] as DistinctCountOp), member: 'e', ts: 2 }, // bucket 1, window -3..1 holds nothing: the member alone; 2 < 14 - 4: late
      ]);
      expect(replays).toEqual([
        { op: 'distinct_count', count: 2, late: false, baseline: null, approximate: false },
        { op: 'distinct_count', count: 1, late: true, baseline: null, approximate: false },
      ]);
      expect(store.prunedReplayOps).toBe(2);
      expect(members(await store.applyStateOps(positioned([distinctOp(key, 14, 'x')], 0, 105)))).toEqual([5]);
    });
  });

  describe('first_seen', () => {
    const seen = (results: readonly ResultOf<'first_seen'>[]): [boolean, number | null, number][] => results.map((r) => [r.first, r.lastSeen, r.members]);

    it("remembers each member's newest time; a late sighting neither is first nor moves it back", async () => {
      const store = await fresh();
      const key = keyOf('a', 'servers');
      const results = await store.applyStateOps([
        firstSeenOp(key, 100, 'a'),
        firstSeenOp(key, 200, 'b'),
        firstSeenOp(key, 300, 'a'),
        firstSeenOp(key, 250, 'a'),
        firstSeenOp(key, 400, 'a'),
        firstSeenOp(keyOf('b', 'servers'), 400, 'a'),
        firstSeenOp(key, 500, 'A'),
      ]);
      expect(seen(results)).toEqual([
        [true, null, 1],
        [true, null, 2],
        [false, 100, 2],
        [false, 300, 2],
        [false, 300, 2],
        [true, null, 1],
        [true, null, 3],
      ]);
    });

    it('forgets a member last seen more than lookbackMs ago; lookbackMs 0 never forgets', async () => {
      const store = await fresh();
      const key = keyOf('a', 'servers');
      const results = await store.applyStateOps([
        firstSeenOp(key, 0, 'a', 100),
        firstSeenOp(key, 100, 'a', 100), // exactly lookbackMs later: not new
        firstSeenOp(key, 201, 'a', 100), // 101 later: new again
        firstSeenOp(key, 150, 'a', 100), // late
        firstSeenOp(key, 1_000_000, 'a', 0),
        firstSeenOp(key, 2_000_000, 'a', 999_999),
      ]);
      expect(seen(results)).toEqual([
        [true, null, 1],
        [false, 0, 1],
        [true, 100, 1],
        [false, 201, 1],
        [false, 201, 1],
        [true, 1_000_000, 1],
      ]);
    });

    it('forgets the members seen longest ago past maxMembers, ties broken by the smaller member', async () => {
      const store = await fresh();
      const key = keyOf('a', 'servers');
      const results = await store.applyStateOps([
        firstSeenOp(key, 5, 'm', 0, 2),
        firstSeenOp(key, 5, 'k', 0, 2),
        firstSeenOp(key, 6, 'z', 0, 2), // forgets k (time 5, k < m)
        firstSeenOp(key, 7, 'm', 0, 2), // m is still known
        firstSeenOp(key, 8, 'k', 0, 2), // k is new again; forgets z (6)
        firstSeenOp(key, 1, 'q', 0, 2), // new and the oldest: forgotten at once
        firstSeenOp(key, 9, 'q', 0, 2), // so new again; forgets m (7)
        firstSeenOp(key, 10, 'k', 0, 5),
        firstSeenOp(key, 11, 'a', 0, 5),
        firstSeenOp(key, 12, 'b', 0, 5),
        firstSeenOp(key, 13, 'c', 0, 5),
        firstSeenOp(key, 14, 'd', 0, 2), // a smaller bound forgets several: q (9), k (10), a (11), b (12)
        firstSeenOp(key, 15, 'B', 0, 3),
        firstSeenOp(key, 15, 'a', 0, 3), // forgets c (13)
        firstSeenOp(key, 15, 'C', 0, 2), // forgets d (14), then B of B, a, C at 15 ('B' < 'C' < 'a')
        firstSeenOp(key, 16, 'e', 0, 2), // forgets C of a, C at 15
      ]);
      expect(seen(results)).toEqual([
        [true, null, 1],
        [true, null, 2],
        [true, null, 2],
        [false, 5, 2],
        [true, null, 2],
        [true, null, 2],
        [true, null, 2],
        [false, 8, 2],
        [true, null, 3],
        [true, null, 4],
        [true, null, 5],
        [true, null, 2],
        [true, null, 3],
        [true, null, 3],
        [true, null, 2],
        [true, null, 2],
      ]);
      const after = await store.applyStateOps([firstSeenOp(key, 17, 'a', 0, 10), firstSeenOp(key, 17, 'B', 0, 10), firstSeenOp(key, 17, 'C', 0, 10)]);
      expect(seen(after)).toEqual([
        [false, 15, 2],
        [true, null, 3],
        [true, null, 4],
      ]);
    });

    it('answers a pruned replay from the current times without recording anything', async () => {
      const store = await fresh();
      const key = keyOf('a', 'servers');
      const batch = positioned([firstSeenOp(key, 100, 'a'), firstSeenOp(key, 200, 'b'), firstSeenOp(key, 300, 'a')], 0, 0);
      await store.applyStateOps(batch);
      const next = positioned([firstSeenOp(key, 400, 'c')], 0, 3);
      expect(seen(await store.applyStateOps(next))).toEqual([[true, null, 3]]);
      const replays = await store.applyStateOps([batch[2] as StateOp, batch[0] as StateOp, { ...(batch[1] as FirstSeenOp), member: 'new' }, next[0] as StateOp]);
      expect(seen(replays as ResultOf<'first_seen'>[])).toEqual([
        [false, 300, 3],
        [false, 300, 3],
        [true, null, 3],
        [true, null, 3],
      ]);
      expect(store.prunedReplayOps).toBe(3);
      expect(store.replayedOps).toBe(4);
      expect(seen(await store.applyStateOps([firstSeenOp(key, 500, 'new')]))).toEqual([[true, null, 4]]);
    });
  });

  describe('token_bucket', () => {
    const taken = (results: readonly ResultOf<'token_bucket'>[]): [boolean, number][] => results.map((r) => [r.allowed, r.tokens]);

    it('starts full, takes one token per allowed event, refills by event time, and a late event refills nothing', async () => {
      const store = await fresh();
      const key = keyOf('a', 'bucket');
      const results = await store.applyStateOps([0, 0, 0, 0, 1000, 2000, 1500, 10_000, 10_000].map((ts) => tokenOp(key, ts, 3, 0.5)));
      expect(taken(results)).toEqual([
        [true, 2],
        [true, 1],
        [true, 0],
        [false, 0],
        [false, 0.5],
        [true, 0],
        [false, 0],
        [true, 2], // refilled to capacity, not beyond
        [true, 1],
      ]);
    });

    it('takes capacity and refill rate from each operation, without a reset', async () => {
      const store = await fresh();
      const key = keyOf('a', 'bucket');
      const results = await store.applyStateOps([tokenOp(key, 0, 3, 1), tokenOp(key, 0, 1, 1), tokenOp(key, 500, 1, 4), tokenOp(key, 1000, 10, 4)]);
      expect(taken(results)).toEqual([
        [true, 2],
        [true, 0], // min(1, 2) - 1
        [true, 0], // min(1, 0 + 2) - 1
        [true, 1], // min(10, 0 + 2) - 1: a raised capacity refills nothing by itself
      ]);
    });

    it('computes fractional tokens in IEEE doubles, in the documented order', async () => {
      const store = await fresh();
      const reference = new MemoryStateStore();
      const key = keyOf('a', 'bucket');
      const rand = mulberry32(7);
      const ops: TokenBucketOp[] = [];
      let t = T0;
      for (let i = 0; i < 120; i++) {
        t += Math.floor(rand() * 900);
        const rate = [0.1, 7 / 3, 0.7, 1e-3, 12.5][i % 5] as number;
        ops.push(tokenOp(key, rand() < 0.15 ? t - Math.floor(rand() * 2000) : t, i < 60 ? 4 : 2.5, rate));
      }
      const results = await both(store, reference, ops);
      // The formula, evaluated independently of any store.
      let tokens = 4;
      let clock = ops[0]?.ts as number;
      const expected = ops.map((op) => {
        const now = Math.max(clock, op.ts);
        tokens = Math.min(op.capacity, tokens + ((now - clock) * op.refillPerSecond) / 1000);
        clock = now;
        const allowed = tokens >= 1;
        if (allowed) tokens = tokens - 1;
        return [allowed, tokens];
      });
      expect(taken(results)).toEqual(expected);
      expect(results.some((r) => !Number.isInteger(r.tokens) && String(r.tokens).length > 12)).toBe(true);
    });

    it('answers a pruned replay with the refill and take it would get now, without taking', async () => {
      const store = await fresh();
      const key = keyOf('a', 'bucket');
      const batch = positioned([0, 0, 0, 0].map((ts) => tokenOp(key, ts, 3, 0.5)), 0, 0);
      await store.applyStateOps(batch);
      expect(taken(await store.applyStateOps(positioned([tokenOp(key, 1000, 3, 0.5)], 0, 4)))).toEqual([[false, 0.5]]);
      // Offset 1 was pruned: now = max(clock 1000, ts 0), 0.5 tokens: not allowed.
      expect(taken(await store.applyStateOps([batch[1] as StateOp]) as ResultOf<'token_bucket'>[])).toEqual([[false, 0.5]]);
      expect(taken(await store.applyStateOps(positioned([tokenOp(key, 2000, 3, 0.5), tokenOp(key, 10_000, 3, 0.5)], 0, 5, 6)))).toEqual([
        [true, 0],
        [true, 2],
      ]);
      // Offset 5 was pruned: refilled to 3 at clock 10000, one taken in the answer only.
      expect(taken(await store.applyStateOps([{ ...(batch[0] as TokenBucketOp), offset: 5 }]) as ResultOf<'token_bucket'>[])).toEqual([[true, 1]]);
      expect(taken(await store.applyStateOps(positioned([tokenOp(key, 10_000, 3, 0.5)], 0, 7)))).toEqual([[true, 1]]);
      expect(store.prunedReplayOps).toBe(2);
    });
  });

  describe('value_snapshot', () => {
    const snap = (results: readonly ResultOf<'value_snapshot'>[]): [string | null, string | null, number | null][] =>
      results.map((r) => [r.approved, r.previous, r.approvedAt]);

    it('approves the first value seen, then reports the approved and the previous value', async () => {
      const store = await fresh();
      const key = keyOf('a', 'capabilities');
      const results = await store.applyStateOps([
        snapshotOp(key, 10, 'x'),
        snapshotOp(key, 20, 'y'),
        snapshotOp(key, 30, 'y'),
        snapshotOp(key, 40, 'z', true), // auto-approved after this operation
        snapshotOp(key, 50, 'z', true),
        snapshotOp(key, 60, 'z', true), // the approved value again: approvedAt stays
        snapshotOp(key, 70, 'x'),
        snapshotOp(key, 80, 'x'),
        snapshotOp(key, 5, 'q', true), // a late value is approved at its own event time
        snapshotOp(key, 90, ''),
        snapshotOp(key, 95, 'sha256:ab…/{ü}'),
        snapshotOp(keyOf('b', 'capabilities'), 100, 'x'),
      ]);
      expect(snap(results)).toEqual([
        [null, null, null],
        ['x', 'x', 10],
        ['x', 'y', 10],
        ['x', 'y', 10],
        ['z', 'z', 40],
        ['z', 'z', 40],
        ['z', 'z', 40],
        ['z', 'x', 40],
        ['z', 'x', 40],
        ['q', 'q', 5],
        ['q', '', 5],
        [null, null, null],
      ]);
    });

    it('answers a pruned replay with the current snapshot without recording the value', async () => {
      const store = await fresh();
      const key = keyOf('a', 'capabilities');
      const batch = positioned([snapshotOp(key, 1, 'a'), snapshotOp(key, 2, 'b', true), snapshotOp(key, 3, 'c')], 0, 0);
      expect(snap(await store.applyStateOps(batch))).toEqual([
        [null, null, null],
        ['a', 'a', 1],
        ['b', 'b', 2],
      ]);
      expect(snap(await store.applyStateOps(positioned([snapshotOp(key, 4, 'd')], 0, 3)))).toEqual([['b', 'c', 2]]);
      const replays = await store.applyStateOps([batch[1] as StateOp, { ...(batch[0] as ValueSnapshotOp), value: 'e', autoApprove: true }]);
      expect(snap(replays as ResultOf<'value_snapshot'>[])).toEqual([
        ['b', 'd', 2],
        ['b', 'd', 2],
      ]);
      expect(snap(await store.applyStateOps([snapshotOp(key, 5, 'f')]))).toEqual([['b', 'd', 2]]);
      expect(store.prunedReplayOps).toBe(2);
    });
  });

  describe('value_review', () => {
    type Reviewed = [approved: string | null, last: string | null, approvedAt: number | null, rejected: string | null, rejectedAt: number | null, applied: boolean];
    const reviewed = (results: readonly StateResult[]): Reviewed[] =>
      results.map((r) => {
        if (r.op !== 'value_review') throw new Error(`expected a value_review result, got ${r.op}`);
        return [r.approved, r.last, r.approvedAt, r.rejected, r.rejectedAt, r.applied];
      });
    const snapped = (results: readonly StateResult[]): [string | null, string | null, number | null, string | null, number | null][] =>
      results.map((r) => {
        if (r.op !== 'value_snapshot') throw new Error(`expected a value_snapshot result, got ${r.op}`);
        return [r.approved, r.previous, r.approvedAt, r.rejected, r.rejectedAt];
      });
    const NOTHING: Reviewed = [null, null, null, null, null, false];

    it('reads a missing key as nulls, and neither a read nor a review creates it', async () => {
      const store = await fresh();
      const reference = new MemoryStateStore();
      const key = keyOf('a', 'capabilities');
      const results = await both(store, reference, [
        reviewOp(key, 1000, 'read'),
        reviewOp(key, 1001, 'approve', 'x', LONG_RETENTION_MS),
        reviewOp(key, 1002, 'reject', ''),
        reviewOp(key, 1003, 'read'),
      ]);
      expect(reviewed(results)).toEqual([NOTHING, NOTHING, NOTHING, NOTHING]);
      // Still first sight: the value is trusted on first use.
      expect(snapped(await both(store, reference, [snapshotOp(key, 10, 'x')]))).toEqual([[null, null, null, null, null]]);
    });

    it('approves the last value seen; the snapshot then reports it approved at the review time', async () => {
      const store = await fresh();
      const reference = new MemoryStateStore();
      const key = keyOf('a', 'capabilities');
      await both(store, reference, [snapshotOp(key, 10, 'x'), snapshotOp(key, 20, 'y')]);
      const results = await both(store, reference, [reviewOp(key, 1000, 'read'), reviewOp(key, 1001, 'approve', 'y', LONG_RETENTION_MS), reviewOp(key, 1002, 'read')]);
      expect(reviewed(results)).toEqual([
        ['x', 'y', 10, null, null, false],
        ['y', 'y', 1001, null, null, true],
        ['y', 'y', 1001, null, null, false],
      ]);
      expect(snapped(await both(store, reference, [snapshotOp(key, 30, 'y'), snapshotOp(key, 40, 'x')]))).toEqual([
        ['y', 'y', 1001, null, null],
        ['y', 'y', 1001, null, null],
      ]);
      // Approving the empty value (an agent that lost every capability) works too.
      await both(store, reference, [snapshotOp(key, 50, '')]);
      expect(reviewed(await both(store, reference, [reviewOp(key, 1100, 'approve', '')]))).toEqual([['', '', 1100, null, null, true]]);
    });

    it('applies nothing when the value reviewed is not the last value seen', async () => {
      const store = await fresh();
      const reference = new MemoryStateStore();
      const key = keyOf('a', 'key');
      await both(store, reference, [snapshotOp(key, 10, 'x'), snapshotOp(key, 20, 'y'), snapshotOp(key, 30, 'z')]);
      const results = await both(store, reference, [
        reviewOp(key, 1000, 'approve', 'y'),
        reviewOp(key, 1001, 'reject', 'y'),
        reviewOp(key, 1002, 'approve', 'x'),
        reviewOp(key, 1003, 'read', 'z'),
        reviewOp(key, 1004, 'read'),
      ]);
      expect(reviewed(results)).toEqual(Array.from({ length: 5 }, () => ['x', 'z', 10, null, null, false]));
      expect(snapped(await both(store, reference, [snapshotOp(key, 40, 'z')]))).toEqual([['x', 'z', 10, null, null]]);
    });

    it('rejects the last value: snapshots report it until that value is approved', async () => {
      const store = await fresh();
      const reference = new MemoryStateStore();
      const key = keyOf('a', 'key');
      await both(store, reference, [snapshotOp(key, 10, 'x'), snapshotOp(key, 20, 'y')]);
      expect(reviewed(await both(store, reference, [reviewOp(key, 500, 'reject', 'y', LONG_RETENTION_MS)]))).toEqual([['x', 'y', 10, 'y', 500, true]]);
      expect(snapped(await both(store, reference, [snapshotOp(key, 30, 'y'), snapshotOp(key, 40, 'z'), snapshotOp(key, 50, 'x'), snapshotOp(key, 60, 'z', true)]))).toEqual([
        ['x', 'y', 10, 'y', 500],
        ['x', 'y', 10, 'y', 500],
        ['x', 'z', 10, 'y', 500],
        ['x', 'x', 10, 'y', 500],
      ]);
      // Approving another value keeps the rejection; rejecting again replaces it.
      expect(reviewed(await both(store, reference, [reviewOp(key, 600, 'approve', 'z')]))).toEqual([['z', 'z', 600, 'y', 500, true]]);
      await both(store, reference, [snapshotOp(key, 70, 'y')]);
      expect(reviewed(await both(store, reference, [reviewOp(key, 700, 'reject', 'y'), reviewOp(key, 800, 'approve', 'y')]))).toEqual([
        ['z', 'y', 600, 'y', 700, true],
        ['y', 'y', 800, null, null, true],
      ]);
      expect(snapped(await both(store, reference, [snapshotOp(key, 80, 'y')]))).toEqual([['y', 'y', 800, null, null]]);
      // The approved value can be rejected (a revocation); it stays the approved one.
      expect(reviewed(await both(store, reference, [reviewOp(key, 900, 'reject', 'y')]))).toEqual([['y', 'y', 800, 'y', 900, true]]);
      expect(snapped(await both(store, reference, [snapshotOp(key, 90, 'y')]))).toEqual([['y', 'y', 800, 'y', 900]]);
    });

    it('leaves replays alone: a replayed snapshot answers as it first did, a pruned one from the reviewed state', async () => {
      const store = await fresh();
      const reference = new MemoryStateStore();
      const key = keyOf('a', 'capabilities');
      // Kept for replays until a later batch commits past them.
      const batch = positioned([snapshotOp(key, 1, 'a'), snapshotOp(key, 2, 'b'), snapshotOp(key, 3, 'b')], 0, 0);
      const first = await both(store, reference, batch);
      expect(reviewed(await both(store, reference, [reviewOp(key, 100, 'reject', 'b')]))).toEqual([['a', 'b', 1, 'b', 100, true]]);
      expect(await both(store, reference, batch)).toEqual(first);
      // A review is never a replay, whatever position it might carry.
      expect(reviewed(await both(store, reference, [{ ...reviewOp(key, 101, 'read'), partition: 0, offset: 1, committedOffset: 0 }]))).toEqual([['a', 'b', 1, 'b', 100, false]]);
      const next = positioned([snapshotOp(key, 4, 'b')], 0, 3);
      expect(snapped(await both(store, reference, next))).toEqual([['a', 'b', 1, 'b', 100]]);
      expect(reviewed(await both(store, reference, [reviewOp(key, 200, 'approve', 'b')]))).toEqual([['b', 'b', 200, null, null, true]]);
      // Offsets 0–2 were pruned when offset 3 committed them: answered from the current state.
      expect(snapped(await both(store, reference, [batch[0] as StateOp, ...next]))).toEqual([
        ['b', 'b', 200, null, null],
        ['a', 'b', 1, 'b', 100],
      ]);
      expect(store.replayedOps).toBe(reference.replayedOps);
      expect(store.prunedReplayOps).toBe(reference.prunedReplayOps);
    });

    it('keeps a rejection stored in the replay log apart from the previous value', async () => {
      const store = await fresh();
      const reference = new MemoryStateStore();
      const key = keyOf('a', 'capabilities');
      await both(store, reference, [snapshotOp(key, 1, 'a'), snapshotOp(key, 2, 'b')]);
      await both(store, reference, [reviewOp(key, 100, 'reject', 'b')]);
      // previous = rejected = b, then previous c with b rejected, then previous = approved = a.
      const batch = positioned([snapshotOp(key, 3, 'c'), snapshotOp(key, 4, 'a'), snapshotOp(key, 5, 'a')], 0, 10);
      const first = await both(store, reference, batch);
      expect(snapped(first)).toEqual([
        ['a', 'b', 1, 'b', 100],
        ['a', 'c', 1, 'b', 100],
        ['a', 'a', 1, 'b', 100],
      ]);
      expect(await both(store, reference, batch)).toEqual(first);
    });

    it('reviews among other operations of one batch, on several keys', async () => {
      const store = await fresh();
      const reference = new MemoryStateStore();
      const a = keyOf('a', 'capabilities');
      const b = keyOf('b', 'capabilities');
      const results = await both(store, reference, [
        snapshotOp(a, 1, 'x'),
        windowOp(keyOf('a'), 1, SMALL),
        snapshotOp(a, 2, 'y'),
        reviewOp(a, 10, 'approve', 'y'),
        reviewOp(b, 11, 'read'),
        snapshotOp(a, 3, 'y'),
        snapshotOp(b, 4, 'z'),
        reviewOp(b, 12, 'reject', 'z'),
        snapshotOp(b, 5, 'z'),
      ]);
      expect(results.map((r) => r.op)).toEqual(['value_snapshot', 'window_count', 'value_snapshot', 'value_review', 'value_review', 'value_snapshot', 'value_snapshot', 'value_review', 'value_snapshot']);
      expect(snapped([results[5] as StateResult, results[8] as StateResult])).toEqual([
        ['y', 'y', 10, null, null],
        ['z', 'z', 4, 'z', 12],
      ]);
    });
  });

  describe('circuit', () => {
    const brief = (r: ResultOf<'circuit'>): string => `${r.open ? 'open' : 'closed'}${r.tripped ? '!' : ''} ${r.failures}/${r.calls} p95=${r.p95 ?? '-'}${r.openedAt === null ? '' : ` @${r.openedAt}`}`;

    it('opens on the error rate once min_calls are in the window, strictly above the bound', async () => {
      const store = await fresh();
      const key = keyOf('a', 'circuit');
      const results = await store.applyStateOps([
        circuitOp(key, 1, false),
        circuitOp(key, 2, true),
        circuitOp(key, 3, false),
        circuitOp(key, 4, true), // 2 of 4 = 50 %: not above 50
        circuitOp(key, 5, true), // 3 of 5 = 60 %: opens
        circuitOp(key, 6, false), // stays open
      ]);
      expect(results.map(brief)).toEqual(['closed 0/1 p95=-', 'closed 1/2 p95=-', 'closed 1/3 p95=-', 'closed 2/4 p95=-', 'open! 3/5 p95=- @5', 'open 3/6 p95=- @5']);
    });

    it('opens on the nearest-rank p95 latency of the known durations', async () => {
      const store = await fresh();
      const key = keyOf('a', 'circuit');
      const config = { ...CIRCUIT, errorRatePct: 0, p95LatencyMs: 450, minCalls: 5, maxSamples: 50 };
      const ops = [100, 200, -1, 300, 400, 500, 600].map((d, i) => circuitOp(key, 10 + i, false, d, config));
      const results = await store.applyStateOps(ops);
      // Known latencies at the 6th call: 100..500 → p95 is the 5th smallest, 500 > 450.
      expect(results.map(brief)).toEqual([
        'closed 0/1 p95=100',
        'closed 0/2 p95=200',
        'closed 0/3 p95=200',
        'closed 0/4 p95=300',
        'closed 0/5 p95=400',
        'open! 0/6 p95=500 @15',
        'open 0/7 p95=600 @15',
      ]);
    });

    it('closes after open_ms and forgets its samples; old calls leave the window', async () => {
      const store = await fresh();
      const key = keyOf('a', 'circuit');
      const results = await store.applyStateOps([
        ...[0, 1, 2, 3, 4].map((t) => circuitOp(key, t, true)), // opens at 3 (3 of 4... 4 of 4)
        circuitOp(key, 40, false), // still open
        circuitOp(key, 54, false), // 3 + 50 passed: closed, fresh
        circuitOp(key, 60, true),
        circuitOp(key, 200, true), // the calls at 54 and 60 are outside (100, 200]
      ]);
      expect(results.map(brief)).toEqual([
        'closed 1/1 p95=-',
        'closed 2/2 p95=-',
        'closed 3/3 p95=-',
        'open! 4/4 p95=- @3',
        'open 5/5 p95=- @3',
        'open 5/6 p95=- @3',
        'closed 0/1 p95=-',
        'closed 1/2 p95=-',
        'closed 1/1 p95=-',
      ]);
    });

    it('judges calls not yet made (record false) without counting them', async () => {
      const store = await fresh();
      const key = keyOf('a', 'circuit');
      const ask = (ts: number) => circuitOp(key, ts, false, -1, CIRCUIT, NO_POSITION, 'mcp://git/commit', false);
      const results = await store.applyStateOps([
        ask(0),
        ...[1, 2, 3, 4].map((t) => circuitOp(key, t, true)),
        ask(5), // open: the call would be denied; nothing counted
        ask(53), // a millisecond before 4 + 50: still open
        ask(54), // 4 + 50 passed: closed again, samples forgotten
        circuitOp(key, 55, true),
      ]);
      expect(results.map(brief)).toEqual([
        'closed 0/0 p95=-',
        'closed 1/1 p95=-',
        'closed 2/2 p95=-',
        'closed 3/3 p95=-',
        'open! 4/4 p95=- @4',
        'open 4/4 p95=- @4',
        'open 4/4 p95=- @4',
        'closed 0/0 p95=-',
        'closed 1/1 p95=-',
      ]);
    });

    it('keeps series apart, bounds the samples and answers replays with their first result', async () => {
      const store = await fresh();
      const key = keyOf('a', 'circuit');
      const config = { ...CIRCUIT, maxSamples: 3, minCalls: 10 };
      const ops = [
        circuitOp(key, 1, true, 10, config, { partition: 0, offset: 1, committedOffset: 1 }, 'x'),
        circuitOp(key, 2, false, 20, config, { partition: 0, offset: 2, committedOffset: 1 }, 'y'),
        circuitOp(key, 3, true, 30, config, { partition: 0, offset: 3, committedOffset: 1 }, 'x'),
        circuitOp(key, 4, true, 40, config, { partition: 0, offset: 4, committedOffset: 1 }, 'x'),
        circuitOp(key, 5, false, 50, config, { partition: 0, offset: 5, committedOffset: 1 }, 'x'),
      ];
      const first = await store.applyStateOps(ops);
      expect(first.map(brief)).toEqual(['closed 1/1 p95=10', 'closed 0/1 p95=20', 'closed 2/2 p95=30', 'closed 3/3 p95=40', 'closed 2/3 p95=50']);
      const replayed = store.replayedOps;
      expect(await store.applyStateOps(ops)).toEqual(first);
      expect(store.replayedOps - replayed).toBe(5);
      const next = await store.applyStateOps([circuitOp(key, 6, true, 60, config, { partition: 0, offset: 6, committedOffset: 6 }, 'x')]);
      expect(next.map(brief)).toEqual(['closed 2/3 p95=60']);
    });
  });

  describe('recent_values', () => {
    const read = (results: readonly ResultOf<'recent_values'>[]): [number | null, number | null][] => results.map((r) => [r.max, r.previous]);

    it('keeps the series of one key apart', async () => {
      const store = await fresh();
      const key = keyOf('a', 'trust');
      const results = await store.applyStateOps([
        recentOp(key, 1, 90, 100, 10, NO_POSITION, 'github'),
        recentOp(key, 2, 40, 100, 10, NO_POSITION, 'filesystem'),
        recentOp(key, 3, 70, 100, 10, NO_POSITION, 'github'),
        recentOp(key, 4, 45, 100, 10, NO_POSITION, 'filesystem'),
        recentOp(key, 5, 10, 100, 10, NO_POSITION, 'new'),
      ]);
      expect(read(results)).toEqual([
        [null, null],
        [null, null],
        [90, 90],
        [40, 40],
        [null, null],
      ]);
    });

    it('reports the largest and the newest earlier sample in (ts - windowMs, ts]', async () => {
      const store = await fresh();
      const key = keyOf('a', 'cost');
      const events: [number, number][] = [
        [1000, 5],
        [1050, 3],
        [1050, 7], // after the sample of equal time: previous is 3
        [1100, 1], // (1000, 1100]: 1000 is out; then samples up to 1000 are dropped
        [1020, 9], // late: (920, 1020] holds nothing; kept (newest 1100 - 100 < 1020)
        [1060, 2], // (960, 1060]: 9, 3, 7 — not 1100, which is newer
        [1200, -4], // (1100, 1200] holds nothing; drops everything up to 1100
        [1250, -8],
        [1250, -6],
        [1250, 0.30000000000000004],
        [1251, 1e-7],
      ];
      const results = await store.applyStateOps(events.map(([ts, v]) => recentOp(key, ts, v)));
      expect(read(results)).toEqual([
        [null, null],
        [5, 5],
        [5, 3],
        [7, 7],
        [null, null],
        [9, 7],
        [null, null],
        [-4, -4],
        [-4, -8],
        [-4, -6],
        [0.30000000000000004, 0.30000000000000004],
      ]);
    });

    it('keeps the newest maxSamples samples; a sample older than all of them is not kept', async () => {
      const store = await fresh();
      const key = keyOf('a', 'cost');
      const events: [number, number][] = [
        [1, 10],
        [2, 20],
        [3, 30],
        [4, 40], // then 4 samples: 10 goes
        [5, 50],
        [0, 99], // late: the oldest of 4, dropped at once
        [6, 0],
        [6, 1],
      ];
      const results = await store.applyStateOps(events.map(([ts, v]) => recentOp(key, ts, v, 1000, 3)));
      expect(read(results)).toEqual([
        [null, null],
        [10, 10],
        [20, 20],
        [30, 30],
        [40, 40],
        [null, null],
        [50, 50],
        [50, 0],
      ]);
      // Kept: 50 (5), 0 and 1 (6).
      expect(read(await store.applyStateOps([recentOp(key, 7, 0, 1000, 10)]))).toEqual([[50, 1]]);
    });

    it('takes windowMs from each operation without a reset: a wider window sees only what was kept', async () => {
      const store = await fresh();
      const key = keyOf('a', 'cost');
      const results = await store.applyStateOps([
        recentOp(key, 100, 1, 10),
        recentOp(key, 105, 2, 10),
        recentOp(key, 106, 3, 1000),
        recentOp(key, 120, 4, 10), // drops samples up to 110
        recentOp(key, 121, 5, 1000),
      ]);
      expect(read(results)).toEqual([
        [null, null],
        [1, 1],
        [2, 2],
        [null, null],
        [4, 4],
      ]);
    });

    it('answers a pruned replay from the current samples, its own first sample included, without adding it', async () => {
      const store = await fresh();
      const key = keyOf('a', 'cost');
      const batch = positioned([recentOp(key, 1000, 5), recentOp(key, 1010, 8), recentOp(key, 1020, 6)], 0, 0);
      expect(read(await store.applyStateOps(batch))).toEqual([
        [null, null],
        [5, 5],
        [8, 8],
      ]);
      expect(read(await store.applyStateOps(positioned([recentOp(key, 1030, 1)], 0, 3)))).toEqual([[8, 6]]);
      const replays = await store.applyStateOps([batch[1] as StateOp, { ...(batch[0] as RecentValuesOp), ts: 1005, value: 100 }]);
      expect(read(replays as ResultOf<'recent_values'>[])).toEqual([
        [8, 8],
        [5, 5],
      ]);
      expect(read(await store.applyStateOps(positioned([recentOp(key, 1040, 0)], 0, 4)))).toEqual([[8, 1]]);
      expect(store.prunedReplayOps).toBe(2);
    });
  });

  describe('all kinds together', () => {
    it('keeps the kinds and keys of one batch apart', async () => {
      const store = await fresh();
      const reference = new MemoryStateStore();
      const ops: StateOp[] = [];
      for (let i = 0; i < 4; i++) {
        for (const kind of LOG_KINDS) ops.push(SEQUENCES[kind](keyOf(`agent-${i % 2}`, kind), i));
        ops.push(windowOp(keyOf(`agent-${i % 2}`), i, SMALL));
      }
      const results = await both(store, reference, positioned(ops, 0, 0));
      expect(results.map((r) => r.op)).toEqual(ops.map((op) => op.op));
    });

    const seeds = [1, 2, 3, 4, 5, 6, 7, 8];
    it.each(seeds)('random run %i: identical results to the reference, replays and failures included', async (seed) => {
      const store = await fresh();
      const reference = new MemoryStateStore();
      const { deliveries } = randomLogKindScenario(seed, { batches: 80, partitionSwitches: true });
      for (const [i, delivery] of deliveries.entries()) {
        const results = await store.applyStateOps(delivery.ops);
        expect(results, `seed ${seed}, delivery ${i}`).toEqual(reference.applyStateOpsSync(delivery.ops));
      }
      expect(store.replayedOps).toBe(reference.replayedOps);
      expect(store.prunedReplayOps).toBe(reference.prunedReplayOps);
    });

    it.each(seeds.slice(0, 4))('random run %i: replays and crashes leave the state of a failure-free run', async (seed) => {
      const store = await fresh();
      const failureFree = new MemoryStateStore();
      const { deliveries, probes } = randomLogKindScenario(seed * 7919, { batches: 80, partitionSwitches: false });
      for (const [i, delivery] of deliveries.entries()) {
        const results = await store.applyStateOps(delivery.ops);
        // A first delivery (its replayed part included) and the probes answer as in a failure-free run.
        if (delivery.first) expect(results, `seed ${seed}, delivery ${i}`).toEqual(failureFree.applyStateOpsSync(delivery.ops));
      }
      expect(store.replayedOps).toBeGreaterThan(0);
      expect(store.prunedReplayOps).toBeGreaterThan(0);
      expect(await store.applyStateOps(probes)).toEqual(failureFree.applyStateOpsSync(probes));
    });
  });
}
