import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { StorageError } from '../errors.js';
import { assertIdentifier, toStorageError, type ClickHouseClient } from './client.js';

/** One versioned SQL file of `infra/clickhouse/`. */
export interface Migration {
  version: number;
  /** File name without the version prefix and extension, e.g. `init`. */
  name: string;
  /** Statements in file order, `{db}` not yet substituted. */
  statements: string[];
  /** sha256 of the file text, recorded so an edited applied file is noticed. */
  checksum: string;
}

/** Options of {@link applyMigrations}. */
export interface ApplyMigrationsOptions {
  /**
   * Folder of `NNNN_name.sql` files.
   * @default `<package root>/infra/clickhouse`
   */
  dir?: string;
  /** Called once per version applied, e.g. to log it. @default no-op */
  onApplied?: (migration: Migration) => void;
}

/** What {@link applyMigrations} did. */
export interface MigrationReport {
  /** Versions applied by this call, ascending; empty when the schema was current. */
  applied: number[];
  /** Highest version recorded after the call. */
  current: number;
}

const MIGRATION_FILE = /^(\d{4})_([a-z0-9_]+)\.sql$/;

/**
 * The package root: the nearest folder at or above `fromDir` holding a
 * `package.json`. The same code runs from `storage/clickhouse/` (tsx, vitest)
 * and from `dist/storage/clickhouse/` (compiled), so a fixed `../..` would be
 * wrong in one of them.
 */
export function findPackageRoot(fromDir: string): string {
  for (let dir = path.resolve(fromDir); ; dir = path.dirname(dir)) {
    if (existsSync(path.join(dir, 'package.json'))) return dir;
    if (path.dirname(dir) === dir) {
      throw new StorageError('AW_STORAGE_MIGRATIONS_NOT_FOUND', `no package.json at or above ${fromDir}`);
    }
  }
}

/** The default migrations folder, `<package root>/infra/clickhouse`. */
export function defaultMigrationsDir(): string {
  return path.join(findPackageRoot(path.dirname(fileURLToPath(import.meta.url))), 'infra', 'clickhouse');
}

/**
 * Splits a migration file into statements. Grammar: a statement ends at a
 * line whose last non-blank character is `;` (comment lines never end one);
 * chunks holding only comments and blank lines are dropped. This is enough
 * for DDL and avoids parsing SQL string literals.
 */
export function splitStatements(sql: string): string[] {
  const statements: string[] = [];
  let current: string[] = [];
  const finish = (): void => {
    const meaningful = current.some((line) => line.trim() !== '' && !line.trim().startsWith('--'));
    if (meaningful) statements.push(current.join('\n').trim().replace(/;$/, '').trim());
    current = [];
  };
  for (const line of sql.split(/\r?\n/)) {
    current.push(line);
    const trimmed = line.trimEnd();
    if (!trimmed.trimStart().startsWith('--') && trimmed.endsWith(';')) finish();
  }
  finish();
  return statements;
}

/** Substitutes the validated database name for every `{db}` placeholder. */
export function renderStatement(statement: string, database: string): string {
  return statement.replaceAll('{db}', assertIdentifier(database));
}

/** Reads and orders the migration files of `dir`; throws on a badly named or duplicate version. */
export async function loadMigrations(dir: string = defaultMigrationsDir()): Promise<Migration[]> {
  let files: string[];
  try {
    files = (await readdir(dir)).filter((file) => file.endsWith('.sql'));
  } catch (cause) {
    throw new StorageError('AW_STORAGE_MIGRATIONS_NOT_FOUND', `cannot read migrations folder ${dir}`, { cause });
  }
  const migrations: Migration[] = [];
  for (const file of files) {
    const match = MIGRATION_FILE.exec(file);
    if (match === null) {
      throw new StorageError('AW_STORAGE_MIGRATIONS_NOT_FOUND', `migration file ${file} in ${dir} must be named NNNN_name.sql`);
    }
    const text = await readFile(path.join(dir, file), 'utf8');
    migrations.push({
      version: Number(match[1]),
      name: match[2] ?? '',
      statements: splitStatements(text),
      checksum: createHash('sha256').update(text).digest('hex'),
    });
  }
  migrations.sort((a, b) => a.version - b.version);
  for (let i = 1; i < migrations.length; i++) {
    if (migrations[i]?.version === migrations[i - 1]?.version) {
      throw new StorageError('AW_STORAGE_MIGRATIONS_NOT_FOUND', `two migrations share version ${migrations[i]?.version} in ${dir}`);
    }
  }
  if (migrations.length === 0) {
    throw new StorageError('AW_STORAGE_MIGRATIONS_NOT_FOUND', `no NNNN_name.sql files in ${dir}`);
  }
  return migrations;
}

