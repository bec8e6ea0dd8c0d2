import { afterEach, describe, expect, it, vi } from 'vitest';
import type { Alert } from '../core/records.js';
import { openTestStore } from '../test/support/clickhouse.js';
import { BatchWriter, type BatchWriterOptions, type InsertErrorInfo } from './batch-writer.js';
import { isRetriableError, StorageError } from './errors.js';

interface Row {
  id: string;
  v: number;
}

const rowsOf = (...ids: string[]): Row[] => ids.map((id) => ({ id, v: 1 }));

/** An insert function that records its batches; `hold()` makes the next calls wait until `release()`. */
function recordingInsert() {
  const batches: Row[][] = [];
  let gate: { promise: Promise<void>; open: () => void } | null = null;
  return {
    batches,
    insert: async (rows: readonly Row[]): Promise<void> => {
      batches.push([...rows]);
      if (gate !== null) await gate.promise;
    },
    hold() {
      let open!: () => void;
      const promise = new Promise<void>((resolve) => (open = resolve));
      gate = { promise, open };
    },
    release() {
      gate?.open();
      gate = null;
    },
  };
}

function writer(options: Partial<BatchWriterOptions<Row>> & Pick<BatchWriterOptions<Row>, 'insert'>): BatchWriter<Row> {
  return new BatchWriter<Row>({ maxRows: 3, maxDelayMs: 60_000, retry: { initialDelayMs: 1, maxDelayMs: 4 }, ...options });
}

/** Settles a promise's state without waiting for it: 'pending', 'resolved' or 'rejected'. */
async function stateOf(promise: Promise<unknown>): Promise<'pending' | 'resolved' | 'rejected'> {
  const pending = Symbol('pending');
  const winner = await Promise.race([
    promise.then(
      () => 'resolved' as const,
      () => 'rejected' as const,
    ),
    Promise.resolve().then(() => pending),
  ]);
  return typeof winner === 'symbol' ? 'pending' : winner;
}

afterEach(() => {
  vi.useRealTimers();
});

describe('BatchWriter triggers', () => {
  it('cuts a batch as soon as maxRows rows are buffered, keeping the rest', async () => {
    const sink = recordingInsert();
    const w = writer({ insert: sink.insert });
    w.add(rowsOf('a', 'b'));
    expect(sink.batches).toEqual([]);
    w.add(rowsOf('c', 'd', 'e', 'f', 'g'));
    await vi.waitFor(() => expect(sink.batches).toEqual([rowsOf('a', 'b', 'c'), rowsOf('d', 'e', 'f')]));
    expect(w.heldRows).toBe(1);
    await w.close();
    expect(sink.batches[2]).toEqual(rowsOf('g'));
  });

  it('cuts a batch maxDelayMs after the first buffered row', async () => {
    vi.useFakeTimers();
    const sink = recordingInsert();
    const w = writer({ insert: sink.insert, maxDelayMs: 1000 });
    w.add(rowsOf('a'));
    await vi.advanceTimersByTimeAsync(500);
    w.add(rowsOf('b')); // does not restart the clock
    await vi.advanceTimersByTimeAsync(499);
    expect(sink.batches).toEqual([]);
    await vi.advanceTimersByTimeAsync(1);
    expect(sink.batches).toEqual([rowsOf('a', 'b')]);
    // The next row starts a new clock.
    w.add(rowsOf('c'));
    await vi.advanceTimersByTimeAsync(999);
    expect(sink.batches).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(sink.batches).toEqual([rowsOf('a', 'b'), rowsOf('c')]);
    await w.close();
  });

  it('flush resolves only once the rows added before it are written', async () => {
    const sink = recordingInsert();
    const w = writer({ insert: sink.insert });
    sink.hold();
    w.add(rowsOf('a'));
    const flushed = w.flush();
    await vi.waitFor(() => expect(sink.batches).toEqual([rowsOf('a')]));
    expect(await stateOf(flushed)).toBe('pending');
    sink.release();
    await flushed;
    expect(w.heldRows).toBe(0);
    // Nothing buffered: resolves at once.
    expect(await stateOf(w.flush())).toBe('resolved');
  });

  it('writes batches one at a time, in order', async () => {
    const sink = recordingInsert();
    const w = writer({ insert: sink.insert });
    sink.hold();
    w.add(rowsOf('a', 'b', 'c', 'd', 'e', 'f'));
    await vi.waitFor(() => expect(sink.batches).toHaveLength(1));
    expect(await stateOf(w.flush())).toBe('pending');
    expect(sink.batches).toHaveLength(1); // the second waits for the first
    sink.release();
    await w.flush();
    expect(sink.batches).toEqual([rowsOf('a', 'b', 'c'), rowsOf('d', 'e', 'f')]);
  });
});

