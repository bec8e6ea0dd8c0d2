/**
 * The production data path under load: Kafka → detection worker (window state in
 * Redis) → embedded ClickHouse (chdb, temp data dir), every policy of
 * policies/default.yaml, the stages started in this process by
 * `startEmbeddedPipeline`. Prints one JSON line.
 *
 *   node dist/bench/kafka-pipeline.js [--events N]                 throughput mode (default 200,000)
 *   node dist/bench/kafka-pipeline.js --rate R --seconds S         latency mode: R events/s for S seconds
 *
 * Other options: `--agents A` (1000), `--partitions P` (4), `--stages worker[,alerter]`
 * (worker), `--state redis|memory` (redis; memory leaves Redis out, to see its
 * share), `--batch-rows N` / `--batch-delay-ms N` (storage batch settings; the
 * defaults of cli/config.ts), `--warmup S` (rate mode: latency samples of events
 * sent in the first S seconds are left out of the percentiles; 2), `--profile
 * FILE` (V8 CPU profile of the measured phase only, for Chrome DevTools).
 *
 * Throughput mode pre-produces N events to a fresh topic, then starts the
 * pipeline and times until the worker group's committed offsets reach the topic
 * end — the worker commits only after the batch's events, verdicts and audit rows
 * are durable in ClickHouse, so that moment is "everything stored".
 *
 * Rate mode starts the pipeline first, then produces R events/s in small batches
 * every 15 ms. Each event carries `attributes.sent_at`; a plain consumer of the
 * verdicts topic takes, per event, the time its first verdict arrives minus the
 * time it was sent. Only events with a verdict give a sample (about a quarter of
 * this mix: unknown agent products and unapproved domains).
 *
 * Both modes then read the same topic with a plain kafkajs consumer in a fresh
 * group that does nothing with the records: the ceiling the pipeline's consume
 * side could reach on this machine (`raw_consume`, and `ratio` = pipeline / raw;
 * in rate mode the pipeline's figure is the offered rate, so the ratio says little).
 * `cpu_cores` splits the CPU of the measured phase between this process (all its
 * threads, chdb's included), the broker, Redis and the whole machine, so a run
 * disturbed by other work on the machine shows as `machine` well above the sum.
 *
 * Brokers come from KAFKA_BROKERS; when it is unset a broker is started with
 * infra/kafka/start.sh on a free port and stopped at the end. Redis from
 * REDIS_URL (default redis://127.0.0.1:6379). Topics, consumer groups and Redis
 * keys are unique per run and removed afterwards.
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { Kafka, logLevel } from 'kafkajs';
import pino from 'pino';
import { ConfigSchema } from '../cli/config.js';
import { startEmbeddedPipeline, Stages, type EmbeddedPipeline, type Stage } from '../cli/pipeline.js';
import { partitionKey, validateEvent, type AgentEvent, type AgentEventInput } from '../core/event.js';
import { buildTopics, type Topics } from '../core/topics.js';
import { KafkaBus } from '../ingest/bus/kafka/kafka-bus.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

// ---------------------------------------------------------------- options

interface BenchOptions {
  events: number;
  /** Events per second; undefined in throughput mode. */
  rate: number | undefined;
  seconds: number;
  agents: number;
  partitions: number;
  stages: Stage[];
  batchRows: number;
  batchDelayMs: number;
  warmupSeconds: number;
  profile: string | undefined;
  /** Where window state lives: Redis (the production path) or the in-memory store, to see what Redis costs. */
  state: 'redis' | 'memory';
  /** Policy document (default: policies/default.yaml). */
  policies: string;
}

