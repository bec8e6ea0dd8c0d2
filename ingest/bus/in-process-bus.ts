import type { BusRecord, DeliveredBatch, DeliveredRecord, EventBus, SubscribeOptions, Subscription, Topic } from '../../core/ports.js';
import { partitionForKey } from './partitioner.js';

export interface InProcessBusOptions {
  /** Partitions per topic. @default 4 */
  partitions?: number;
  /** Records held per partition before `publish` waits for consumers (backpressure). @default 50_000 */
  maxBufferedPerPartition?: number;
  /** Called when a handler throws; the batch is redelivered after `retryDelayMs`. */
  onHandlerError?: (error: unknown, topic: string, partition: number) => void;
  /** @default 200 */
  retryDelayMs?: number;
  /**
   * Offset of the first record of every partition. The default, the start time in
   * microseconds, keeps offsets increasing across restarts of an embedded process,
   * so offset-keyed records (audit chain links, replay guards) never collide with
   * those of an earlier run. @default Date.now() * 1000
   */
  firstOffset?: number;
}

interface GroupCursor {
  committed: number;
}

class PartitionLog<T> {
  /** Records from `baseOffset` on; trimmed once every group has committed past them. */
  records: DeliveredRecord<T>[] = [];
  baseOffset: number;
  readonly groups = new Map<string, GroupCursor>();
  private dataWaiters: (() => void)[] = [];
  private spaceWaiters: (() => void)[] = [];

  constructor(firstOffset: number) {
    this.baseOffset = firstOffset;
  }

  get nextOffset(): number {
    return this.baseOffset + this.records.length;
  }

  append(key: string, value: T): void {
    this.records.push({ key, value, offset: this.nextOffset });
  }

  backlog(): number {
    return this.records.length;
  }

  notifyData(): void {
    const waiters = this.dataWaiters;
    this.dataWaiters = [];
    for (const w of waiters) w();
  }

  waitForData(): Promise<void> {
    return new Promise((resolve) => this.dataWaiters.push(resolve));
  }

  waitForSpace(): Promise<void> {
    return new Promise((resolve) => this.spaceWaiters.push(resolve));
  }

  /** Drops records every group has committed; wakes publishers waiting for room. */
  trim(): void {
    if (this.groups.size === 0) return;
    let min = Number.POSITIVE_INFINITY;
    for (const g of this.groups.values()) min = Math.min(min, g.committed);
    const drop = min - this.baseOffset;
    if (drop > 0) {
      this.records.splice(0, drop);
      this.baseOffset = min;
      const waiters = this.spaceWaiters;
      this.spaceWaiters = [];
      for (const w of waiters) w();
    }
  }
}

/**
 * The embedded event bus: topics of ordered partitions in process memory.
 * Same contract as the Kafka adapter — key-partitioned, batches with offsets,
 * commit after the handler resolves, redelivery when it throws — but values
 * are passed as objects, never encoded.
 */
export class InProcessBus implements EventBus {
  private readonly topics = new Map<string, PartitionLog<unknown>[]>();
  private readonly partitions: number;
  private readonly maxBuffered: number;
  private readonly retryDelayMs: number;
  private readonly firstOffset: number;
  private readonly onHandlerError: InProcessBusOptions['onHandlerError'];
  private readonly subscriptions = new Set<Subscription>();
  private closed = false;

  constructor(options: InProcessBusOptions = {}) {
    this.partitions = options.partitions ?? 4;
    this.maxBuffered = options.maxBufferedPerPartition ?? 50_000;
    this.retryDelayMs = options.retryDelayMs ?? 200;
    this.onHandlerError = options.onHandlerError;
    this.firstOffset = options.firstOffset ?? Date.now() * 1000;
    if (!Number.isInteger(this.partitions) || this.partitions < 1) throw new RangeError('partitions must be an integer ≥ 1');
  }

  private logs<T>(topic: Topic<T>): PartitionLog<T>[] {
    let logs = this.topics.get(topic.name);
    if (logs === undefined) {
      logs = Array.from({ length: this.partitions }, () => new PartitionLog<unknown>(this.firstOffset));
      this.topics.set(topic.name, logs);
    }
    return logs as PartitionLog<T>[];
  }

  async publish<T>(topic: Topic<T>, records: readonly BusRecord<T>[]): Promise<void> {
    if (this.closed) throw new Error('bus is closed');
    const logs = this.logs(topic);
    const touched = new Set<PartitionLog<T>>();
    for (const r of records) {
      const log = logs[partitionForKey(r.key, this.partitions)] as PartitionLog<T>;
      // Backpressure: a full partition makes the producer wait for its consumers.
      while (log.groups.size > 0 && log.backlog() >= this.maxBuffered && !this.closed) {
        log.notifyData();
        await log.waitForSpace();
      }
      log.append(r.key, r.value);
      touched.add(log);
    }
    for (const log of touched) log.notifyData();
  }

  async subscribe<T>(topic: Topic<T>, options: SubscribeOptions, handler: (batch: DeliveredBatch<T>) => Promise<void>): Promise<Subscription> {
    const logs = this.logs(topic);
    const maxBatch = options.maxBatch ?? 1000;
    let stopping = false;
    const loops = logs.map(async (log, partition) => {
      let cursor = log.groups.get(options.group);
      if (cursor === undefined) {
        cursor = { committed: log.baseOffset };
        log.groups.set(options.group, cursor);
      }
      while (!stopping) {
        const start = cursor.committed - log.baseOffset;
        if (start >= log.records.length) {
          await log.waitForData();
          continue;
        }
        const records = log.records.slice(start, start + maxBatch);
        try {
          await handler({ topic: topic.name, partition, records });
          cursor.committed = (records[records.length - 1] as DeliveredRecord<T>).offset + 1;
          log.trim();
        } catch (error) {
          this.onHandlerError?.(error, topic.name, partition);
          await new Promise((resolve) => setTimeout(resolve, this.retryDelayMs));
        }
      }
    });
    const subscription: Subscription = {
      stop: async () => {
        stopping = true;
        for (const log of logs) log.notifyData();
        await Promise.all(loops);
        this.subscriptions.delete(subscription);
      },
    };
    this.subscriptions.add(subscription);
    return subscription;
  }

  /** Records published but not yet committed by `group`, over all partitions of a topic. */
  lag(topicName: string, group: string): number {
    const logs = this.topics.get(topicName);
    if (logs === undefined) return 0;
    let lag = 0;
    for (const log of logs) lag += log.nextOffset - (log.groups.get(group)?.committed ?? log.baseOffset);
    return lag;
  }

  /** Resolves once every group of every topic has committed everything published so far. */
  async drained(pollMs = 10): Promise<void> {
    for (;;) {
      let pending = 0;
      for (const logs of this.topics.values()) {
        for (const log of logs) for (const g of log.groups.values()) pending += log.nextOffset - g.committed;
      }
      if (pending === 0) return;
      await new Promise((resolve) => setTimeout(resolve, pollMs));
    }
  }

  async close(): Promise<void> {
    await Promise.all([...this.subscriptions].map((s) => s.stop()));
    this.closed = true;
  }
}
