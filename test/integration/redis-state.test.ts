import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { Redis } from 'ioredis';
import { agentStateKey, type StateOp, type WindowCountOp } from '../../core/state.js';
import { StateError } from '../../detectors/state/redis/errors.js';
import { agentWindowKey, redisKeys } from '../../detectors/state/redis/keys.js';
import { RedisStateStore, type StateLostInfo } from '../../detectors/state/redis/redis-store.js';
import { runDetectorConformance } from '../conformance/detectors.js';
import { RATE_SPIKE_DEFAULT, runStateStoreConformance } from '../conformance/state-store.js';

const redisUrl = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
/** Test keys expire on their own; Redis here keeps nothing on disk. */
const TEST_TTL_MS = 600_000;
const T0 = Date.UTC(2026, 10, 24, 10, 0, 0);

/** The same server, another logical database: FLUSHDB there cannot touch other test files' keys. */
function urlForDb(db: number): string {
  const url = new URL(redisUrl);
  url.pathname = `/${db}`;
  return url.toString();
}

function uniquePrefix(): string {
  return `awtest:${randomUUID().slice(0, 8)}:`;
}

const clients: Redis[] = [];
function client(url = redisUrl): Redis {
  const redis = new Redis(url, { maxRetriesPerRequest: 2, connectTimeout: 5_000 });
  clients.push(redis);
  return redis;
}

const shared = client();

beforeAll(async () => {
  // Fail, never skip, when Redis cannot be reached: the adapter is untested otherwise.
  try {
    await shared.ping();
  } catch (error) {
    throw new Error(`Redis at ${redisUrl} is unreachable; start one or set REDIS_URL`, { cause: error });
  }
});

afterAll(async () => {
  await Promise.all(clients.map((c) => c.quit().catch(() => undefined)));
});

runStateStoreConformance('RedisStateStore', () => new RedisStateStore({ redis: shared, keyPrefix: uniquePrefix(), idleTtlMs: TEST_TTL_MS }));
await runDetectorConformance('RedisStateStore', () => new RedisStateStore({ redis: shared, keyPrefix: uniquePrefix(), idleTtlMs: TEST_TTL_MS }), { compareToMemory: true });

function rateOp(key: string, ts: number, position: { partition: number; offset: number; committedOffset: number }): WindowCountOp {
  return { op: 'window_count', key, ...position, ts, ...RATE_SPIKE_DEFAULT };
}

