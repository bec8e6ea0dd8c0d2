import type { Logger } from 'pino';
import type { AgentEvent } from '../core/event.js';
import type { DeliveredBatch, EventBus, StateStore, Subscription } from '../core/ports.js';
import { partitionKey } from '../core/event.js';
import type { AuditRecord, Verdict } from '../core/records.js';
import type { Topics } from '../core/topics.js';
import { AuditChain } from './audit-chain.js';
import { evaluateBatch, type PolicyEngine } from './engine.js';
import { RecentIds } from './recent-ids.js';

/** Where the worker's output rows go (batched writers in front of the analytics store). */
export interface DetectionSinks {
  events(events: readonly AgentEvent[]): void;
  verdicts(verdicts: readonly Verdict[]): void;
  audit(rows: readonly AuditRecord[]): void;
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
  auditHeads?: Map<string, { seq: number; hash: string }>;
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
    this.chain = new AuditChain(deps.auditHeads);
    this.recent = new RecentIds(deps.dedupCapacity ?? 200_000);
    this.clock = deps.clock ?? Date.now;
  }

  async start(): Promise<void> {
    this.subscription = await this.deps.bus.subscribe(
      this.deps.topics.events,
      { group: this.deps.group ?? 'agentwatch-detectors', maxBatch: this.deps.maxBatch ?? 1000 },
      (batch) => this.judgeBatch(batch),
    );
  }

  /** Judges one delivered batch. Exposed for tests and benchmarks. */
  async judgeBatch(batch: DeliveredBatch<AgentEvent>): Promise<void> {
    const started = performance.now();
    const events: AgentEvent[] = [];
    for (const record of batch.records) {
      const event = record.value;
      if (this.recent.add(`${event.tenant}\u0000${event.event_id}`)) events.push(event);
      else this.stats.duplicates++;
    }
    if (events.length === 0) return;
    const engine = this.deps.engine();
    const { verdicts, outcomes } = await evaluateBatch(engine, this.deps.state, events);
    const evaluatedAt = this.clock();
    const audit: AuditRecord[] = new Array<AuditRecord>(outcomes.length);
    for (let i = 0; i < outcomes.length; i++) {
      const outcome = outcomes[i] as (typeof outcomes)[number];
      audit[i] = this.chain.append(outcome, engine.version, engine.mode, evaluatedAt);
      this.stats.decisions[outcome.would_decide] = (this.stats.decisions[outcome.would_decide] ?? 0) + 1;
    }
    this.deps.sinks.events(events);
    this.deps.sinks.audit(audit);
    if (verdicts.length > 0) {
      this.deps.sinks.verdicts(verdicts);
      await this.deps.bus.publish(
        this.deps.topics.verdicts,
        verdicts.map((v) => ({ key: partitionKey(v.tenant, v.agent_id), value: v })),
      );
    }
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