function parseOptions(argv: readonly string[]): BenchOptions {
  const flags = new Map<string, string>();
  const positional: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    if (!arg.startsWith('--')) {
      positional.push(arg);
      continue;
    }
    const [name, inline] = arg.slice(2).split('=', 2) as [string, string | undefined];
    const value = inline ?? argv[++i];
    if (value === undefined) throw new Error(`--${name} needs a value`);
    flags.set(name, value);
  }
  const known = ['events', 'rate', 'seconds', 'agents', 'partitions', 'stages', 'batch-rows', 'batch-delay-ms', 'warmup', 'profile', 'state', 'policies'];
  for (const name of flags.keys()) if (!known.includes(name)) throw new Error(`unknown option --${name} (known: ${known.map((k) => `--${k}`).join(' ')})`);
  const num = (name: string, fallback: number, min: number): number => {
    const text = flags.get(name);
    const value = text === undefined ? fallback : Number(text.replaceAll('_', ''));
    if (!Number.isFinite(value) || value < min) throw new Error(`--${name} must be a number >= ${min} (got ${text})`);
    return value;
  };
  const rate = flags.has('rate') ? num('rate', 0, 1) : undefined;
  const seconds = num('seconds', 30, 1);
  const stages = (flags.get('stages') ?? 'worker').split(',').map((s) => s.trim()) as Stage[];
  for (const stage of stages) if (!Stages.includes(stage)) throw new Error(`--stages: unknown stage ${stage} (one of ${Stages.join(', ')})`);
  if (!stages.includes('worker')) throw new Error('--stages must include worker');
  const state = flags.get('state') ?? 'redis';
  if (state !== 'redis' && state !== 'memory') throw new Error(`--state must be redis or memory (got ${state})`);
  return {
    events: rate === undefined ? Math.floor(num('events', Number(positional[0] ?? 200_000), 1)) : Math.round(rate * seconds),
    rate,
    seconds,
    agents: Math.floor(num('agents', 1_000, 1)),
    partitions: Math.floor(num('partitions', 4, 1)),
    stages,
    batchRows: Math.floor(num('batch-rows', 10_000, 1)),
    batchDelayMs: Math.floor(num('batch-delay-ms', 100, 1)),
    warmupSeconds: num('warmup', 2, 0),
    profile: flags.get('profile'),
    state,
    policies: path.resolve(flags.get('policies') ?? path.join(root, 'policies/default.yaml')),
  };
}

// ---------------------------------------------------------------- traffic

const names = ['claude-code', 'cursor', 'copilot', 'codex', 'devin', 'shadow-gpt'];
const domains = ['api.anthropic.com', 'api.openai.com', 'github.com', 'paste.exfil-drop.net'];
const types = ['api_call', 'tool_call', 'resource_access', 'network_egress'] as const;
/** 08:00 in Europe/Berlin on a Tuesday: the whole run falls in business hours. */
const dayStart = Date.UTC(2026, 10, 24, 7, 0, 0);

/**
 * The mix of bench/embedded.ts: event k of `total` spread over ten business
 * hours, so no agent comes near the rate threshold; one event in six names an
 * unknown product and one in eight calls an unapproved domain, so verdicts flow.
 */
function benchEvent(k: number, total: number, agents: number, sentAt?: number): AgentEvent {
  const input: AgentEventInput = {
    event_id: `bench-${k}`,
    time: dayStart + Math.floor((k * 36_000_000) / total),
    agent: { id: `agent-${k % agents}`, name: names[k % names.length] as string },
    type: types[k % types.length] as (typeof types)[number],
    network: { domain: domains[(k >> 3) % domains.length] as string, method: 'POST' },
    // Each agent works on its own 23 files in turn: realistic diversity, no resource sweep.
    resource: `/repo/file-${Math.floor(k / agents) % 23}.ts`,
    ...(sentAt === undefined ? {} : { attributes: { sent_at: sentAt } }),
  };
  const result = validateEvent(input);
  if (!result.ok) throw new Error(result.reason);
  return result.event;
}

function toRecords(events: readonly AgentEvent[]) {
  return events.map((e) => ({ key: partitionKey(e.tenant, e.agent.id), value: e }));
}

// ---------------------------------------------------------------- infrastructure

