import { createHash } from 'node:crypto';
import {
  Kafka,
  logLevel as KafkaLogLevel,
  type Admin,
  type Consumer,
  type EachBatchPayload,
  type ICustomPartitioner,
  type KafkaMessage,
  type logCreator,
  type Message,
  type Producer,
  type RetryOptions,
} from 'kafkajs';
import pino, { type Logger } from 'pino';
import type { BusRecord, DeliveredBatch, DeliveredRecord, EventBus, SubscribeOptions, Subscription, Topic } from '../../../core/ports.js';
import type { DeadLetter } from '../../../core/records.js';
import { buildTopics } from '../../../core/topics.js';
import { partitionForKey } from '../partitioner.js';
import { BusError, wrapKafkaError } from './errors.js';

export interface KafkaBusOptions {
  /** Bootstrap servers, `host:port`; at least one. */
  brokers: readonly string[];
  /** @default "agentwatch" */
  clientId?: string;
  /** Partitions of the topics this bus creates (existing topics keep theirs). @default 4 */
  partitions?: number;
  /** Replication factor of the topics this bus creates. @default 1 */
  replicationFactor?: number;
  /** Prepended to every consumer group name (`SubscribeOptions.group`). @default "" */
  groupIdPrefix?: string;
  /** Consumer session timeout; a consumer silent for longer leaves the group. @default 30_000 */
  sessionTimeoutMs?: number;
  /** @default 3_000 */
  heartbeatIntervalMs?: number;
  /**
   * Most bytes one fetch returns over all partitions of a subscription. KafkaJS
   * fetches again only once every batch of the previous fetch was handled, so
   * this bounds what a slow handler can make the consumer hold in memory.
   * @default 10_485_760 (10 MiB)
   */
  maxBytes?: number;
  /** Most bytes one fetch returns per partition. @default 1_048_576 (1 MiB) */
  maxBytesPerPartition?: number;
  /**
   * Longest a fetch waits on the broker for new records. It also bounds how
   * late a paused partition (handler backoff) is fetched again after it
   * resumes, since the resume takes effect at the next fetch. @default 500
   */
  maxWaitMs?: number;
  /** Records per handler call when `subscribe` does not say. @default 1000 */
  maxBatch?: number;
  /** Partitions whose batches one subscription hands to its handler at the same time. @default 4 */
  partitionsConsumedConcurrently?: number;
  /** Most encoded bytes per produce request; larger publishes are split, in order. @default 900_000 (under the broker's 1 MiB default) */
  maxRequestBytes?: number;
  /** Where records that fail to decode go. @default the `agentwatch.dlq` topic of `buildTopics()` */
  deadLetterTopic?: Topic<DeadLetter>;
  /** Called for every record sent to the dead-letter topic (metrics). */
  onDeadLetter?: (letter: DeadLetter, topic: string) => void;
  /** First pause of a partition whose handler threw; doubled per consecutive failure. @default 200 */
  retryInitialDelayMs?: number;
  /** @default 30_000 */
  retryMaxDelayMs?: number;
  /** @default 10_000 */
  connectionTimeoutMs?: number;
  /**
   * Retries of a consumer's broker requests and connections before KafkaJS
   * gives up on them, backing off exponentially from 300 ms up to
   * `consumerRetryMaxDelayMs`. The defaults ride out about a minute of the
   * broker being away (a restart). A consumer that gives up crashes, and KafkaJS
   * restarts it as a new group member: the group then waits out the old
   * member's session timeout (`sessionTimeoutMs`) before anyone consumes again.
   * (The producer and admin keep KafkaJS's defaults, about 10 s: a publish fails
   * rather than holds its caller for a minute.)
   * @default 14
   */
  consumerRetries?: number;
  /** @default 5_000 */
  consumerRetryMaxDelayMs?: number;
  /** KafkaJS logs are routed here (child logger `module: "kafka-bus"`). @default pino at level "warn" */
  logger?: Logger;
}

/** A dead letter's `raw` text keeps at most this many characters. */
const RAW_TEXT_LIMIT = 4096;
const REASON_LIMIT = 1024;