/**
 * Creates `database` if missing and applies every migration not yet recorded
 * in `<database>.schema_migrations`, in version order. Running it again is a
 * no-op. A version is recorded only after all its statements succeeded; an
 * applied file whose checksum changed is refused (`AW_STORAGE_MIGRATION_CHANGED`)
 * rather than silently diverging from the schema it describes.
 */
export async function applyMigrations(
  client: ClickHouseClient,
  database: string,
  options: ApplyMigrationsOptions = {},
): Promise<MigrationReport> {
  const db = assertIdentifier(database);
  const migrations = await loadMigrations(options.dir);

  await run(client, `CREATE DATABASE IF NOT EXISTS ${db}`, 'create database');
  // The ledger is created here rather than in a migration: it must exist
  // before the runner can ask which migrations exist.
  await run(
    client,
    `CREATE TABLE IF NOT EXISTS ${db}.schema_migrations
     (version UInt32, name String, checksum String, applied_at DateTime64(3, 'UTC'))
     ENGINE = ReplacingMergeTree ORDER BY version`,
    'create schema_migrations',
  );

  const recorded = await appliedChecksums(client, db);
  const applied: number[] = [];
  for (const migration of migrations) {
    const label = `migration ${String(migration.version).padStart(4, '0')}_${migration.name}`;
    const checksum = recorded.get(migration.version);
    if (checksum !== undefined) {
      if (checksum !== migration.checksum) {
        throw new StorageError(
          'AW_STORAGE_MIGRATION_CHANGED',
          `${label} was edited after it was applied to ${db}; add a new migration instead`,
        );
      }
      continue;
    }
    for (const [index, statement] of migration.statements.entries()) {
      await run(client, renderStatement(statement, db), `${label}, statement ${index + 1}`);
    }
    try {
      await client.insert({
        table: `${db}.schema_migrations`,
        format: 'JSONEachRow',
        values: [{ version: migration.version, name: migration.name, checksum: migration.checksum, applied_at: Date.now() }],
      });
    } catch (cause) {
      throw toStorageError('AW_STORAGE_MIGRATION_FAILED', `recording ${label}`, cause);
    }
    applied.push(migration.version);
    options.onApplied?.(migration);
  }
  const versions = [...recorded.keys(), ...applied];
  return { applied, current: versions.length === 0 ? 0 : Math.max(...versions) };
}

async function appliedChecksums(client: ClickHouseClient, db: string): Promise<Map<number, string>> {
  try {
    const result = await client.query({
      query: `SELECT version, checksum FROM ${db}.schema_migrations FINAL`,
      format: 'JSONEachRow',
    });
    const rows = await result.json<{ version: number | string; checksum: string }>();
    return new Map(rows.map((row) => [Number(row.version), row.checksum]));
  } catch (cause) {
    throw toStorageError('AW_STORAGE_MIGRATION_FAILED', 'reading schema_migrations', cause);
  }
}

async function run(client: ClickHouseClient, query: string, what: string): Promise<void> {
  try {
    await client.command({ query });
  } catch (cause) {
    throw toStorageError('AW_STORAGE_MIGRATION_FAILED', what, cause);
  }
}
