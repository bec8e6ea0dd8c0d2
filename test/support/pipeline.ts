import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pino from 'pino';
import { ConfigSchema, type Config } from '../../cli/config.js';
import { startEmbeddedPipeline, type EmbeddedPipeline, type Stage } from '../../cli/pipeline.js';

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

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
      ...overrides,
    }),
  );
}

export async function startTestPipeline(config: Config, stages?: readonly Stage[]): Promise<EmbeddedPipeline> {
  return startEmbeddedPipeline(config, { logger: pino({ level: 'silent' }), watchPolicies: false, ...(stages === undefined ? {} : { stages }) });
}