describe('RedisStateStore on Redis', () => {
  it('sends all operations of a call in one pipeline: one socket write, one round trip', async () => {
    const redis = client();
    await redis.ping();
    const store = new RedisStateStore({ redis, keyPrefix: uniquePrefix(), idleTtlMs: TEST_TTL_MS });
    await store.applyStateOps([rateOp('warm-up', T0, { partition: -1, offset: -1, committedOffset: -1 })]);

    let pipelines = 0;
    let execs = 0;
    let standalone = 0;
    let writes = 0;
    const pipeline = redis.pipeline.bind(redis);
    redis.pipeline = ((commands?: unknown[][]) => {
      pipelines++;
      const p = pipeline(commands);
      const exec = p.exec.bind(p);
      p.exec = (...args: Parameters<typeof p.exec>) => {
        execs++;
        return exec(...args);
      };
      return p;
    }) as typeof redis.pipeline;
    const sendCommand = redis.sendCommand.bind(redis);
    redis.sendCommand = ((...args: Parameters<typeof redis.sendCommand>) => {
      // ioredis passes a stream when the command belongs to a pipeline.
      if (args[1] === undefined) standalone++;
      return sendCommand(...args);
    }) as typeof redis.sendCommand;
    const socket = redis.stream;
    const write = socket.write.bind(socket) as (...args: unknown[]) => boolean;
    socket.write = ((...args: unknown[]) => {
      writes++;
      return write(...args);
    }) as typeof socket.write;

    for (let call = 0; call < 3; call++) {
      const ops: StateOp[] = [];
      for (let i = 0; i < 200; i++) {
        ops.push(rateOp(agentStateKey('t', `agent-${i % 25}`, 'spike', 'rate'), T0 + call * 1000 + i, { partition: 0, offset: call * 200 + i, committedOffset: call * 200 }));
      }
      expect(await store.applyStateOps(ops)).toHaveLength(200);
    }
    expect({ pipelines, execs, standalone, writes }).toEqual({ pipelines: 3, execs: 3, standalone: 0, writes: 3 });
    await store.close();
  });

  it('sets the idle TTL on every key it writes', async () => {
    const prefix = uniquePrefix();
    const store = new RedisStateStore({ redis: shared, keyPrefix: prefix, idleTtlMs: 5_000 });
    const key = agentStateKey('t', 'a', 'spike', 'rate');
    await store.applyStateOps([rateOp(key, T0, { partition: 0, offset: 1, committedOffset: 1 })]);
    const ttl = await shared.pttl(redisKeys(prefix).windowState(key));
    expect(ttl).toBeGreaterThan(4_000);
    expect(ttl).toBeLessThanOrEqual(5_000);

    const defaultPrefix = uniquePrefix();
    const defaults = new RedisStateStore({ redis: shared, keyPrefix: defaultPrefix });
    await defaults.applyStateOps([rateOp(key, T0, { partition: 0, offset: 1, committedOffset: 1 })]);
    const defaultTtl = await shared.pttl(redisKeys(defaultPrefix).windowState(key));
    expect(defaultTtl).toBeGreaterThan(86_000_000);
    expect(defaultTtl).toBeLessThanOrEqual(86_400_000);
    await shared.pexpire(redisKeys(defaultPrefix).windowState(key), TEST_TTL_MS);
  });

  it('sets the TTL of a value_snapshot key on an applied review only; a read creates no key', async () => {
    const prefix = uniquePrefix();
    const store = new RedisStateStore({ redis: shared, keyPrefix: prefix, idleTtlMs: 5_000 });
    const key = agentStateKey('t', 'a', 'drift', 'capabilities');
    const redisKey = redisKeys(prefix).windowState(key);
    const snapshot = (ts: number, value: string): StateOp => ({ op: 'value_snapshot', key, partition: 0, offset: ts, committedOffset: ts, ts, value, autoApprove: false, retainMs: 600_000 });
    await store.applyStateOps([snapshot(1, 'a'), snapshot(2, 'b')]);
    expect(await shared.pttl(redisKey)).toBeGreaterThan(590_000);
    // As if most of the retention had passed: reads and stale reviews must leave the TTL alone.
    await shared.pexpire(redisKey, 50_000);
    const missing = agentStateKey('t', 'a', 'drift', 'missing');
    const untouched = await store.applyStateOps([
      { op: 'value_review', key, action: 'read', ts: 10 },
      { op: 'value_review', key, action: 'approve', value: 'a', ts: 11, retainMs: 900_000 },
      { op: 'value_review', key: missing, action: 'reject', value: 'b', ts: 12, retainMs: 900_000 },
      { op: 'value_review', key: missing, action: 'read', ts: 13 },
    ]);
    expect(untouched.map((r) => r.op === 'value_review' && r.applied)).toEqual([false, false, false, false]);
    expect(await shared.pttl(redisKey)).toBeLessThanOrEqual(50_000);
    expect(await shared.exists(redisKeys(prefix).windowState(missing))).toBe(0);
    expect(await store.applyStateOps([{ op: 'value_review', key, action: 'approve', value: 'b', ts: 14, retainMs: 900_000 }])).toMatchObject([{ applied: true, approved: 'b' }]);
    expect(await shared.pttl(redisKey)).toBeGreaterThan(890_000);
    // The last value is the approved one again: stored once.
    expect(await shared.hkeys(redisKey)).toEqual(expect.not.arrayContaining(['l']));
    await shared.pexpire(redisKey, TEST_TTL_MS);
    await store.close();
  });

  it('rejects a malformed review as an invalid operation', async () => {
    const store = new RedisStateStore({ redis: shared, keyPrefix: uniquePrefix(), idleTtlMs: TEST_TTL_MS });
    const key = agentStateKey('t', 'a', 'drift', 'capabilities');
    await expect(store.applyStateOps([{ op: 'value_review', key, action: 'approve', ts: 1 }])).rejects.toMatchObject({ code: 'AW_STATE_INVALID_OP', retriable: false });
    await expect(store.applyStateOps([{ op: 'value_review', key, action: 'revoke' as 'read', ts: 1 }])).rejects.toMatchObject({ code: 'AW_STATE_INVALID_OP' });
    await expect(store.applyStateOps([{ op: 'value_review', key, action: 'read', ts: Number.NaN }])).rejects.toMatchObject({ code: 'AW_STATE_INVALID_OP' });
    await store.close();
  });

  it('detects a flushed database once per epoch change, in every store sharing it', async () => {
    const db = urlForDb(9);
    const redis = client(db);
    const admin = client(db);
    const prefix = uniquePrefix();
    const lostA: StateLostInfo[] = [];
    const lostB: StateLostInfo[] = [];
    const logger = { error: vi.fn() };
    const a = new RedisStateStore({ redis, keyPrefix: prefix, idleTtlMs: TEST_TTL_MS, onStateLost: (info) => lostA.push(info), logger });
    const b = new RedisStateStore({ redis, keyPrefix: prefix, idleTtlMs: TEST_TTL_MS, onStateLost: (info) => lostB.push(info) });
    const key = agentStateKey('t', 'a', 'spike', 'rate');
    const at = (offset: number): WindowCountOp[] => [rateOp(key, T0 + offset, { partition: 0, offset, committedOffset: offset })];

    expect((await a.applyStateOps(at(1)))[0]?.count).toBe(1);
    expect((await b.applyStateOps(at(2)))[0]?.count).toBe(2);
    expect(a.stateLostAt).toBeNull();
    expect(lostA.length + lostB.length).toBe(0);

    await admin.flushdb();
    const before = Date.now();
    // The windows restarted from zero — which only the epoch check can tell.
    expect((await a.applyStateOps(at(3)))[0]?.count).toBe(1);
    expect(lostA).toHaveLength(1);
    expect(lostA[0]).toMatchObject({ reason: 'missing' });
    expect(lostA[0]?.epoch).not.toBe(lostA[0]?.previousEpoch);
    expect(a.stateLostAt).toBeGreaterThanOrEqual(before);
    expect(logger.error).toHaveBeenCalledTimes(1);
    expect(String(logger.error.mock.calls[0]?.[1])).toContain('REDIS WINDOW STATE LOST');

    // The other store finds the epoch the first one set, and reports the loss too.
    await b.applyStateOps(at(4));
    expect(lostB).toHaveLength(1);
    expect(lostB[0]).toMatchObject({ reason: 'replaced', epoch: lostA[0]?.epoch });

    // Once per change: no further reports.
    await a.applyStateOps(at(5));
    await b.applyStateOps(at(6));
    expect(lostA).toHaveLength(1);
    expect(lostB).toHaveLength(1);
    expect(logger.error).toHaveBeenCalledTimes(1);

    // A second flush is a second change.
    await admin.flushdb();
    await b.applyStateOps(at(7));
    await a.applyStateOps(at(8));
    expect(lostB.map((l) => l.reason)).toEqual(['replaced', 'missing']);
    expect(lostA.map((l) => l.reason)).toEqual(['missing', 'replaced']);
    await admin.flushdb();
  });

  it('keeps one agent within 4 KiB after 300 events of the default rate_spike policy', async () => {
    const prefix = uniquePrefix();
    const store = new RedisStateStore({ redis: shared, keyPrefix: prefix, idleTtlMs: TEST_TTL_MS });
    const opKey = agentStateKey('acme-prod', 'agent-7f3c9a2e', 'api-rate-spike', 'rate');
    const redisKey = agentWindowKey(redisKeys(prefix), 'acme-prod', 'agent-7f3c9a2e', 'api-rate-spike', 'rate');
    const usage = async (): Promise<number> => Number(await shared.call('MEMORY', 'USAGE', redisKey, 'SAMPLES', '0'));
    // 300 events, one every 54 s (4.5 hours: the 48-window history fills), out of a
    // partition shared with ~1000 other agents (offsets 1000 apart), 10 of this
    // agent's events per batch, each batch starting at its committed offset.
    const offsetBase = 1_700_000_000_000;
    let steady = 0;
    for (let batch = 0; batch < 30; batch++) {
      const ops: WindowCountOp[] = [];
      for (let i = 0; i < 10; i++) {
        const n = batch * 10 + i;
        ops.push(rateOp(opKey, T0 + n * 54_000, { partition: 3, offset: offsetBase + n * 1000, committedOffset: offsetBase + batch * 10_000 }));
      }
      const results = await store.applyStateOps(ops);
      expect(results[9]?.baseline?.windows).toBe(Math.min(48, Math.floor(((batch * 10 + 9) * 54_000) / 300_000)));
      steady = await usage();
    }
    // Worst case: a burst of 300 events in one batch keeps 300 replay results until the next batch.
    const burstPrefix = uniquePrefix();
    const burstStore = new RedisStateStore({ redis: shared, keyPrefix: burstPrefix, idleTtlMs: TEST_TTL_MS });
    const burstKey = redisKeys(burstPrefix).windowState(opKey);
    const burstOps: StateOp[] = [];
    for (let n = 0; n < 300; n++) burstOps.push(rateOp(opKey, T0 + n * 54_000, { partition: 3, offset: offsetBase + n * 1000, committedOffset: offsetBase }));
    await burstStore.applyStateOps(burstOps);
    const burst = Number(await shared.call('MEMORY', 'USAGE', burstKey, 'SAMPLES', '0'));
    console.log(JSON.stringify({ metric: 'redis_window_key_bytes', policy: 'rate_spike default', events: 300, steady, burst_in_one_batch: burst }));
    expect(steady).toBeLessThanOrEqual(4096);
    expect(burst).toBeLessThanOrEqual(4096);
  });

  describe('errors', () => {
    it('fails the whole call with a non-retriable error when a script fails', async () => {
      const prefix = uniquePrefix();
      const store = new RedisStateStore({ redis: shared, keyPrefix: prefix, idleTtlMs: TEST_TTL_MS });
      const bad = agentStateKey('t', 'wrong-type', 'spike', 'rate');
      await shared.set(redisKeys(prefix).windowState(bad), 'not a hash', 'PX', TEST_TTL_MS);
      const ops = [rateOp(agentStateKey('t', 'fine', 'spike', 'rate'), T0, { partition: 0, offset: 1, committedOffset: 1 }), rateOp(bad, T0, { partition: 0, offset: 1, committedOffset: 1 })];
      const error = await store.applyStateOps(ops).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(StateError);
      expect(error).toMatchObject({ code: 'AW_STATE_SCRIPT_FAILED', retriable: false });
      expect((error as Error).message).toContain('WRONGTYPE');
    });

    it('reports an unreachable Redis as retriable', async () => {
      const down = new Redis({ host: '127.0.0.1', port: 1, lazyConnect: true, enableOfflineQueue: false, maxRetriesPerRequest: 0, retryStrategy: () => null });
      const store = new RedisStateStore({ redis: down, keyPrefix: uniquePrefix() });
      const error = await store.applyStateOps([rateOp('k', T0, { partition: 0, offset: 1, committedOffset: 1 })]).catch((e: unknown) => e);
      expect(error).toMatchObject({ code: 'AW_STATE_UNAVAILABLE', retriable: true });
      down.disconnect();
    });

    it('rejects malformed operations, bad options and use after close', async () => {
      const store = new RedisStateStore({ redis: redisUrl, keyPrefix: uniquePrefix(), idleTtlMs: TEST_TTL_MS });
      const op = rateOp('k', T0, { partition: 0, offset: 1, committedOffset: 1 });
      await expect(store.applyStateOps([{ ...op, bucketMs: 0 }])).rejects.toMatchObject({ code: 'AW_STATE_INVALID_OP', retriable: false });
      await expect(store.applyStateOps([{ ...op, ts: Number.NaN }])).rejects.toMatchObject({ code: 'AW_STATE_INVALID_OP' });
      expect((await store.applyStateOps([op]))[0]?.count).toBe(1);
      await store.close();
      await expect(store.applyStateOps([op])).rejects.toMatchObject({ code: 'AW_STATE_CLOSED' });
      expect(() => new RedisStateStore({ redis: shared, keyPrefix: 'x{y}:' })).toThrow(expect.objectContaining({ code: 'AW_STATE_INVALID_CONFIG' }) as Error);
      expect(() => new RedisStateStore({ redis: shared, idleTtlMs: 0 })).toThrow(/idleTtlMs/);
      expect(() => new RedisStateStore({ redis: 'localhost:6379' })).toThrow(/redis:\/\//);
    });
  });
});