describe('BatchWriter retries', () => {
  it('retries a retriable failure with the same rows until it succeeds', async () => {
    const attempts: Row[][] = [];
    const errors: InsertErrorInfo<Row>[] = [];
    const w = writer({
      insert: async (rows) => {
        attempts.push([...rows]);
        if (attempts.length < 3) throw new StorageError('AW_STORAGE_INSERT_FAILED', 'too many parts', { retriable: true });
      },
      onError: (_error, _attempt, info) => errors.push(info),
    });
    w.add(rowsOf('a', 'b'));
    await w.flush();
    expect(attempts).toEqual([rowsOf('a', 'b'), rowsOf('a', 'b'), rowsOf('a', 'b')]);
    expect(errors.map((e) => e.attempt)).toEqual([1, 2]);
    for (const e of errors) expect(e.retryInMs).toBeGreaterThanOrEqual(0);
    expect(w.heldRows).toBe(0);
  });

  it('retries network errors that carry no flag', async () => {
    let calls = 0;
    const w = writer({
      insert: async () => {
        calls++;
        if (calls === 1) throw Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' });
      },
    });
    w.add(rowsOf('a'));
    await w.flush();
    expect(calls).toBe(2);
  });

  it('abandons a batch on a non-retriable error and reports it to the flush covering it', async () => {
    const cause = new StorageError('AW_STORAGE_INSERT_FAILED', 'unknown table');
    const errors: InsertErrorInfo<Row>[] = [];
    let fail = true;
    const sink = recordingInsert();
    const w = writer({
      insert: async (rows) => {
        if (fail) throw cause;
        await sink.insert(rows);
      },
      onError: (_error, _attempt, info) => errors.push(info),
    });
    w.add(rowsOf('a', 'b'));
    const error = await w.flush().then(
      () => null,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(StorageError);
    expect(error).toMatchObject({ code: 'AW_STORAGE_WRITE_ABANDONED', retriable: false, cause, details: { rows: 2 } });
    expect(errors).toEqual([{ error: cause, attempt: 1, rows: rowsOf('a', 'b'), retryInMs: null }]);
    // The writer keeps working, and the failure is not reported twice.
    fail = false;
    w.add(rowsOf('c'));
    await w.flush();
    expect(sink.batches).toEqual([rowsOf('c')]);
  });

  it('reports an abandoned batch nobody waited for to the next flush', async () => {
    let calls = 0;
    const w = writer({
      insert: async () => {
        calls++;
        throw new Error('bad row');
      },
    });
    w.add(rowsOf('a', 'b', 'c')); // size trigger, no flush pending
    await vi.waitFor(() => expect(w.heldRows).toBe(0));
    expect(calls).toBe(1);
    await expect(w.flush()).rejects.toMatchObject({ code: 'AW_STORAGE_WRITE_ABANDONED', details: { rows: 3 } });
    await expect(w.flush()).resolves.toBeUndefined();
  });

  it('gives up after maxAttempts and keeps the error retriable', async () => {
    let calls = 0;
    const w = writer({
      insert: async () => {
        calls++;
        throw Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' });
      },
      retry: { initialDelayMs: 1, maxDelayMs: 2, maxAttempts: 3 },
    });
    w.add(rowsOf('a'));
    await expect(w.flush()).rejects.toMatchObject({ code: 'AW_STORAGE_WRITE_ABANDONED', retriable: true });
    expect(calls).toBe(3);
  });

  it('backs off exponentially up to the ceiling', async () => {
    const delays: (number | null)[] = [];
    let calls = 0;
    const w = writer({
      insert: async () => {
        if (++calls < 6) throw new StorageError('AW_STORAGE_INSERT_FAILED', 'busy', { retriable: true });
      },
      retry: { initialDelayMs: 2, maxDelayMs: 8 },
      onError: (_error, _attempt, info) => delays.push(info.retryInMs),
    });
    w.add(rowsOf('a'));
    await w.flush();
    // Jitter keeps each delay within [ceiling / 2, ceiling], ceilings 2, 4, 8, 8, 8.
    const ceilings = [2, 4, 8, 8, 8];
    expect(delays).toHaveLength(5);
    delays.forEach((delay, i) => {
      expect(delay).toBeGreaterThanOrEqual(ceilings[i]! / 2);
      expect(delay).toBeLessThanOrEqual(ceilings[i]!);
    });
  });

  it('classifies errors by flag first, then by network code along the cause chain', () => {
    expect(isRetriableError(new StorageError('AW_STORAGE_INSERT_FAILED', 'x', { retriable: true }))).toBe(true);
    const flaggedOff = new StorageError('AW_STORAGE_INSERT_FAILED', 'x', { cause: Object.assign(new Error('reset'), { code: 'ECONNRESET' }) });
    expect(isRetriableError(flaggedOff)).toBe(false);
    expect(isRetriableError(new Error('wrapped', { cause: Object.assign(new Error('reset'), { code: 'ECONNRESET' }) }))).toBe(true);
    expect(isRetriableError(new Error('syntax error'))).toBe(false);
    expect(isRetriableError('a string')).toBe(false);
  });
});

describe('BatchWriter coalescing, backpressure and close', () => {
  it('keeps only the newest buffered row per key', async () => {
    const sink = recordingInsert();
    const w = writer({ insert: sink.insert, coalesceKey: (row) => row.id });
    w.add([
      { id: 'a', v: 1 },
      { id: 'b', v: 1 },
      { id: 'a', v: 2 },
    ]);
    w.add([{ id: 'a', v: 3 }]);
    await w.flush();
    expect(sink.batches).toEqual([
      [
        { id: 'a', v: 3 },
        { id: 'b', v: 1 },
      ],
    ]);
    // Rows already cut into a batch are written as they were.
    w.add([{ id: 'a', v: 4 }]);
    await w.flush();
    expect(sink.batches[1]).toEqual([{ id: 'a', v: 4 }]);
  });

  it('counts distinct keys toward maxRows when coalescing', async () => {
    const sink = recordingInsert();
    const w = writer({ insert: sink.insert, coalesceKey: (row) => row.id });
    w.add([
      { id: 'a', v: 1 },
      { id: 'a', v: 2 },
      { id: 'b', v: 1 },
      { id: 'a', v: 3 },
    ]);
    expect(sink.batches).toEqual([]);
    w.add([{ id: 'c', v: 1 }]);
    await vi.waitFor(() => expect(sink.batches).toHaveLength(1));
    expect(sink.batches[0]).toEqual([
      { id: 'a', v: 3 },
      { id: 'b', v: 1 },
      { id: 'c', v: 1 },
    ]);
    await w.close();
  });

  it('signals backpressure above maxBuffered and clears it as batches land', async () => {
    const sink = recordingInsert();
    const w = writer({ insert: sink.insert, maxRows: 2, maxBuffered: 4 });
    sink.hold();
    w.add(rowsOf('a', 'b', 'c', 'd'));
    expect(w.pressure()).toBe(false);
    await expect(w.whenWritable()).resolves.toBeUndefined();
    w.add(rowsOf('e'));
    expect(w.pressure()).toBe(true);
    const writable = w.whenWritable();
    expect(await stateOf(writable)).toBe('pending');
    sink.release();
    await writable;
    expect(w.heldRows).toBeLessThanOrEqual(4);
    expect(w.pressure()).toBe(false);
    await w.close();
    expect(sink.batches.flat().map((r) => r.id)).toEqual(['a', 'b', 'c', 'd', 'e']);
  });

  it('close flushes, stops the timer and refuses later rows', async () => {
    vi.useFakeTimers();
    const sink = recordingInsert();
    const w = writer({ insert: sink.insert, maxDelayMs: 1000 });
    w.add(rowsOf('a', 'b'));
    expect(vi.getTimerCount()).toBe(1);
    await w.close();
    expect(sink.batches).toEqual([rowsOf('a', 'b')]);
    expect(vi.getTimerCount()).toBe(0);
    expect(() => w.add(rowsOf('c'))).toThrow(expect.objectContaining({ code: 'AW_STORAGE_WRITER_CLOSED' }));
    await expect(w.close()).resolves.toBeUndefined();
  });

  it('validates its options, naming the key and bound', () => {
    expect(() => writer({ insert: async () => undefined, maxRows: 10, maxBuffered: 5 })).toThrow(/maxBuffered must be an integer >= 10/);
    expect(() => writer({ insert: async () => undefined, maxRows: 0 })).toThrow(/maxRows must be an integer >= 1/);
  });
});

describe('BatchWriter over the ClickHouse store', () => {
  it('writes coalesced alert versions so the newest is read back', async () => {
    const t = await openTestStore();
    try {
      const base: Alert = {
        alert_id: 'bw-1',
        tenant: 'bw',
        policy_id: 'p',
        policy_type: 'rate_spike',
        agent_id: 'agent-1',
        severity: 'medium',
        status: 'open',
        count: 1,
        first_seen: 1_000,
        last_seen: 1_000,
        title: 'Rate spike',
        reason: 'too many calls',
        verdict_ids: ['v1'],
        evidence: { rate: 10 },
        atlas: [],
        updated_at: 1_000,
        acknowledged_by: '',
        resolved_at: 0,
        source_partition: -1,
        source_offset: -1,
        silenced_by: '',
        comment: '',
      };
      const w = new BatchWriter<Alert>({
        insert: (rows) => t.store.upsertAlerts(rows),
        coalesceKey: (a) => `${a.tenant}/${a.alert_id}`,
        maxRows: 100,
        maxDelayMs: 60_000,
      });
      const versions = [2, 3, 4].map((n) => ({ ...base, count: n, last_seen: n * 1000, updated_at: n * 1000 }));
      w.add(versions);
      w.add([{ ...base, alert_id: 'bw-2' }]);
      await w.close();

      expect(await t.store.getAlert('bw-1', 'bw')).toEqual(versions[2]);
      expect(await t.store.getAlert('bw-2', 'bw')).toEqual({ ...base, alert_id: 'bw-2' });
      // Coalescing means only one row per alert ever reached the table (no FINAL here).
      const result = await t.client.query({ query: `SELECT count() AS n FROM ${t.database}.alerts`, format: 'JSONEachRow' });
      expect((await result.json<{ n: string | number }>()).map((r) => Number(r.n))).toEqual([2]);
    } finally {
      await t.close();
    }
  });
});

describe('BatchWriter.durable', () => {
  it('waits for the rows added so far without forcing a small insert', async () => {
    const rec = recordingInsert();
    const w = new BatchWriter<Row>({ insert: rec.insert, maxRows: 10, maxDelayMs: 30 });
    w.add(rowsOf('a', 'b'));
    let done = false;
    const durable = w.durable().then(() => {
      done = true;
    });
    w.add(rowsOf('c'));
    await new Promise((r) => setTimeout(r, 5));
    expect(done).toBe(false);
    expect(rec.batches).toHaveLength(0);
    await durable;
    // One insert, cut by the timer, holding everything added before and just after the call.
    expect(rec.batches.map((b) => b.map((r) => r.id))).toEqual([['a', 'b', 'c']]);
    await w.close();
  });

  it('resolves at once when nothing is held, and after a flush otherwise', async () => {
    const rec = recordingInsert();
    const w = new BatchWriter<Row>({ insert: rec.insert, maxRows: 10, maxDelayMs: 60_000 });
    await w.durable();
    w.add(rowsOf('x'));
    const durable = w.durable();
    await w.flush();
    await durable;
    expect(rec.batches).toHaveLength(1);
    await w.close();
  });
});
