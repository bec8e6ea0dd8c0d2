import type { Logger } from 'pino';
import type { AgentEvent } from '../core/event.js';
import type { DeliveredBatch, EventBus, StateStore, Subscription } from '../core/ports.js';
import { partitionKey } from '../core/event.js';
import type { AuditRecord, Verdict } from '../core/records.js';
import type { Topics } from '../core/topics.js';
import { AuditChain, type ChainHeadLoader } from './audit-chain.js';
import { evaluateBatch, type PolicyEngine } from './engine.js';
import { RecentIds } from '../core/recent-ids.js';

/** Where the worker's output rows go (batched writers in front of the analytics store). */
export interface DetectionSinks {
  events(events: readonly AgentEvent[]): void;
  verdicts(verdicts: readonly Verdict[]): void;
  audit(rows: readonly AuditRecord[]): void;
  /** Resolves when every row handed over so far is durable; the batch's offsets are committed only then. */
  durable(): Promise<void>;
}

export interface DetectionWorkerStats {
  events: number;
  duplicates: number;
  verdicts: number;
  batches: number;
  decisions: Record<string, number>;
  lastBatchMs: number;
}

export interface DetectionWorkerDeps {
  bus: EventBus;
  topics: Topics;
  state: StateStore;
  sinks: DetectionSinks;
  /** The policy engine in force; read once per batch so a reload takes effect at the next batch. */
  engine: () => PolicyEngine;
  logger: Logger;
  /** Reads audit chain heads from the analytics store (for a partition's first batch or a replay). */
  loadAuditHeads: ChainHeadLoader;
  /** @default "agentwatch-detectors" */
  group?: string;
  /** @default 1000 */
  maxBatch?: number;
  /** Remembered event ids for duplicate suppression. @default 200_000 */
  dedupCapacity?: number;
  clock?: () => number;
}

/**
 * The detection stage: consumes event batches, judges them (plan → one state
 * round trip → decide), appends the audit chain, hands rows to the sinks and
 * publishes verdicts for the alerting stage.
 */
export class DetectionWorker {
  readonly stats: DetectionWorkerStats = { events: 0, duplicates: 0, verdicts: 0, batches: 0, decisions: {}, lastBatchMs: 0 };
  private readonly chain: AuditChain;
  private readonly recent: RecentIds;
  private readonly clock: () => number;
  private subscription: Subscription | undefined;

  constructor(private readonly deps: DetectionWorkerDeps) {
    this.chain = new AuditChain(deps.loadAuditHeads);
    this.recent = new RecentIds(deps.dedupCapacity ?? 200_000);
    this.clock = deps.clock ?? Date.now;
  }

  async start(): Promise<void> {
    this.subscription = await this.deps.bus.subscribe(
      this.deps.topics.events,
      { group: this.deps.group ?? 'agentwatch-detectors', maxBatch: this.deps.maxBatch ?? 5000 },
      (batch) => this.judgeBatch(batch),
    );
  }

  /** Judges one delivered batch. Exposed for tests and benchmarks. */
  async judgeBatch(batch: DeliveredBatch<AgentEvent>): Promise<void> {
    const started = performance.now();
    const events: AgentEvent[] = [];
    const offsets: number[] = [];
    const ids: string[] = [];
    const inBatch = new Set<string>();
    for (const record of batch.records) {
      const event = record.value;
      const id = `${event.tenant}\u0000${event.event_id}`;
      // A producer retry (same event_id) is dropped; ids are remembered only once the batch
      // succeeded, so a redelivered batch is judged again (state ops are idempotent per offset).
      if (this.recent.has(id) || inBatch.has(id)) {
        this.stats.duplicates++;
        continue;
      }
      inBatch.add(id);
      ids.push(id);
      events.push(event);
      offsets.push(record.offset);
    }
    if (events.length === 0) return;
    const engine = this.deps.engine();
    const first = batch.records[0];
    await this.chain.prepare(batch.partition, offsets[0] as number, events.map((e) => e.tenant));
    const { verdicts, outcomes } = await evaluateBatch(engine, this.deps.state, events, {
      partition: batch.partition,
      offsets,
      // Delivery starts at the committed offset, so nothing below this batch can be replayed.
      committedOffset: first === undefined ? -1 : first.offset,
    });
    const evaluatedAt = this.clock();
    const audit: AuditRecord[] = new Array<AuditRecord>(outcomes.length);
    for (let i = 0; i < outcomes.length; i++) {
      const outcome = outcomes[i] as (typeof outcomes)[number];
      audit[i] = this.chain.append(outcome, batch.partition, offsets[i] as number, engine.version, engine.mode, evaluatedAt);
      this.stats.decisions[outcome.would_decide] = (this.stats.decisions[outcome.would_decide] ?? 0) + 1;
    }
    this.deps.sinks.events(events);
    this.deps.sinks.audit(audit);
    if (verdicts.length > 0) this.deps.sinks.verdicts(verdicts);
    // Offsets are committed when this returns: only after the verdicts are on the bus and
    // the rows are durable. The two waits overlap; neither depends on the other.
    const publishing =
      verdicts.length === 0
        ? undefined
        : this.deps.bus.publish(
            this.deps.topics.verdicts,
            verdicts.map((v) => ({ key: partitionKey(v.tenant, v.agent_id), value: v })),
          );
    // allSettled: a failure of one must not leave the other's rejection unhandled.
    const settled = await Promise.allSettled([publishing, this.deps.sinks.durable()]);
    for (const outcome of settled) if (outcome.status === 'rejected') throw outcome.reason;
    for (const id of ids) this.recent.add(id);
    this.stats.events += events.length;
    this.stats.verdicts += verdicts.length;
    this.stats.batches++;
    this.stats.lastBatchMs = performance.now() - started;
  }

  async stop(): Promise<void> {
    await this.subscription?.stop();
    this.subscription = undefined;
  }
}