interface ResolvedOptions {
  readonly brokers: readonly string[];
  readonly clientId: string;
  readonly partitions: number;
  readonly replicationFactor: number;
  readonly groupIdPrefix: string;
  readonly sessionTimeoutMs: number;
  readonly heartbeatIntervalMs: number;
  readonly maxBytes: number;
  readonly maxBytesPerPartition: number;
  readonly maxWaitMs: number;
  readonly maxBatch: number;
  readonly partitionsConsumedConcurrently: number;
  readonly maxRequestBytes: number;
  readonly deadLetterTopic: Topic<DeadLetter>;
  readonly retryInitialDelayMs: number;
  readonly retryMaxDelayMs: number;
  readonly connectionTimeoutMs: number;
  readonly consumerRetries: number;
  readonly consumerRetryMaxDelayMs: number;
}

function invalid(key: string, rule: string): BusError {
  return new BusError('AW_BUS_INVALID_OPTIONS', `kafka bus option ${key}: ${rule}`);
}

function integerOption(key: string, value: number | undefined, fallback: number, min: number, max = Number.MAX_SAFE_INTEGER): number {
  const resolved = value ?? fallback;
  if (!Number.isInteger(resolved) || resolved < min || resolved > max) {
    throw invalid(key, `must be an integer in [${min}, ${max}] (got ${String(value)})`);
  }
  return resolved;
}

/** Validates and freezes the options; errors name the key and its bound. */
export function resolveKafkaBusOptions(options: KafkaBusOptions): Readonly<ResolvedOptions> {
  if (!Array.isArray(options.brokers) || options.brokers.length === 0) throw invalid('brokers', 'must list at least one host:port');
  for (const broker of options.brokers) {
    if (typeof broker !== 'string' || !/^[^\s:]+:\d{1,5}$/.test(broker)) throw invalid('brokers', `"${String(broker)}" is not host:port`);
  }
  const clientId = options.clientId ?? 'agentwatch';
  if (clientId.length === 0) throw invalid('clientId', 'must not be empty');
  const sessionTimeoutMs = integerOption('sessionTimeoutMs', options.sessionTimeoutMs, 30_000, 1_000);
  const heartbeatIntervalMs = integerOption('heartbeatIntervalMs', options.heartbeatIntervalMs, 3_000, 100, sessionTimeoutMs - 1);
  const maxBytesPerPartition = integerOption('maxBytesPerPartition', options.maxBytesPerPartition, 1_048_576, 1024);
  const retryInitialDelayMs = integerOption('retryInitialDelayMs', options.retryInitialDelayMs, 200, 1);
  return Object.freeze({
    brokers: Object.freeze([...options.brokers]),
    clientId,
    partitions: integerOption('partitions', options.partitions, 4, 1, 10_000),
    replicationFactor: integerOption('replicationFactor', options.replicationFactor, 1, 1, 32),
    groupIdPrefix: options.groupIdPrefix ?? '',
    sessionTimeoutMs,
    heartbeatIntervalMs,
    maxBytes: integerOption('maxBytes', options.maxBytes, 10_485_760, maxBytesPerPartition),
    maxBytesPerPartition,
    maxWaitMs: integerOption('maxWaitMs', options.maxWaitMs, 500, 10, 60_000),
    maxBatch: integerOption('maxBatch', options.maxBatch, 1000, 1),
    partitionsConsumedConcurrently: integerOption('partitionsConsumedConcurrently', options.partitionsConsumedConcurrently, 4, 1, 1000),
    maxRequestBytes: integerOption('maxRequestBytes', options.maxRequestBytes, 900_000, 1024),
    deadLetterTopic: options.deadLetterTopic ?? buildTopics().dlq,
    retryInitialDelayMs,
    retryMaxDelayMs: integerOption('retryMaxDelayMs', options.retryMaxDelayMs, 30_000, retryInitialDelayMs),
    connectionTimeoutMs: integerOption('connectionTimeoutMs', options.connectionTimeoutMs, 10_000, 100),
    consumerRetries: integerOption('consumerRetries', options.consumerRetries, 14, 0, 1000),
    consumerRetryMaxDelayMs: integerOption('consumerRetryMaxDelayMs', options.consumerRetryMaxDelayMs, 5_000, 300),
  });
}