/** A port whose successor is free too (start.sh puts the KRaft controller on port + 1). */
async function freePortPair(): Promise<number> {
  const listenOn = (port: number) =>
    new Promise<number | null>((resolve) => {
      const server = createServer();
      server.once('error', () => resolve(null));
      server.listen(port, '127.0.0.1', () => {
        const address = server.address();
        server.close(() => resolve(typeof address === 'object' && address !== null ? address.port : null));
      });
    });
  for (let attempt = 0; attempt < 20; attempt++) {
    const port = await listenOn(0);
    if (port !== null && port < 65535 && (await listenOn(port + 1)) !== null) return port;
  }
  throw new Error('no free pair of ports for the Kafka broker');
}

interface Brokers {
  brokers: string[];
  /** Set when this bench started the broker. */
  port: number | undefined;
}

async function kafkaBrokers(): Promise<Brokers> {
  const fromEnv = process.env.KAFKA_BROKERS?.trim();
  if (fromEnv !== undefined && fromEnv !== '') return { brokers: fromEnv.split(',').map((b) => b.trim()), port: undefined };
  const port = await freePortPair();
  const started = spawnSync('bash', [path.join(root, 'infra/kafka/start.sh')], {
    env: { ...process.env, KAFKA_PORT: String(port) },
    encoding: 'utf8',
  });
  if (started.status !== 0) throw new Error(`infra/kafka/start.sh failed (exit ${started.status}):\n${started.stderr}`);
  return { brokers: [started.stdout.trim()], port };
}

function stopBroker(port: number): void {
  spawnSync('bash', [path.join(root, 'infra/kafka/stop.sh')], { env: { ...process.env, KAFKA_PORT: String(port) }, stdio: 'ignore' });
}

/** CPU seconds (user + system) a process has used so far, from /proc; null where unreadable. */
function cpuSecondsOf(pid: number | undefined): number | null {
  if (pid === undefined) return null;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100; // utime, stime in clock ticks (USER_HZ = 100)
  } catch {
    return null;
  }
}

/** The local redis-server process, if any: its CPU time tells how busy Redis was. */
function redisPid(): number | undefined {
  try {
    for (const entry of readdirSync('/proc')) {
      if (!/^\d+$/.test(entry)) continue;
      try {
        if (readFileSync(`/proc/${entry}/comm`, 'utf8').trim() === 'redis-server') return Number(entry);
      } catch {
        // Gone meanwhile.
      }
    }
  } catch {
    // No /proc.
  }
  return undefined;
}

/** The pid of a local broker started by infra/kafka/start.sh (by this bench or before it), if that is where `broker` points. */
function brokerPid(broker: string | undefined): number | undefined {
  const port = /^(?:127\.0\.0\.1|localhost):(\d+)$/.exec(broker ?? '')?.[1];
  if (port === undefined) return undefined;
  try {
    return Number(readFileSync(path.join(root, 'infra/kafka/.run', String(port), 'kafka.pid'), 'utf8').trim());
  } catch {
    return undefined;
  }
}

/** CPU seconds every process of the machine has used (all CPUs, /proc/stat), or null. */
function machineCpuSeconds(): number | null {
  try {
    const fields = (readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '').trim().split(/\s+/).slice(1).map(Number);
    // user nice system idle iowait irq softirq steal: busy is all but idle and iowait.
    const busy = fields.slice(0, 8).reduce((sum, value, i) => (i === 3 || i === 4 ? sum : sum + value), 0);
    return busy / 100;
  } catch {
    return null;
  }
}

/**
 * CPU use over a phase, in cores (1.0 = one core busy): this process (all its
 * threads, chdb's among them), the broker, Redis, and the whole machine — on a
 * shared machine `machine` minus the others shows how much went to strangers.
 */
