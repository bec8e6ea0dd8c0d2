import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Silence } from '../../core/records.js';
import { openTestStore, type TestStore } from '../../test/support/clickhouse.js';
import { StorageError } from '../errors.js';
import { ClickHouseSilenceStore } from './silence-store.js';

const T0 = 1_700_000_000_000;

let t: TestStore;
let store: ClickHouseSilenceStore;

beforeAll(async () => {
  t = await openTestStore();
  store = new ClickHouseSilenceStore(t.client, t.database);
});

afterAll(async () => {
  await t?.close();
});

function silence(overrides: Partial<Silence> = {}): Silence {
  return {
    silence_id: 'sil-1',
    tenant: 'acme',
    matchers: { policy_id: 'p-*' },
    starts_at: T0,
    ends_at: T0 + 1_000,
    comment: 'maintenance',
    created_by: 'ana',
    created_at: T0,
    expired_at: null,
    expired_by: '',
    updated_at: T0,
    ...overrides,
  };
}

async function expectStorageError(promise: Promise<unknown>, code: string): Promise<void> {
  const error: unknown = await promise.then(
    () => null,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(StorageError);
  expect((error as StorageError).code).toBe(code);
}

describe('ClickHouseSilenceStore', () => {
  it('reads back silences exactly as written: every matcher, null tenant, expiry', async () => {
    const full = silence({
      silence_id: 'rt-full',
      tenant: null,
      matchers: { policy_id: "o'hara-*", policy_type: 'rate_spike', agent_id: 'bot-?', severity: ['low', 'critical'] },
      comment: 'quotes \' " and\nnewlines',
      expired_at: T0 + 500,
      expired_by: 'bob',
      updated_at: T0 + 500,
    });
    const minimal = silence({ silence_id: 'rt-min', matchers: { severity: ['high'] } });
    await store.upsertSilences([full, minimal]);
    await store.upsertSilences([]);
    expect(await store.getSilence('rt-full')).toEqual(full);
    expect(await store.getSilence('rt-min')).toEqual(minimal);
    expect(await store.getSilence("' OR 1=1 --")).toBeNull();
  });

  it('keeps the version with the highest updated_at, whatever the write order', async () => {
    const created = silence({ silence_id: 'ver-1', tenant: 'ver' });
    const expired = { ...created, expired_at: T0 + 10, expired_by: 'bob', updated_at: T0 + 10 };
    await store.upsertSilences([expired]);
    await store.upsertSilences([created]);
    expect(await store.getSilence('ver-1')).toEqual(expired);
    const versions = async (at: number): Promise<Silence[]> => (await store.listSilences({ tenant: 'ver', unexpired_at: at })).filter((s) => s.tenant === 'ver');
    expect(await versions(T0 + 20)).toEqual([]);
    expect(await versions(T0 + 9)).toEqual([expired]);
  });

  describe('listSilences', () => {
    // On a database of their own: all-tenant silences of other tests would show in every tenant's list.
    let own: TestStore;
    let store: ClickHouseSilenceStore;
    const started = silence({ silence_id: 'ls-started', tenant: 'ls', created_at: T0 + 1 });
    const pending = silence({ silence_id: 'ls-pending', tenant: 'ls', starts_at: T0 + 500, created_at: T0 + 2 });
    const ended = silence({ silence_id: 'ls-ended', tenant: 'ls', ends_at: T0 + 100, created_at: T0 + 3 });
    const expired = silence({ silence_id: 'ls-expired', tenant: 'ls', expired_at: T0 + 200, expired_by: 'bob', created_at: T0 + 4, updated_at: T0 + 200 });
    const other = silence({ silence_id: 'ls-other', tenant: 'ls-other', created_at: T0 + 5 });
    const everyone = silence({ silence_id: 'ls-everyone', tenant: null, created_at: T0 + 6 });
    const ids = (silences: Silence[]): string[] => silences.map((s) => s.silence_id);

    beforeAll(async () => {
      own = await openTestStore();
      store = new ClickHouseSilenceStore(own.client, own.database);
      await store.upsertSilences([started, pending, ended, expired, other, everyone]);
    });

    afterAll(async () => {
      await own?.close();
    });

    it("lists a tenant's own and the all-tenant silences, newest first", async () => {
      expect(ids(await store.listSilences({ tenant: 'ls' }))).toEqual(['ls-everyone', 'ls-expired', 'ls-ended', 'ls-pending', 'ls-started']);
      expect(ids(await store.listSilences({ tenant: 'ls-other' }))).toEqual(['ls-everyone', 'ls-other']);
      expect(ids(await store.listSilences({ tenant: null }))).toEqual(['ls-everyone']);
      expect(ids(await store.listSilences({}))).toEqual(['ls-everyone', 'ls-other', 'ls-expired', 'ls-ended', 'ls-pending', 'ls-started']);
      expect(ids(await store.listSilences({ tenant: 'ls', limit: 2 }))).toEqual(['ls-everyone', 'ls-expired']);
    });

    it('selects the silences in force, and those not over', async () => {
      expect(ids(await store.listSilences({ tenant: 'ls', active_at: T0 + 50 }))).toEqual(['ls-everyone', 'ls-expired', 'ls-ended', 'ls-started']);
      expect(ids(await store.listSilences({ tenant: 'ls', active_at: T0 + 300 }))).toEqual(['ls-everyone', 'ls-started']);
      expect(ids(await store.listSilences({ tenant: 'ls', active_at: T0 + 600 }))).toEqual(['ls-everyone', 'ls-pending', 'ls-started']);
      expect(ids(await store.listSilences({ tenant: 'ls', active_at: T0 + 1_000 }))).toEqual([]);
      expect(ids(await store.listSilences({ tenant: 'ls', unexpired_at: T0 + 300 }))).toEqual(['ls-everyone', 'ls-pending', 'ls-started']);
      // Bounds: starts_at inclusive, ends_at and expired_at exclusive.
      expect(ids(await store.listSilences({ tenant: 'ls', active_at: T0 + 500 }))).toContain('ls-pending');
      expect(ids(await store.listSilences({ tenant: 'ls', active_at: T0 + 200 }))).not.toContain('ls-expired');
      expect(ids(await store.listSilences({ tenant: 'ls', active_at: T0 + 99 }))).toContain('ls-ended');
    });

    it('treats quotes and SQL in the tenant as data', async () => {
      expect(await store.listSilences({ tenant: "ls' OR '1'='1", active_at: T0 })).toEqual([everyone]);
    });

    it('rejects bad limits and times', async () => {
      await expectStorageError(store.listSilences({ limit: 0 }), 'AW_STORAGE_INVALID_FILTER');
      await expectStorageError(store.listSilences({ limit: 10_001 }), 'AW_STORAGE_INVALID_FILTER');
      await expectStorageError(store.listSilences({ active_at: -1 }), 'AW_STORAGE_INVALID_FILTER');
      await expectStorageError(store.listSilences({ unexpired_at: 1.5 }), 'AW_STORAGE_INVALID_FILTER');
    });
  });

  it('rejects a database name that is not a plain identifier', () => {
    expect(() => new ClickHouseSilenceStore(t.client, 'x; DROP DATABASE default')).toThrow(StorageError);
  });
});
