import { assertIdentifier, toStorageError, type ClickHouseClient } from './client.js';

/** One stored version of the policy document (`policy_versions`, migration 0004). */
export interface PolicyVersionRecord {
  version: number;
  /** Epoch ms. */
  created_at: number;
  /** API key id, `file` or `seed`. */
  author: string;
  /** What made this version: seed, file, create, update, toggle, delete, mode, replace, rollback. */
  action: string;
  comment: string;
  /** Policy ids whose definition differs from the previous version. */
  changed: string[];
  mode: 'monitoring' | 'strict';
  /** The document as JSON text. */
  document: string;
  sha256: string;
  file_sha256: string;
}

/** Where versions of the policy document are kept. */
export interface PolicyVersionStore {
  append(record: PolicyVersionRecord): Promise<void>;
  latest(): Promise<PolicyVersionRecord | null>;
  get(version: number): Promise<PolicyVersionRecord | null>;
  /** Newest first; without documents when `withDocuments` is false. */
  list(options: { limit: number; before?: number; withDocuments?: boolean }): Promise<PolicyVersionRecord[]>;
}

type Row = Omit<PolicyVersionRecord, 'version' | 'created_at'> & { version: number | string; created_ms: number | string };

const COLUMNS = 'version, toUnixTimestamp64Milli(created_at) AS created_ms, author, action, comment, changed, mode, sha256, file_sha256';

function fromRow(row: Row): PolicyVersionRecord {
  const { created_ms, version, ...rest } = row;
  return { ...rest, document: rest.document ?? '', version: Number(version), created_at: Number(created_ms) };
}

/** {@link PolicyVersionStore} on ClickHouse; parameterised queries only. */
export class ClickHousePolicyVersionStore implements PolicyVersionStore {
  readonly #db: string;

  constructor(
    private readonly client: ClickHouseClient,
    database: string,
  ) {
    this.#db = assertIdentifier(database);
  }

  async append(record: PolicyVersionRecord): Promise<void> {
    try {
      await this.client.insert({
        table: `${this.#db}.policy_versions`,
        format: 'JSONEachRow',
        // DateTime64(3) takes integer milliseconds.
        values: [record],
      });
    } catch (cause) {
      throw toStorageError('AW_STORAGE_INSERT_FAILED', `storing policy version ${record.version}`, cause);
    }
  }

  async latest(): Promise<PolicyVersionRecord | null> {
    const rows = await this.#select(`SELECT ${COLUMNS}, document FROM ${this.#db}.policy_versions FINAL ORDER BY version DESC LIMIT 1`, {});
    return rows[0] ?? null;
  }

  async get(version: number): Promise<PolicyVersionRecord | null> {
    const rows = await this.#select(`SELECT ${COLUMNS}, document FROM ${this.#db}.policy_versions FINAL WHERE version = {version:UInt32} LIMIT 1`, { version });
    return rows[0] ?? null;
  }

  async list(options: { limit: number; before?: number; withDocuments?: boolean }): Promise<PolicyVersionRecord[]> {
    const where = options.before === undefined ? '' : 'WHERE version < {before:UInt32}';
    const columns = options.withDocuments === true ? `${COLUMNS}, document` : COLUMNS;
    return this.#select(`SELECT ${columns} FROM ${this.#db}.policy_versions FINAL ${where} ORDER BY version DESC LIMIT {limit:UInt32}`, {
      limit: options.limit,
      ...(options.before === undefined ? {} : { before: options.before }),
    });
  }

  async #select(query: string, params: Record<string, unknown>): Promise<PolicyVersionRecord[]> {
    try {
      const result = await this.client.query({ query, query_params: params, format: 'JSONEachRow' });
      return (await result.json<Row>()).map(fromRow);
    } catch (cause) {
      throw toStorageError('AW_STORAGE_QUERY_FAILED', 'reading policy versions', cause);
    }
  }
}

/** {@link PolicyVersionStore} in memory (tests, and processes without the API stage). */
export class MemoryPolicyVersionStore implements PolicyVersionStore {
  private readonly versions: PolicyVersionRecord[] = [];

  async append(record: PolicyVersionRecord): Promise<void> {
    this.versions.push(structuredClone(record));
  }

  async latest(): Promise<PolicyVersionRecord | null> {
    return this.versions.at(-1) ?? null;
  }

  async get(version: number): Promise<PolicyVersionRecord | null> {
    return this.versions.find((v) => v.version === version) ?? null;
  }

  async list(options: { limit: number; before?: number; withDocuments?: boolean }): Promise<PolicyVersionRecord[]> {
    return this.versions
      .filter((v) => options.before === undefined || v.version < options.before)
      .reverse()
      .slice(0, options.limit)
      .map((v) => (options.withDocuments === true ? { ...v } : { ...v, document: '' }));
  }
}