function cpuMeter(pids: { kafka: number | undefined; redis: number | undefined }) {
  const wall0 = performance.now();
  const node0 = process.cpuUsage();
  const kafka0 = cpuSecondsOf(pids.kafka);
  const redis0 = cpuSecondsOf(pids.redis);
  const machine0 = machineCpuSeconds();
  return () => {
    const wall = (performance.now() - wall0) / 1000;
    const node = process.cpuUsage(node0);
    const cores = (before: number | null, after: number | null) => (before === null || after === null ? null : round((after - before) / wall, 2));
    return {
      node: round((node.user + node.system) / 1e6 / wall, 2),
      kafka: cores(kafka0, cpuSecondsOf(pids.kafka)),
      redis: cores(redis0, cpuSecondsOf(pids.redis)),
      machine: cores(machine0, machineCpuSeconds()),
    };
  };
}

// ---------------------------------------------------------------- measuring

function round(value: number, digits = 0): number {
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}

function percentile(sorted: readonly number[], p: number): number | null {
  if (sorted.length === 0) return null;
  return round(sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] as number, 1);
}

/** Polls until `condition` holds; throws after `timeoutMs`. */
async function until(what: string, condition: () => Promise<boolean> | boolean, timeoutMs: number, everyMs: number): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!(await condition())) {
    if (performance.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, everyMs));
  }
}

/** Progress samples `[ms, count]`; the rate between 10 % and 90 % of `total` leaves start-up and the tail out. */
function steadyRate(samples: readonly (readonly [number, number])[], total: number): number | null {
  const at = (fraction: number) => samples.find(([, n]) => n >= fraction * total);
  const from = at(0.1);
  const to = at(0.9);
  if (from === undefined || to === undefined || to[0] <= from[0]) return null;
  return Math.round(((to[1] - from[1]) * 1000) / (to[0] - from[0]));
}

/**
 * Reads the whole topic with a plain kafkajs consumer in a fresh group, with the
 * bus's fetch settings and concurrency, doing nothing with the records.
 */
async function rawConsumeRate(kafka: Kafka, topic: string, groupId: string, total: number) {
  const consumer = kafka.consumer({ groupId, maxBytes: 10_485_760, maxBytesPerPartition: 1_048_576, maxWaitTimeInMs: 500 });
  await consumer.connect();
  await consumer.subscribe({ topics: [topic], fromBeginning: true });
  let count = 0;
  const samples: [number, number][] = [];
  await consumer.run({
    autoCommit: false,
    partitionsConsumedConcurrently: 4,
    eachBatch: async ({ batch }) => {
      count += batch.messages.length;
      samples.push([performance.now(), count]);
    },
  });
  // run() resolves once the group is joined: from here on it only fetches.
  const t0 = performance.now();
  await until('the raw consumer to read the topic', () => count >= total, 300_000, 5);
  const seconds = (performance.now() - t0) / 1000;
  await consumer.disconnect();
  return { events_per_second: Math.round(total / seconds), steady_events_per_second: steadyRate(samples, total), seconds: round(seconds, 3) };
}

/**
 * Joins (and leaves) a throwaway group. On a fresh broker the first join creates
 * the offsets topic and meets "coordinator is loading" while it loads; KafkaJS then
 * restarts the consumer, but `run()` has already resolved — so without this the
 * first measured consumer would spend part of its timed run joining.
 */
async function warmGroupCoordinator(kafka: Kafka, topic: string, groupId: string): Promise<void> {
  const consumer = kafka.consumer({ groupId, maxWaitTimeInMs: 100 });
  const joined = new Promise<void>((resolve) => consumer.on(consumer.events.GROUP_JOIN, () => resolve()));
  await consumer.connect();
  await consumer.subscribe({ topics: [topic], fromBeginning: true });
  await consumer.run({ eachBatch: async () => undefined });
  await Promise.race([joined, new Promise((_, reject) => setTimeout(() => reject(new Error('the warm-up consumer did not join within 60 s')), 60_000).unref())]);
  await consumer.disconnect();
}

// ---------------------------------------------------------------- the run

