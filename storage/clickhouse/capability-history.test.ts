import { copyFile, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AgentEventInput } from '../../core/event.js';
import { makeEvent } from '../../test/support/events.js';
import { openTestStore, type TestStore } from '../../test/support/clickhouse.js';
import { diffSnapshots } from '../capability-diff.js';
import { StorageError } from '../errors.js';
import { applyMigrations, defaultMigrationsDir, loadMigrations } from './migrations.js';

const T0 = Date.UTC(2026, 10, 20, 9, 14, 0, 123);
const at = (minutes: number) => T0 + minutes * 60_000;

let t: TestStore;

beforeAll(async () => {
  t = await openTestStore();
});

afterAll(async () => {
  await t?.close();
});

function event(id: string, overrides: Partial<AgentEventInput>) {
  return makeEvent({ event_id: id, tenant: 'acme', agent: { id: 'agent-7', name: 'cursor' }, ...overrides });
}

/** agent-7's history, plus events the view must leave out. */
function events() {
  return [
    event('c-1', { type: 'capability_change', time: at(0), capabilities: ['web_search', 'file_read', 'file_read'] }),
    event('k-1', { type: 'key_rotation', time: at(1), key: { fingerprint: 'SHA256:old', algorithm: 'ed25519' } }),
    event('c-2', { type: 'capability_change', time: at(2), capabilities: ['shell_execute', 'web_search', 'admin:users'] }),
    event('k-2', { type: 'key_rotation', time: at(3), key: { fingerprint: 'SHA256:new' } }),
    // Left out: no capabilities, an empty list (stored like no list), no key, capabilities on another type.
    event('x-1', { type: 'capability_change', time: at(4) }),
    event('x-2', { type: 'capability_change', time: at(4), capabilities: [] }),
    event('x-3', { type: 'key_rotation', time: at(4) }),
    event('x-4', { type: 'config_change', time: at(4), capabilities: ['file_read'], key: { fingerprint: 'SHA256:cfg' } }),
    // Other agents and tenants.
    event('o-1', { type: 'capability_change', time: at(5), agent: { id: 'agent-8' }, capabilities: ['sudo'] }),
    event('o-2', { type: 'capability_change', time: at(5), tenant: 'other', capabilities: ['sudo'] }),
  ];
}

