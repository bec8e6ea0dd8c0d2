import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['**/*.test.ts'],
    exclude: ['node_modules/**', 'dist/**'],
    // chdb allows one data directory per process: run test files in forked
    // processes; each fork opens its own directory (see test/support/clickhouse.ts).
    pool: 'forks',
    // --expose-gc: memory-bound tests measure the heap after a full collection.
    poolOptions: { forks: { maxForks: 2, minForks: 1, execArgv: ['--expose-gc'] } },
    // Starts (or finds) the Kafka broker and Redis the integration tests use;
    // sets KAFKA_BROKERS and REDIS_URL for the forks (test/global-setup.ts).
    globalSetup: ['test/global-setup.ts'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
  },
});