const options = parseOptions(process.argv.slice(2));
const sfx = randomBytes(4).toString('hex');
const topicNames = { events: `bench-events-${sfx}`, verdicts: `bench-verdicts-${sfx}`, dlq: `bench-dlq-${sfx}`, policies: `bench-policies-${sfx}` };
const groupPrefix = `bench-${sfx}-`;
const redisUrl = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const keyPrefix = `bench-${sfx}:`;
const dataDir = mkdtempSync(path.join(tmpdir(), 'aw-kafka-bench-'));
// Errors go to stderr, except the ones KafkaJS logs for conditions the bus handles
// (a topic that already exists, a coordinator still being elected).
const benign = /Topic creation errors|group coordinator is not available/;
const logger = pino({ level: 'error' }, { write: (line: string) => void (benign.test(line) || process.stderr.write(line)) });

const infra = await kafkaBrokers();
const kafka = new Kafka({ brokers: infra.brokers, clientId: `bench-${sfx}`, logLevel: logLevel.NOTHING });
const admin = kafka.admin();
const topics: Topics = buildTopics(topicNames);
const producerBus = new KafkaBus({ brokers: infra.brokers, clientId: `bench-producer-${sfx}`, partitions: options.partitions, logger: pino({ level: 'silent' }) });
let pipeline: EmbeddedPipeline | undefined;