describe('capability_history', () => {
  beforeAll(async () => {
    await t.store.insertEvents(events());
    // A replay of part of the stream must not add snapshots.
    await t.store.insertEvents(events().slice(0, 3));
  });

  it('is filled from inserted events: newest first, capabilities sorted and unique, replays collapsed', async () => {
    const history = await t.store.capabilityHistory({ tenant: 'acme', agent_id: 'agent-7', limit: 100 });
    expect(history.map((s) => s.event_id)).toEqual(['k-2', 'c-2', 'k-1', 'c-1']);
    expect(history[1]).toEqual({
      tenant: 'acme',
      agent_id: 'agent-7',
      agent_name: 'cursor',
      time: at(2),
      event_id: 'c-2',
      kind: 'capabilities',
      capabilities: ['admin:users', 'shell_execute', 'web_search'],
      key_fingerprint: '',
      key_algorithm: '',
      ingested_at: expect.any(Number) as number,
    });
    expect(history[2]).toMatchObject({ kind: 'key', capabilities: [], key_fingerprint: 'SHA256:old', key_algorithm: 'ed25519', time: at(1) });
    expect(history[0]).toMatchObject({ kind: 'key', key_fingerprint: 'SHA256:new', key_algorithm: '' });
    expect(history[3]!.capabilities).toEqual(['file_read', 'web_search']);
    expect(Math.abs(history[3]!.ingested_at - Date.now())).toBeLessThan(600_000);
  });

  it('lets any two snapshots be compared', async () => {
    const sets = await t.store.capabilityHistory({ tenant: 'acme', agent_id: 'agent-7', kind: 'capabilities', limit: 100 });
    expect(sets.map((s) => s.event_id)).toEqual(['c-2', 'c-1']);
    expect(diffSnapshots(sets[1]!, sets[0]!)).toEqual({
      kind: 'capabilities',
      added: ['admin:users', 'shell_execute'],
      removed: ['file_read'],
      key_changed: false,
      unchanged: false,
    });
    const keys = await t.store.capabilityHistory({ tenant: 'acme', agent_id: 'agent-7', kind: 'key', limit: 100 });
    expect(diffSnapshots(keys[1]!, keys[0]!).key_changed).toBe(true);
  });

  it('bounds by event time as [from, to) and by limit', async () => {
    const window = await t.store.capabilityHistory({ tenant: 'acme', agent_id: 'agent-7', from: at(1), to: at(3), limit: 100 });
    expect(window.map((s) => s.event_id)).toEqual(['c-2', 'k-1']);
    const newest = await t.store.capabilityHistory({ tenant: 'acme', agent_id: 'agent-7', limit: 1 });
    expect(newest.map((s) => s.event_id)).toEqual(['k-2']);
  });

  it('keeps agents and tenants apart, and takes filter values only as parameters', async () => {
    expect((await t.store.capabilityHistory({ tenant: 'acme', agent_id: 'agent-8', limit: 10 })).map((s) => s.event_id)).toEqual(['o-1']);
    expect((await t.store.capabilityHistory({ tenant: 'other', agent_id: 'agent-7', limit: 10 })).map((s) => s.event_id)).toEqual(['o-2']);
    expect(await t.store.capabilityHistory({ tenant: "acme' OR 1=1 --", agent_id: 'agent-7', limit: 10 })).toEqual([]);
  });

  it('rejects a bad limit or time bound', async () => {
    for (const filter of [
      { tenant: 'acme', agent_id: 'agent-7', limit: 0 },
      { tenant: 'acme', agent_id: 'agent-7', limit: 1.5 },
      { tenant: 'acme', agent_id: 'agent-7', limit: 10, from: -1 },
    ]) {
      const error: unknown = await t.store.capabilityHistory(filter).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(StorageError);
      expect((error as StorageError).code).toBe('AW_STORAGE_INVALID_FILTER');
    }
  });
});

describe('0002_capability_history migration', () => {
  it('has three statements: table, view, backfill', async () => {
    const migrations = await loadMigrations(defaultMigrationsDir());
    expect(migrations[1]).toMatchObject({ version: 2, name: 'capability_history' });
    expect(migrations[1]!.statements).toHaveLength(3);
  });

  it('backfills events stored before it, and applying it again changes nothing', async () => {
    const fresh = await openTestStore({ migrate: false });
    const onlyInit = await mkdtemp(path.join(os.tmpdir(), 'aw-migrations-'));
    try {
      await copyFile(path.join(defaultMigrationsDir(), '0001_init.sql'), path.join(onlyInit, '0001_init.sql'));
      expect((await applyMigrations(fresh.client, fresh.database, { dir: onlyInit })).applied).toEqual([1]);
      await fresh.store.insertEvents(events());

      const later = (await loadMigrations(defaultMigrationsDir())).map((m) => m.version).filter((v) => v > 1);
      expect((await fresh.store.applyMigrations()).applied).toEqual(later);
      // Re-running the statements (as after a crash before the version was recorded) duplicates nothing.
      const migration = (await loadMigrations(defaultMigrationsDir()))[1]!;
      for (const statement of migration.statements) {
        await fresh.client.command({ query: statement.replaceAll('{db}', fresh.database) });
      }
      await fresh.store.insertEvents(events().slice(2, 4));

      const history = await fresh.store.capabilityHistory({ tenant: 'acme', agent_id: 'agent-7', limit: 100 });
      expect(history.map((s) => s.event_id)).toEqual(['k-2', 'c-2', 'k-1', 'c-1']);
      expect(await fresh.store.capabilityHistory({ tenant: 'other', agent_id: 'agent-7', limit: 10 })).toHaveLength(1);
    } finally {
      await fresh.close();
      await rm(onlyInit, { recursive: true, force: true });
    }
  });
});