/** KafkaJS's level filter that matches the pino logger's level. */
function kafkaLevelOf(logger: Logger): KafkaLogLevel {
  switch (logger.level) {
    case 'trace':
    case 'debug':
      return KafkaLogLevel.DEBUG;
    case 'info':
      return KafkaLogLevel.INFO;
    case 'warn':
      return KafkaLogLevel.WARN;
    case 'silent':
      return KafkaLogLevel.NOTHING;
    default:
      return KafkaLogLevel.ERROR;
  }
}

/** Routes KafkaJS log entries to pino, keeping their fields. */
function pinoLogCreator(logger: Logger): logCreator {
  return () =>
    ({ namespace, level, log }) => {
      const { message, timestamp: _timestamp, ...fields } = log;
      const entry = { ...fields, kafkajs: namespace };
      // The producer's retries are bounded on purpose (a publish fails instead of
      // hanging while the broker is away, so shutdown and the handler backoff
      // work; they were bounded before too, by KafkaJS's defaults) and replays are
      // harmless (deterministic ids); KafkaJS warns about any explicit bound on
      // every connect. Kept at debug.
      if (typeof message === 'string' && message.startsWith('Limiting retries for the idempotent producer')) logger.debug(entry, message);
      else if (level === KafkaLogLevel.ERROR) logger.error(entry, message);
      else if (level === KafkaLogLevel.WARN) logger.warn(entry, message);
      else if (level === KafkaLogLevel.INFO) logger.info(entry, message);
      else logger.debug(entry, message);
    };
}

/**
 * Producer partitioner that places keys exactly as the in-process bus does
 * ({@link partitionForKey}: FNV-1a modulo the partition count). KafkaJS's
 * default (murmur2, Java-compatible) would put an agent on another partition
 * than the embedded bus, and the conformance suite holds both to one placement.
 */
const keyPartitioner: ICustomPartitioner =
  () =>
  ({ partitionMetadata, message }) => {
    const key = message.key;
    const text = key === null || key === undefined ? '' : typeof key === 'string' ? key : key.toString('utf8');
    return partitionForKey(text, partitionMetadata.length);
  };

/** Splits messages into consecutive runs of at most `limit` encoded bytes (a larger single message goes alone). */
export function chunkByBytes(messages: Message[], limit: number): Message[][] {
  const chunks: Message[][] = [];
  let current: Message[] = [];
  let bytes = 0;
  for (const message of messages) {
    const size = (message.value as Buffer).length + Buffer.byteLength(message.key as string) + 64;
    if (current.length > 0 && bytes + size > limit) {
      chunks.push(current);
      current = [];
      bytes = 0;
    }
    current.push(message);
    bytes += size;
  }
  if (current.length > 0) chunks.push(current);
  return chunks;
}

function isTopicAlreadyExists(error: unknown): boolean {
  if (typeof error !== 'object' || error === null) return false;
  const { type, errors } = error as { type?: unknown; errors?: unknown };
  if (type === 'TOPIC_ALREADY_EXISTS') return true;
  return Array.isArray(errors) && errors.length > 0 && errors.every((e) => isTopicAlreadyExists(e));
}

