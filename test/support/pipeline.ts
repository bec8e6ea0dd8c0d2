import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pino from 'pino';
import { hashApiKey, type Role } from '../../api/auth.js';
import { ConfigSchema, type Config } from '../../cli/config.js';
import { startEmbeddedPipeline, type EmbeddedPipeline, type Stage } from '../../cli/pipeline.js';

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

/** Keys of the test deployments: one per role, unbound and bound to tenant `acme`. */
export const TEST_KEYS = {
  admin: 'awk_test-admin-0000000000000000000000000000000000000',
  analyst: 'awk_test-analyst-00000000000000000000000000000000000',
  ingest: 'awk_test-ingest-000000000000000000000000000000000000',
  acmeAdmin: 'awk_test-acme-admin-000000000000000000000000000000000',
  acmeAnalyst: 'awk_test-acme-analyst-0000000000000000000000000000000',
  acmeIngest: 'awk_test-acme-ingest-00000000000000000000000000000000',
} as const;
export type TestKey = keyof typeof TEST_KEYS;

const KEY_ROLES: Record<TestKey, { role: Role; tenant?: string }> = {
  admin: { role: 'admin' },
  analyst: { role: 'analyst' },
  ingest: { role: 'ingest' },
  acmeAdmin: { role: 'admin', tenant: 'acme' },
  acmeAnalyst: { role: 'analyst', tenant: 'acme' },
  acmeIngest: { role: 'ingest', tenant: 'acme' },
};

/** `api.keys` entries (hashes only) for {@link TEST_KEYS}. */
export const testApiKeys = (Object.keys(TEST_KEYS) as TestKey[]).map((id) => ({ id, ...KEY_ROLES[id], hash: hashApiKey(TEST_KEYS[id]) }));

/** `Authorization` header of a test key. */
export function auth(key: TestKey = 'admin'): { authorization: string } {
  return { authorization: `Bearer ${TEST_KEYS[key]}` };
}

/** A URL of a route with harmless, well-formed path values (unknown ids: nothing changes). */
export function sampleRouteUrl(url: string): string {
  return url
    .replace('/v1/alerts/:id', `/v1/alerts/${'0'.repeat(32)}`)
    .replace('/v1/silences/:id', '/v1/silences/00000000-0000-0000-0000-000000000000')
    .replace(':version', '999999')
    .replace(':tenant', 'acme')
    .replace(':agent_id', 'nobody')
    .replace(':policy_id', 'no-such-policy')
    .replace(':id', 'no-such-policy');
}

/** Headers of the admin test key. */
export const ADMIN = auth('admin');

/**
 * A config for an embedded pipeline under test: its own data directory per
 * test process (chdb allows one per process) and a fresh database name.
 */
export function testConfig(overrides: Record<string, unknown> = {}): Config {
  return Object.freeze(
    ConfigSchema.parse({
      port: 0,
      data_dir: path.join(repoRoot, '.test-data', `pipeline-${process.pid}`),
      policies: path.join(repoRoot, 'policies/default.yaml'),
      log_level: 'silent',
      clickhouse: { database: `e2e_${randomBytes(5).toString('hex')}`, ...(process.env.CLICKHOUSE_URL ? { url: process.env.CLICKHOUSE_URL } : {}) },
      storage: { batch_rows: 5000, batch_delay_ms: 50 },
      api: { keys: testApiKeys },
      ...overrides,
    }),
  );
}

export async function startTestPipeline(config: Config, stages?: readonly Stage[]): Promise<EmbeddedPipeline> {
  return startEmbeddedPipeline(config, { logger: pino({ level: 'silent' }), watchPolicies: false, ...(stages === undefined ? {} : { stages }) });
}
