/**
 * vitest globalSetup: makes sure a Kafka broker and a Redis answer before any
 * test file runs, so integration tests run everywhere `npm test` runs — and CI
 * fails loudly, never skips, when a service cannot be had.
 *
 * - Kafka: unless `KAFKA_BROKERS` is set, starts a broker with
 *   `infra/kafka/start.sh` on free ports and stops it at teardown.
 * - Redis: unless `REDIS_URL` is set, uses 127.0.0.1:6379 when it answers PING,
 *   otherwise starts a memory-only `redis-server` there and shuts it down at teardown.
 *
 * The addresses reach the test workers twice: as environment variables (set
 * here before the fork pool starts, so every fork inherits them) and through
 * vitest's `provide`/`inject` (`inject('kafkaBrokers')`, `inject('redisUrl')`).
 */
import { spawn } from 'node:child_process';
import { Redis } from 'ioredis';
import type { TestProject } from 'vitest/node';
import { freePort, runScript } from './support/scripts.js';

declare module 'vitest' {
  export interface ProvidedContext {
    /** Comma-separated Kafka bootstrap servers. */
    kafkaBrokers: string;
    /** Redis URL, e.g. `redis://127.0.0.1:6379`. */
    redisUrl: string;
  }
}

const defaultRedisPort = 6379;
/** First start downloads the jars with Maven: allow for it. */
const kafkaStartTimeoutMs = 240_000;

async function redisAnswers(url: string): Promise<boolean> {
  const client = new Redis(url, { lazyConnect: true, connectTimeout: 1000, maxRetriesPerRequest: 0, retryStrategy: () => null });
  client.on('error', () => undefined);
  try {
    await client.connect();
    return (await client.ping()) === 'PONG';
  } catch {
    return false;
  } finally {
    client.disconnect();
  }
}

async function pollUntil(condition: () => Promise<boolean>, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await condition()) return true;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return false;
}

/** Starts a memory-only redis-server on `port`; resolves once it answers PING. */
async function startEphemeralRedis(port: number): Promise<void> {
  const args = ['--daemonize', 'yes', '--bind', '127.0.0.1', '--port', String(port), '--save', '', '--appendonly', 'no'];
  await new Promise<void>((resolve, reject) => {
    const child = spawn('redis-server', args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('error', (error) => reject(new Error(`cannot run redis-server (is it installed? apt-get install redis-server): ${error.message}`)));
    child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`redis-server exited with ${String(code)}: ${stderr}`))));
  });
  if (!(await pollUntil(() => redisAnswers(`redis://127.0.0.1:${port}`), 10_000))) {
    throw new Error(`redis-server started on port ${port} but does not answer PING`);
  }
}

const teardowns: (() => Promise<void>)[] = [];

export async function setup(project: TestProject): Promise<void> {
  const started: string[] = [];
  // allSettled, not all: a failing service must not leave the other one
  // running, so wait for both before tearing down.
  const results = await Promise.allSettled([
    (async () => {
      if (process.env.KAFKA_BROKERS === undefined || process.env.KAFKA_BROKERS === '') {
        const [port, controllerPort] = [await freePort(), await freePort()];
        const env = { KAFKA_PORT: String(port), KAFKA_CONTROLLER_PORT: String(controllerPort) };
        // Registered first: stop.sh is idempotent, and a start that times out
        // may leave a broker behind.
        teardowns.push(async () => void (await runScript('infra/kafka/stop.sh', env, 60_000)));
        const bootstrap = await runScript('infra/kafka/start.sh', env, kafkaStartTimeoutMs);
        process.env.KAFKA_BROKERS = bootstrap.split('\n').pop() ?? bootstrap;
        started.push(`kafka ${process.env.KAFKA_BROKERS}`);
      }
    })(),
    (async () => {
      if (process.env.REDIS_URL === undefined || process.env.REDIS_URL === '') {
        const url = `redis://127.0.0.1:${defaultRedisPort}`;
        if (!(await redisAnswers(url))) {
          await startEphemeralRedis(defaultRedisPort);
          teardowns.push(async () => {
            const client = new Redis(url, { maxRetriesPerRequest: 1, retryStrategy: () => null });
            client.on('error', () => undefined);
            // SHUTDOWN closes the connection instead of replying.
            await client.call('SHUTDOWN', 'NOSAVE').catch(() => undefined);
            client.disconnect();
          });
          started.push(`redis ${url}`);
        }
        process.env.REDIS_URL = url;
      }
    })(),
  ]);
  const failures = results.flatMap((r) => (r.status === 'rejected' ? [r.reason as unknown] : []));
  if (failures.length > 0) {
    await teardown().catch(() => undefined);
    throw failures.length === 1 ? failures[0] : new AggregateError(failures, 'test services could not be started');
  }
  if (started.length > 0) console.log(`[global-setup] started ${started.join(', ')}`);
  project.provide('kafkaBrokers', process.env.KAFKA_BROKERS as string);
  project.provide('redisUrl', process.env.REDIS_URL as string);
}

export async function teardown(): Promise<void> {
  const pending = teardowns.splice(0).reverse();
  const errors: unknown[] = [];
  for (const stop of pending) await stop().catch((error: unknown) => errors.push(error));
  if (errors.length > 0) throw new AggregateError(errors, 'stopping test services failed');
}