try {
  await admin.connect();
  await admin.createTopics({
    topics: Object.values(topicNames).map((topic) => ({ topic, numPartitions: options.partitions, replicationFactor: 1 })),
    waitForLeaders: true,
  });
  await warmGroupCoordinator(kafka, topicNames.dlq, `${groupPrefix}warmup`);
  const topicEnd = async (topic: string) => new Map((await admin.fetchTopicOffsets(topic)).map((o) => [o.partition, Number(o.high)]));

  const config = Object.freeze(
    ConfigSchema.parse({
      port: 0,
      data_dir: dataDir,
      policies: options.policies,
      log_level: 'error',
      bus: { partitions: options.partitions },
      kafka: { brokers: infra.brokers, client_id: `bench-pipeline-${sfx}`, group_prefix: groupPrefix, topics: topicNames },
      redis: options.state === 'redis' ? { url: redisUrl, key_prefix: keyPrefix, idle_ttl_ms: 600_000 } : {},
      storage: { batch_rows: options.batchRows, batch_delay_ms: options.batchDelayMs },
    }),
  );
  const startPipeline = () => startEmbeddedPipeline(config, { logger, stages: options.stages, watchPolicies: false });

  const committedUpTo = async (topic: string, group: string, end: Map<number, number>): Promise<boolean> => {
    const committed = await (pipeline?.bus as KafkaBus).committedOffsets(topic, group);
    for (const [partition, high] of end) if ((committed.get(partition) ?? -1) < high) return false;
    return true;
  };
  /**
   * The worker group has committed the whole events topic (every event's rows are
   * durable), and with an alerter in the run, the alerting group the verdicts topic.
   */
  const caughtUp = async (end: Map<number, number>): Promise<boolean> => {
    if (!(await committedUpTo(topicNames.events, 'agentwatch-detectors', end))) return false;
    if (!options.stages.includes('alerter')) return true;
    return committedUpTo(topicNames.verdicts, 'agentwatch-alerting', await topicEnd(topicNames.verdicts));
  };

  const pids = { kafka: brokerPid(infra.brokers[0]), redis: redisUrl.includes('127.0.0.1') || redisUrl.includes('localhost') ? redisPid() : undefined };
  let profiler: Session | undefined;
  const startProfile = async () => {
    if (options.profile === undefined) return;
    profiler = new Session();
    profiler.connect();
    await profiler.post('Profiler.enable');
    await profiler.post('Profiler.setSamplingInterval', { interval: 200 });
    await profiler.post('Profiler.start');
  };
  const stopProfile = async () => {
    if (profiler === undefined || options.profile === undefined) return;
    const { profile } = await profiler.post('Profiler.stop');
    writeFileSync(options.profile, JSON.stringify(profile));
    profiler.disconnect();
  };

  let result: Record<string, unknown>;
  if (options.rate === undefined) {
    // ------------------------------------------------ throughput: pre-produce, then catch up
    const p0 = performance.now();
    for (let i = 0; i < options.events; i += 5_000) {
      const chunk: AgentEvent[] = [];
      for (let k = i; k < Math.min(options.events, i + 5_000); k++) chunk.push(benchEvent(k, options.events, options.agents));
      await producerBus.publish(topics.events, toRecords(chunk));
    }
    const produceSeconds = (performance.now() - p0) / 1000;
    const end = await topicEnd(topicNames.events);

    const cpu = cpuMeter(pids);
    await startProfile();
    const s0 = performance.now();
    pipeline = await startPipeline();
    const t0 = performance.now();
    const worker = pipeline.worker;
    const judgedAtStart = worker?.stats.events ?? 0;
    const progress: [number, number][] = [];
    const sampler = setInterval(() => progress.push([performance.now(), worker?.stats.events ?? 0]), 20);
    await until('the pipeline to commit the whole topic', () => caughtUp(end), 600_000, 50);
    const seconds = (performance.now() - t0) / 1000;
    clearInterval(sampler);
    await stopProfile();
    const cpuCores = cpu();
    const rss = process.memoryUsage().rss;
    const snapshot = pipeline.snapshot();
    await pipeline.stop();
    pipeline = undefined;

    const raw = await rawConsumeRate(kafka, topicNames.events, `${groupPrefix}raw`, options.events);
    const eventsPerSecond = Math.round((options.events - judgedAtStart) / seconds);
    result = {
      mode: 'throughput',
      events: options.events,
      produce_events_per_second: Math.round(options.events / produceSeconds),
      startup_seconds: round((t0 - s0) / 1000, 3),
      judged_during_startup: judgedAtStart,
      seconds: round(seconds, 3),
      events_per_second: eventsPerSecond,
      steady_events_per_second: steadyRate(progress, options.events),
      latency_ms: null,
      verdicts: snapshot.verdicts,
      raw_consume: raw,
      ratio: round(eventsPerSecond / raw.events_per_second, 3),
      cpu_cores: cpuCores,
      rss_mib: Math.round(rss / 1048576),
    };
  } else {
    // ------------------------------------------------ rate: produce R/s, time each event to its first verdict
    const rate = options.rate;
    const total = options.events;
    pipeline = await startPipeline();
    const sentAt = new Float64Array(total).fill(Number.NaN);
    const samples: { sent: number; latency: number }[] = [];
    const verdictPositions = new Map<number, number>();
    const latencyConsumer = kafka.consumer({ groupId: `${groupPrefix}latency`, maxWaitTimeInMs: 100 });
    await latencyConsumer.connect();
    await latencyConsumer.subscribe({ topics: [topicNames.verdicts], fromBeginning: true });
    await latencyConsumer.run({
      autoCommit: false,
      partitionsConsumedConcurrently: 4,
      eachBatch: async ({ batch }) => {
        const received = Date.now();
        for (const message of batch.messages) {
          const { event_id: eventId } = JSON.parse((message.value as Buffer).toString('utf8')) as { event_id: string };
          const k = Number(eventId.slice('bench-'.length));
          const sent = sentAt[k];
          if (sent === undefined || Number.isNaN(sent)) continue; // a second verdict of the same event
          samples.push({ sent, latency: received - sent });
          sentAt[k] = Number.NaN;
        }
        const last = batch.messages[batch.messages.length - 1];
        if (last !== undefined) verdictPositions.set(batch.partition, Number(last.offset) + 1);
      },
    });

    const cpu = cpuMeter(pids);
    await startProfile();
    const t0 = performance.now();
    const wall0 = Date.now();
    let sent = 0;
    let lateTicks = 0;
    // Every 15 ms, send what the rate owes by now: a slow send makes the next batch bigger, not the rate lower.
    while (sent < total) {
      const tick = performance.now();
      const owed = Math.min(total, Math.floor(((tick - t0) / 1000) * rate)) - sent;
      if (owed > 0) {
        const now = Date.now();
        const batch: AgentEvent[] = [];
        for (let k = sent; k < sent + owed; k++) {
          batch.push(benchEvent(k, total, options.agents, now));
          sentAt[k] = now;
        }
        sent += owed;
        await producerBus.publish(topics.events, toRecords(batch));
      }
      const wait = 15 - (performance.now() - tick);
      if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
      else lateTicks++;
    }
    const produceSeconds = (performance.now() - t0) / 1000;
    const end = await topicEnd(topicNames.events);
    await until('the pipeline to commit the whole topic', () => caughtUp(end), 600_000, 50);
    const seconds = (performance.now() - t0) / 1000;
    await stopProfile();
    const cpuCores = cpu();
    const verdictEnd = await topicEnd(topicNames.verdicts);
    await until(
      'the latency consumer to read every verdict',
      () => [...verdictEnd].every(([partition, high]) => (verdictPositions.get(partition) ?? 0) >= high),
      120_000,
      20,
    );
    await latencyConsumer.disconnect();
    const rss = process.memoryUsage().rss;
    const snapshot = pipeline.snapshot();
    await pipeline.stop();
    pipeline = undefined;

    const counted = samples.filter((s) => s.sent >= wall0 + options.warmupSeconds * 1000).map((s) => s.latency).sort((a, b) => a - b);
    const all = samples.map((s) => s.latency).sort((a, b) => a - b);
    const raw = await rawConsumeRate(kafka, topicNames.events, `${groupPrefix}raw`, total);
    const eventsPerSecond = Math.round(total / seconds);
    result = {
      mode: 'rate',
      events: total,
      target_rate: rate,
      sent_rate: Math.round(total / produceSeconds),
      late_producer_ticks: lateTicks,
      seconds: round(seconds, 3),
      drain_seconds: round(seconds - produceSeconds, 3),
      events_per_second: eventsPerSecond,
      steady_events_per_second: null,
      latency_ms: {
        p50: percentile(counted, 0.5),
        p99: percentile(counted, 0.99),
        max: counted.length === 0 ? null : round(counted[counted.length - 1] as number, 1),
        samples: counted.length,
        warmup_seconds: options.warmupSeconds,
        p99_with_warmup: percentile(all, 0.99),
      },
      verdicts: snapshot.verdicts,
      raw_consume: raw,
      ratio: round(eventsPerSecond / raw.events_per_second, 3),
      cpu_cores: cpuCores,
      rss_mib: Math.round(rss / 1048576),
    };
  }

  console.log(
    JSON.stringify({
      bench: 'kafka-pipeline',
      ...result,
      partitions: options.partitions,
      agents: options.agents,
      stages: options.stages,
      state: options.state,
      policies: path.relative(root, options.policies),
      storage: { batch_rows: options.batchRows, batch_delay_ms: options.batchDelayMs },
      peak_rss_mib: Math.round(process.resourceUsage().maxRSS / 1024),
    }),
  );
} finally {
  await pipeline?.stop().catch(() => undefined);
  await producerBus.close().catch(() => undefined);
  if (infra.port === undefined) {
    // A shared broker: leave nothing behind.
    await admin.deleteTopics({ topics: Object.values(topicNames) }).catch(() => undefined);
    const groups = ['agentwatch-detectors', 'agentwatch-alerting', 'agentwatch-dead-letters', 'raw', 'latency', 'warmup'].map((g) => `${groupPrefix}${g}`);
    await admin.deleteGroups(groups).catch(() => undefined);
  }
  await admin.disconnect().catch(() => undefined);
  if (infra.port !== undefined) stopBroker(infra.port);
  const redis = new Redis(redisUrl, { lazyConnect: true, maxRetriesPerRequest: 1 });
  try {
    await redis.connect();
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${keyPrefix}*`, 'COUNT', 1000);
      cursor = next;
      if (keys.length > 0) await redis.unlink(...keys);
    } while (cursor !== '0');
  } catch {
    // Keys expire after idle_ttl_ms anyway.
  } finally {
    redis.disconnect();
  }
  rmSync(dataDir, { recursive: true, force: true });
}
