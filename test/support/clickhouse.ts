import { randomBytes } from 'node:crypto';
import { mkdirSync, readdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ClickHouseAnalyticsStore } from '../../storage/clickhouse/analytics-store.js';
import { createClickHouseClient, type ClickHouseClient } from '../../storage/clickhouse/client.js';
import { findPackageRoot } from '../../storage/clickhouse/migrations.js';

/** A store on its own fresh database; `close()` drops the database. */
export interface TestStore {
  store: ClickHouseAnalyticsStore;
  client: ClickHouseClient;
  database: string;
  close(): Promise<void>;
}

/** Options of {@link openTestStore}. */
export interface OpenTestStoreOptions {
  /** Apply the migrations before returning. @default true */
  migrate?: boolean;
}

interface SharedClient {
  client: Promise<ClickHouseClient>;
  /** Embedded engine's data directory; null on a server. */
  dataDir: string | null;
  users: number;
}

// chdb binds one data directory per process and locks it against other
// processes, so every vitest fork gets its own directory (the pid keeps forks
// apart) and all test files running in one fork share one client on it.
let shared: SharedClient | null = null;
let databases = 0;

const repoRoot = findPackageRoot(path.dirname(fileURLToPath(import.meta.url)));
const testDataRoot = path.join(repoRoot, '.test-data');

/**
 * Opens an analytics store on a fresh, uniquely named database: on the
 * embedded engine by default, on the server at `CLICKHOUSE_URL` when set
 * (credentials from `CLICKHOUSE_USER` / `CLICKHOUSE_PASSWORD`).
 */
export async function openTestStore(options: OpenTestStoreOptions = {}): Promise<TestStore> {
  if (shared === null) {
    const url = process.env.CLICKHOUSE_URL;
    const dataDir = url !== undefined && url !== '' ? null : path.join(testDataRoot, `chdb-${process.env.VITEST_POOL_ID ?? 'main'}-${process.pid}`);
    const opening: SharedClient = { client: openSharedClient(url, dataDir), dataDir, users: 0 };
    // A failed open must not be cached for the rest of the process.
    opening.client.catch(() => {
      if (shared === opening) shared = null;
    });
    shared = opening;
  }
  const handle = shared;
  handle.users++;
  const release = async (client: ClickHouseClient | null): Promise<void> => {
    if (--handle.users === 0 && shared === handle) {
      shared = null;
      await client?.close();
      // The engine is shut once its last client closes; its files are only
      // useful to this process. (A fork killed before this point leaves its
      // directory to the sweep of a later run.) Keep it if a new store was
      // opened on it meanwhile.
      if (handle.dataDir !== null && shared === null) rmSync(handle.dataDir, { recursive: true, force: true });
    }
  };
  let client: ClickHouseClient;
  try {
    client = await handle.client;
  } catch (error) {
    await release(null);
    throw error;
  }
  const database = `aw_test_${process.pid}_${++databases}_${randomBytes(3).toString('hex')}`;
  const dropAndRelease = async (): Promise<void> => {
    try {
      await client.command({ query: `DROP DATABASE IF EXISTS ${database} SYNC` });
    } finally {
      await release(client);
    }
  };
  const store = new ClickHouseAnalyticsStore(client, database, { closeClient: false });
  if (options.migrate ?? true) {
    try {
      await store.migrate();
    } catch (error) {
      await dropAndRelease();
      throw error;
    }
  }
  let closing: Promise<void> | null = null;
  return {
    store,
    client,
    database,
    close: () => (closing ??= dropAndRelease()),
  };
}

async function openSharedClient(url: string | undefined, dataDir: string | null): Promise<ClickHouseClient> {
  if (dataDir === null) {
    return createClickHouseClient({
      url,
      username: process.env.CLICKHOUSE_USER,
      password: process.env.CLICKHOUSE_PASSWORD,
      database: 'default',
      dataDir: '',
    });
  }
  removeStaleDirectories();
  mkdirSync(dataDir, { recursive: true });
  const client = createClickHouseClient({ database: 'default', dataDir });
  // chdb's defaults differ from a server's: it leaves 64-bit integers
  // unquoted in JSON and parses date-times best-effort. Use the server's
  // values so these tests prove the store copes with a real server too.
  // (chdb keeps SET for the life of its session.)
  await client.command({ query: 'SET output_format_json_quote_64bit_integers = 1' });
  await client.command({ query: "SET date_time_input_format = 'basic'" });
  return client;
}

/** Removes data directories of test processes that no longer run. */
function removeStaleDirectories(): void {
  let entries: string[];
  try {
    entries = readdirSync(testDataRoot);
  } catch {
    return;
  }
  for (const entry of entries) {
    const pid = Number(/^chdb-.+-(\d+)$/.exec(entry)?.[1]);
    if (!Number.isInteger(pid) || pid === process.pid || isRunning(pid)) continue;
    rmSync(path.join(testDataRoot, entry), { recursive: true, force: true });
  }
}

function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: the process exists but belongs to someone else.
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}