function isRetriable(error: unknown): boolean {
  return typeof error === 'object' && error !== null && (error as { retriable?: unknown }).retriable === true;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** How long creating a topic may keep retrying retriable failures (metadata not yet propagated, leader elections). */
const TOPIC_READY_TIMEOUT_MS = 30_000;

/** The dead letter of a record that failed to decode; its id is derived from its position, so a replay writes the same row. */
export function deadLetterOf(topic: string, partition: number, message: KafkaMessage, error: unknown, now: number = Date.now()): DeadLetter {
  const source = `kafka:${topic}/${partition}@${message.offset}`;
  const raw = message.value ?? Buffer.alloc(0);
  const timestamp = Number(message.timestamp);
  // Decode no more bytes than the kept text can need (4 bytes per UTF-8 character at most).
  const text = raw.subarray(0, RAW_TEXT_LIMIT * 4).toString('utf8').slice(0, RAW_TEXT_LIMIT);
  return {
    id: createHash('sha256').update(source).digest('hex').slice(0, 32),
    received_at: Number.isFinite(timestamp) && timestamp > 0 ? timestamp : now,
    source,
    reason: errorMessage(error).slice(0, REASON_LIMIT),
    raw: text,
    raw_bytes: raw.length,
  };
}

/**
 * The event bus over Kafka (kafkajs). Same contract as the in-process bus:
 * records keyed by `tenant/agent_id` land on `partitionForKey(key)`, each
 * consumer group sees every record, a batch's offsets are committed only after
 * its handler resolved, and a handler that throws gets the batch again after a
 * backoff — never skipped. Records that fail to decode go to the dead-letter
 * topic with the reason and never reach the handler.
 */
export class KafkaBus implements EventBus {
  private readonly options: Readonly<ResolvedOptions>;
  private readonly logger: Logger;
  /** Producer and admin. */
  private readonly kafka: Kafka;
  /** Consumers: the same brokers with the longer retries of {@link KafkaBusOptions.consumerRetries}. */
  private readonly consumerKafka: Kafka;
  private readonly onDeadLetter: KafkaBusOptions['onDeadLetter'];
  private readonly topicsReady = new Map<string, Promise<void>>();
  private readonly subscriptions = new Set<KafkaSubscription<unknown>>();
  private readonly consumerRetry: RetryOptions;
  private producer: Promise<Producer> | undefined;
  private admin: Promise<Admin> | undefined;
  private closing = false;
  private closed = false;

  constructor(options: KafkaBusOptions) {
    this.options = resolveKafkaBusOptions(options);
    this.onDeadLetter = options.onDeadLetter;
    this.logger = (options.logger ?? pino({ level: 'warn' })).child({ module: 'kafka-bus' });
    // Every retry field explicit: KafkaJS's own defaults differ under NODE_ENV=test,
    // and the processes of a test should behave as they do in production.
    const client = (retry: RetryOptions) =>
      new Kafka({
        clientId: this.options.clientId,
        brokers: [...this.options.brokers],
        connectionTimeout: this.options.connectionTimeoutMs,
        retry: { initialRetryTime: 300, factor: 0.2, multiplier: 2, ...retry },
        logLevel: kafkaLevelOf(this.logger),
        logCreator: pinoLogCreator(this.logger),
      });
    // KafkaJS's production defaults: about 10 s of retries.
    this.kafka = client({ retries: 5, maxRetryTime: 30_000 });
    // A consumer's connections and metadata go through its client's retries; its
    // group and fetch loop through the consumer's own: both get the long budget.
    this.consumerRetry = { initialRetryTime: 300, factor: 0.2, multiplier: 2, retries: this.options.consumerRetries, maxRetryTime: this.options.consumerRetryMaxDelayMs };
    this.consumerKafka = client(this.consumerRetry);
  }

  async publish<T>(topic: Topic<T>, records: readonly BusRecord<T>[]): Promise<void> {
    this.assertOpen();
    if (records.length === 0) return;
    const messages: Message[] = records.map((r) => ({ key: r.key, value: topic.codec.encode(r.value) }));
    await this.ensureTopic(topic.name);
    const producerPromise = this.connectedProducer();
    const producer = await producerPromise;
    // One send per chunk, awaited in turn: order per key holds across chunks,
    // and no request exceeds the broker's message size limit.
    for (const chunk of chunkByBytes(messages, this.options.maxRequestBytes)) {
      try {
        await producer.send({ topic: topic.name, acks: -1, messages: chunk });
      } catch (error) {
        if (isProducerStateLost(error)) {
          // The idempotent producer's sequence numbers no longer agree with the
          // broker's (typically after a broker restart lost the producer's state):
          // KafkaJS keeps failing every send with it, so the next publish gets a
          // fresh producer (a new producer id), and this one goes.
          this.logger.warn({ err: error, topic: topic.name }, 'the broker rejected the producer state (sequence or producer id); starting a new producer');
          this.resetProducer(producerPromise, producer);
          throw new BusError('AW_BUS_PUBLISH_FAILED', `publishing ${chunk.length} records to ${topic.name} failed; the producer was replaced: ${errorMessage(error)}`, {
            cause: error,
            retriable: true,
          });
        }
        throw wrapKafkaError('AW_BUS_PUBLISH_FAILED', `publishing ${chunk.length} records to ${topic.name} failed`, error);
      }
    }
  }

  async subscribe<T>(topic: Topic<T>, options: SubscribeOptions, handler: (batch: DeliveredBatch<T>) => Promise<void>): Promise<Subscription> {
    this.assertOpen();
    if (this.closing) throw new BusError('AW_BUS_CLOSED', 'the kafka bus is closing');
    if (options.group.length === 0) throw invalid('group', 'must not be empty');
    const maxBatch = integerOption('maxBatch', options.maxBatch, this.options.maxBatch, 1);
    await this.ensureTopic(topic.name);
    const groupId = `${this.options.groupIdPrefix}${options.group}`;
    const makeConsumer = (): Consumer =>
      this.consumerKafka.consumer({
        groupId,
        sessionTimeout: this.options.sessionTimeoutMs,
        heartbeatInterval: this.options.heartbeatIntervalMs,
        maxBytes: this.options.maxBytes,
        maxBytesPerPartition: this.options.maxBytesPerPartition,
        maxWaitTimeInMs: this.options.maxWaitMs,
        allowAutoTopicCreation: false,
        retry: this.consumerRetry,
      });
    const subscription = new KafkaSubscription<T>({
      bus: this,
      consumer: makeConsumer(),
      makeConsumer,
      topic,
      groupId,
      maxBatch,
      handler,
      logger: this.logger.child({ topic: topic.name, group: groupId }),
      options: this.options,
      onStopped: () => this.subscriptions.delete(subscription as KafkaSubscription<unknown>),
    });
    // Tracked before it starts, so a close() meanwhile waits for it too.
    this.subscriptions.add(subscription as KafkaSubscription<unknown>);
    try {
      await subscription.start();
    } catch (error) {
      this.subscriptions.delete(subscription as KafkaSubscription<unknown>);
      throw error;
    }
    return subscription;
  }

  /**
   * Committed offset per partition of `group` on `topicName` (the next offset
   * the group reads; -1 where it has committed nothing). `group` is given
   * without the `groupIdPrefix`.
   */
  async committedOffsets(topicName: string, group: string): Promise<Map<number, number>> {
    const admin = await this.connectedAdmin();
    try {
      const [entry] = await admin.fetchOffsets({ groupId: `${this.options.groupIdPrefix}${group}`, topics: [topicName] });
      return new Map((entry?.partitions ?? []).map((p) => [p.partition, Number(p.offset)]));
    } catch (error) {
      throw wrapKafkaError('AW_BUS_OFFSETS_FAILED', `reading the offsets of group ${group} on ${topicName} failed`, error);
    }
  }

  /** Stops every subscription (each finishes and commits its batch in hand), then disconnects. */
  async close(): Promise<void> {
    if (this.closing) return;
    // No new subscriptions from here on; publishing (dead letters of the
    // batches in hand among it) goes on until they are stopped.
    this.closing = true;
    await Promise.all([...this.subscriptions].map((s) => s.stop()));
    this.closed = true;
    const [producer, admin] = [this.producer, this.admin];
    this.producer = undefined;
    this.admin = undefined;
    await Promise.all([
      producer?.then((p) => p.disconnect()).catch(() => undefined),
      admin?.then((a) => a.disconnect()).catch(() => undefined),
    ]);
  }

  /**
   * Writes dead letters for undecodable records; throws (so the batch is
   * retried) when that fails. Used by the bus's own subscriptions.
   * @internal
   */
  async deadLetter(letters: readonly { key: string; letter: DeadLetter }[], fromTopic: string): Promise<void> {
    const dlq = this.options.deadLetterTopic;
    if (fromTopic === dlq.name) {
      // A dead letter that does not decode cannot be dead-lettered again; say
      // so loudly instead of looping on it.
      for (const { letter } of letters) this.logger.error({ deadLetter: letter }, 'undecodable record on the dead-letter topic itself; skipped');
      return;
    }
    try {
      await this.publish(dlq, letters.map(({ key, letter }) => ({ key, value: letter })));
    } catch (error) {
      throw wrapKafkaError('AW_BUS_DEAD_LETTER_FAILED', `writing ${letters.length} dead letters to ${dlq.name} failed`, error);
    }
    for (const { letter } of letters) {
      this.logger.warn({ source: letter.source, reason: letter.reason, rawBytes: letter.raw_bytes }, 'record failed to decode; sent to the dead-letter topic');
      this.onDeadLetter?.(letter, fromTopic);
    }
  }

  private assertOpen(): void {
    if (this.closed) throw new BusError('AW_BUS_CLOSED', 'the kafka bus is closed');
  }

  /** Creates the topic once per bus when it is missing; concurrent callers share the attempt, a failure is retried next time. */
  private ensureTopic(name: string): Promise<void> {
    let ready = this.topicsReady.get(name);
    if (ready === undefined) {
      ready = this.createTopic(name).catch((error: unknown) => {
        this.topicsReady.delete(name);
        throw error;
      });
      this.topicsReady.set(name, ready);
    }
    return ready;
  }

  /**
   * Creates the topic and waits for its partition leaders. A retriable failure
   * (typically UNKNOWN_TOPIC_OR_PARTITION right after the create: the broker's
   * metadata does not show the new topic yet) is retried for up to
   * {@link TOPIC_READY_TIMEOUT_MS}; a later attempt finds the topic created and
   * checks its leaders instead.
   */
  private async createTopic(name: string): Promise<void> {
    const admin = await this.connectedAdmin();
    const deadline = Date.now() + TOPIC_READY_TIMEOUT_MS;
    for (let attempt = 1; ; attempt++) {
      try {
        const created = await admin.createTopics({
          topics: [{ topic: name, numPartitions: this.options.partitions, replicationFactor: this.options.replicationFactor }],
          waitForLeaders: true,
        });
        if (created) this.logger.info({ topic: name, partitions: this.options.partitions }, 'created topic');
        else if (attempt > 1) await this.checkLeaders(admin, name);
        return;
      } catch (error) {
        if (isTopicAlreadyExists(error)) return;
        if (!isRetriable(error) || Date.now() >= deadline) throw wrapKafkaError('AW_BUS_TOPIC_FAILED', `creating topic ${name} failed`, error);
        this.logger.warn({ err: error, topic: name, attempt }, 'creating topic failed; retrying');
        await sleep(Math.min(100 * attempt, 1_000));
      }
    }
  }

  /** Throws a retriable error until every partition of the topic has a leader. */
  private async checkLeaders(admin: Admin, name: string): Promise<void> {
    const { topics } = await admin.fetchTopicMetadata({ topics: [name] });
    const partitions = topics.find((t) => t.name === name)?.partitions ?? [];
    if (partitions.length === 0 || partitions.some((p) => p.leader < 0)) {
      throw new BusError('AW_BUS_TOPIC_FAILED', `topic ${name} has no leader for every partition yet`, { retriable: true });
    }
  }

  /** Drops a producer whose state the broker rejected (if it is still the bus's), so the next publish connects a new one. */
  private resetProducer(stalePromise: Promise<Producer>, stale: Producer): void {
    if (this.producer !== stalePromise) return;
    this.producer = undefined;
    stale.disconnect().catch(() => undefined);
  }

  private connectedProducer(): Promise<Producer> {
    this.producer ??= (async () => {
      // Idempotent: a retried send cannot duplicate or reorder records; KafkaJS
      // needs acks -1 for it and one request in flight to keep order on retries.
      const producer = this.kafka.producer({ idempotent: true, maxInFlightRequests: 1, allowAutoTopicCreation: false, createPartitioner: keyPartitioner });
      await producer.connect();
      return producer;
    })().catch((error: unknown) => {
      this.producer = undefined;
      throw wrapKafkaError('AW_BUS_PUBLISH_FAILED', 'connecting the producer failed', error);
    });
    return this.producer;
  }

  private connectedAdmin(): Promise<Admin> {
    this.admin ??= (async () => {
      const admin = this.kafka.admin();
      await admin.connect();
      return admin;
    })().catch((error: unknown) => {
      this.admin = undefined;
      throw wrapKafkaError('AW_BUS_TOPIC_FAILED', 'connecting the admin client failed', error);
    });
    return this.admin;
  }
}

interface KafkaSubscriptionDeps<T> {
  bus: KafkaBus;
  consumer: Consumer;
  /** Builds a replacement when KafkaJS gives up on a crashed consumer. */
  makeConsumer: () => Consumer;
  topic: Topic<T>;
  groupId: string;
  maxBatch: number;
  handler: (batch: DeliveredBatch<T>) => Promise<void>;
  logger: Logger;
  options: Readonly<ResolvedOptions>;
  onStopped: () => void;
}

/** Marks a failure of the handler (or of dead-lettering), as opposed to one of the commit. */
class HandlerFailure {
  constructor(readonly error: unknown) {}
}

/**
 * One consumer in one group. Each KafkaJS batch of a partition is cut into
 * segments of at most `maxBatch` decodable records; per segment: dead letters
 * out, handler, then `resolveOffset` and commit up to the segment's last record.
 * So the next segment is handed over only after the previous one is
 * committed, and a handler always starts at the partition's committed offset
 * (or after dead letters just behind it).
 */
class KafkaSubscription<T> implements Subscription {
  /** Consecutive handler failures per partition, for the backoff. */
  private readonly failures = new Map<number, number>();
  private readonly resumeTimers = new Set<NodeJS.Timeout>();
  private stopping: Promise<void> | undefined;
  private consumer: Consumer;
  private rebuilds = 0;

  constructor(private readonly deps: KafkaSubscriptionDeps<T>) {
    this.consumer = deps.consumer;
  }

  async start(): Promise<void> {
    const { topic, logger, options } = this.deps;
    const consumer = this.consumer;
    consumer.on(consumer.events.CRASH, (event) => {
      const { error, restart } = event.payload;
      logger.error(
        { err: error, restart, sessionTimeoutMs: options.sessionTimeoutMs },
        restart
          ? 'kafka consumer crashed; KafkaJS restarts it as a new group member, and the group may wait up to the session timeout for the old member before consuming again'
          : 'kafka consumer crashed and KafkaJS will not restart it; replacing it with a new consumer',
      );
      if (!restart && this.stopping === undefined && consumer === this.consumer) void this.replaceConsumer();
    });
    try {
      await consumer.connect();
      await consumer.subscribe({ topics: [topic.name], fromBeginning: true });
      await consumer.run({
        autoCommit: false,
        eachBatchAutoResolve: false,
        partitionsConsumedConcurrently: options.partitionsConsumedConcurrently,
        eachBatch: (payload) => this.consumeBatch(payload),
      });
    } catch (error) {
      await consumer.disconnect().catch(() => undefined);
      throw wrapKafkaError('AW_BUS_SUBSCRIBE_FAILED', `subscribing group ${this.deps.groupId} to ${topic.name} failed`, error);
    }
  }

  /**
   * A subscription must never silently stop consuming: when KafkaJS gives up on
   * a consumer (no restart), build a fresh one and join the group again, with
   * exponential backoff while the cluster stays unreachable. Uncommitted records
   * are delivered again to whoever holds the partition, so nothing is lost.
   */
  private async replaceConsumer(): Promise<void> {
    const { logger, options } = this.deps;
    const old = this.consumer;
    await old.disconnect().catch(() => undefined);
    while (this.stopping === undefined) {
      this.rebuilds++;
      const delay = Math.min(options.retryMaxDelayMs, options.retryInitialDelayMs * 2 ** Math.min(this.rebuilds, 10));
      await sleep(delay);
      if (this.stopping !== undefined) return;
      this.consumer = this.deps.makeConsumer();
      try {
        await this.start();
        logger.warn({ attempt: this.rebuilds }, 'kafka consumer replaced; consuming again');
        this.rebuilds = 0;
        return;
      } catch (error) {
        logger.error({ err: error, attempt: this.rebuilds, retry_in_ms: delay * 2 }, 'replacing the kafka consumer failed; retrying');
      }
    }
  }

  /** Finishes the segment in hand (its commit included), leaves the group and disconnects. */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      for (const timer of this.resumeTimers) clearTimeout(timer);
      this.resumeTimers.clear();
      // KafkaJS stops fetching, waits for the running eachBatch (which stops
      // after its current segment, see isRunning below), then leaves the group.
      await this.consumer.disconnect();
      this.deps.onStopped();
    })();
    return this.stopping;
  }

  private async consumeBatch(payload: EachBatchPayload): Promise<void> {
    const { batch, resolveOffset, heartbeat, isRunning, isStale, pause, commitOffsetsIfNecessary } = payload;
    const { topic, maxBatch, handler, bus } = this.deps;
    const partition = batch.partition;
    let segment: KafkaMessage[] = [];
    let records: DeliveredRecord<T>[] = [];
    let letters: { key: string; letter: DeadLetter }[] = [];

    const flush = async (): Promise<boolean> => {
      // Stopping or reassigned: leave the rest uncommitted for whoever reads next.
      if (!isRunning() || isStale()) return false;
      const last = segment[segment.length - 1] as KafkaMessage;
      try {
        if (letters.length > 0) await bus.deadLetter(letters, topic.name);
        if (records.length > 0) await handler({ topic: topic.name, partition, records });
      } catch (error) {
        throw new HandlerFailure(error);
      }
      resolveOffset(last.offset);
      try {
        await commitOffsetsIfNecessary({ topics: [{ topic: topic.name, partitions: [{ partition, offset: (BigInt(last.offset) + 1n).toString() }] }] });
      } catch (error) {
        // Undo the resolve: if KafkaJS kept this member on the partition
        // without a rejoin, it would fetch past records whose commit failed,
        // and the next batch would no longer start at the committed offset.
        try {
          this.consumer.seek({ topic: topic.name, partition, offset: (segment[0] as KafkaMessage).offset });
        } catch {
          // Not running any more: the next member starts at the committed offset anyway.
        }
        throw error;
      }
      this.failures.delete(partition);
      segment = [];
      records = [];
      letters = [];
      await heartbeat();
      return true;
    };

    try {
      for (const message of batch.messages) {
        segment.push(message);
        const key = message.key?.toString('utf8') ?? '';
        try {
          if (message.value === null) throw new Error('record has no value');
          records.push({ key, value: topic.codec.decode(message.value, { timestamp: Number(message.timestamp) }), offset: Number(message.offset) });
        } catch (error) {
          letters.push({ key, letter: deadLetterOf(topic.name, partition, message, error) });
        }
        if (records.length >= maxBatch && !(await flush())) return;
      }
      if (segment.length > 0) await flush();
    } catch (error) {
      if (!(error instanceof HandlerFailure)) {
        // A commit or heartbeat failed (typically a rebalance): KafkaJS
        // rejoins the group on these; the segment is delivered again.
        this.deps.logger.warn({ err: error, partition }, 'committing offsets failed; the batch will be delivered again');
        throw error;
      }
      this.backOff(partition, segment[0]?.offset ?? batch.firstOffset() ?? '?', error.error, pause);
    }
  }

  /**
   * Pauses the partition after a handler failure and resumes it after an
   * exponential backoff. Nothing past the last commit was resolved, so KafkaJS
   * fetches again from the first unhandled record: the batch is redelivered.
   */
  private backOff(partition: number, offset: string, error: unknown, pause: () => () => void): void {
    const { options, logger } = this.deps;
    const attempt = (this.failures.get(partition) ?? 0) + 1;
    this.failures.set(partition, attempt);
    const delayMs = Math.min(options.retryMaxDelayMs, options.retryInitialDelayMs * 2 ** Math.min(attempt - 1, 30));
    logger.warn({ err: error, partition, offset, attempt, delayMs }, 'batch handler failed; partition paused, the batch will be redelivered');
    const resume = pause();
    if (this.stopping !== undefined) return;
    const timer = setTimeout(() => {
      this.resumeTimers.delete(timer);
      if (this.stopping === undefined) resume();
    }, delayMs);
    this.resumeTimers.add(timer);
  }
}

/** KafkaJS protocol error types that mean the idempotent producer's state is gone on the broker. */
const PRODUCER_STATE_ERRORS = new Set(['OUT_OF_ORDER_SEQUENCE_NUMBER', 'UNKNOWN_PRODUCER_ID', 'INVALID_PRODUCER_EPOCH']);

/** Whether a send failed because the broker no longer agrees with the producer's id or sequence numbers. */
export function isProducerStateLost(error: unknown): boolean {
  for (let e: unknown = error, depth = 0; e !== null && typeof e === 'object' && depth < 5; depth++) {
    const type = (e as { type?: unknown }).type;
    if (typeof type === 'string' && PRODUCER_STATE_ERRORS.has(type)) return true;
    const message = (e as { message?: unknown }).message;
    if (typeof message === 'string' && /out of order sequence number|unknown producer id|producer\b.{0,60}\bepoch/i.test(message)) return true;
    e = (e as { cause?: unknown; originalError?: unknown }).originalError ?? (e as { cause?: unknown }).cause;
  }
  return false;
}

function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
