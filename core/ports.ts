import type { AgentEvent } from './event.js';
import type { Alert, AlertStatus, AuditRecord, DeadLetter, Page, Silence, Verdict } from './records.js';
import type { ResultOf, StateOp } from './state.js';

// ---------------------------------------------------------------- event bus

/** Encodes values for adapters that move bytes (Kafka); the in-process bus passes values as they are. */
export interface Codec<T> {
  encode(value: T): Buffer;
  /**
   * Throws on bad input; the consumer dead-letters the record with the error
   * message. `meta.timestamp` is the record's bus timestamp (Kafka: producer or
   * append time), a deterministic reference for checks that need a clock.
   */
  decode(bytes: Buffer, meta?: { timestamp?: number }): T;
}

export interface Topic<T> {
  name: string;
  codec: Codec<T>;
}

export interface BusRecord<T> {
  /** Partition key: `tenant/agent_id`. */
  key: string;
  value: T;
}

export interface DeliveredRecord<T> extends BusRecord<T> {
  offset: number;
}

export interface DeliveredBatch<T> {
  topic: string;
  partition: number;
  records: DeliveredRecord<T>[];
}

export interface SubscribeOptions {
  /** Consumer group; each group sees every record once. */
  group: string;
  /** Most records handed to the handler at once. */
  maxBatch?: number;
}

export interface Subscription {
  /** Finishes the batch in hand, commits, and stops. */
  stop(): Promise<void>;
}

/**
 * Partitioned, ordered-per-key event bus. A batch's offsets are committed only
 * after its handler resolves; a handler that throws gets the batch again.
 */
export interface EventBus {
  publish<T>(topic: Topic<T>, records: readonly BusRecord<T>[]): Promise<void>;
  subscribe<T>(topic: Topic<T>, options: SubscribeOptions, handler: (batch: DeliveredBatch<T>) => Promise<void>): Promise<Subscription>;
  close(): Promise<void>;
}

// ---------------------------------------------------------------- state store

/** Window state. Executes a batch's operations in one round trip, results in operation order. */
export interface StateStore {
  /** Results in operation order, each of its operation's kind (`ResultOf`). */
  applyStateOps<O extends StateOp>(ops: readonly O[]): Promise<ResultOf<O['op']>[]>;
  close(): Promise<void>;
}

// ---------------------------------------------------------------- analytics store

export interface AlertFilter {
  tenant?: string;
  status?: AlertStatus;
  policy_id?: string;
  policy_type?: string;
  agent_id?: string;
  severity?: string;
  from?: number;
  to?: number;
  /** true: only alerts whose latest verdict change was silenced (`silenced_by` set); false: only the others. */
  silenced?: boolean;
  /** Only these alerts (any status): bulk changes look up the ids they could not change. */
  alert_ids?: readonly string[];
  limit: number;
  cursor?: string | null;
}

export interface VerdictFilter {
  tenant?: string;
  agent_id?: string;
  policy_id?: string;
  decision?: string;
  from?: number;
  to?: number;
  limit: number;
}

/** Durable storage of events, verdicts, audit rows, alerts and dead letters (ClickHouse). */
export interface AnalyticsStore {
  /** Applies pending schema migrations; idempotent. */
  migrate(): Promise<void>;
  insertEvents(events: readonly AgentEvent[]): Promise<void>;
  insertVerdicts(verdicts: readonly Verdict[]): Promise<void>;
  insertAudit(rows: readonly AuditRecord[]): Promise<void>;
  /** Writes the current version of each alert (the replacing engine keeps the newest). */
  upsertAlerts(alerts: readonly Alert[]): Promise<void>;
  insertDeadLetters(rows: readonly DeadLetter[]): Promise<void>;
  listAlerts(filter: AlertFilter): Promise<Page<Alert>>;
  getAlert(alertId: string, tenant?: string): Promise<Alert | null>;
  /** Alerts that are open or acknowledged: the dedup state to rebuild at start. */
  loadActiveAlerts(): Promise<Alert[]>;
  listVerdicts(filter: VerdictFilter): Promise<Verdict[]>;
  /**
   * The last link of each given tenant's chain on `partition` strictly before `beforeSeq`,
   * so a worker that (re)starts a partition at its committed offset continues the chain exactly.
   */
  auditChainHeads(partition: number, beforeSeq: number, tenants: readonly string[]): Promise<Map<string, { seq: number; hash: string }>>;
  close(): Promise<void>;
  /** One agent's capability sets and keys as presented over time (`capability_history`), newest first; `from`/`to` bound event time as `[from, to)`. */
  capabilityHistory(filter: CapabilityHistoryFilter): Promise<CapabilitySnapshot[]>;
}

// ---------------------------------------------------------------- silences

export interface SilenceFilter {
  /**
   * A tenant: the silences that can match its alerts (its own and the
   * all-tenant ones); null: only all-tenant silences; omitted: every silence.
   */
  tenant?: string | null;
  /** Only silences in force at this time (epoch ms): started, not ended, not expired. */
  active_at?: number;
  /** Only silences not over at this time: in force or yet to start (what an alerter loads). */
  unexpired_at?: number;
  /** @default 1000 */
  limit?: number;
}

/** Durable storage of alert silences; the alerter keeps the ones not over in memory. */
export interface SilenceStore {
  /** Writes the current version of each silence (the newest `updated_at` wins). */
  upsertSilences(silences: readonly Silence[]): Promise<void>;
  /** Newest first (`created_at` DESC, then `silence_id` DESC). */
  listSilences(filter: SilenceFilter): Promise<Silence[]>;
  getSilence(silenceId: string): Promise<Silence | null>;
}

// ---------------------------------------------------------------- capability history

export const CapabilitySnapshotKinds = ['capabilities', 'key'] as const;
export type CapabilitySnapshotKind = (typeof CapabilitySnapshotKinds)[number];

/**
 * What an agent presented in one event: its full capability set (kind
 * `capabilities`, from `capability_change`) or its public key (kind `key`,
 * from `key_rotation`). A row of the `capability_history` table.
 */
export interface CapabilitySnapshot {
  tenant: string;
  agent_id: string;
  agent_name: string;
  /** Event time (ms). */
  time: number;
  event_id: string;
  kind: CapabilitySnapshotKind;
  /** Sorted, unique; empty for kind `key`. */
  capabilities: string[];
  /** Empty for kind `capabilities`. */
  key_fingerprint: string;
  /** Empty for kind `capabilities` or when the agent did not report it. */
  key_algorithm: string;
  /** When the event was stored (ms). */
  ingested_at: number;
}

export interface CapabilityHistoryFilter {
  tenant: string;
  agent_id: string;
  /** Only snapshots of this kind; both when omitted. */
  kind?: CapabilitySnapshotKind;
  /** Event time, inclusive (ms). */
  from?: number;
  /** Event time, exclusive (ms). */
  to?: number;
  limit: number;
}

// ---------------------------------------------------------------- alert deliveries

/** Kinds of delivery sink (alerting/delivery-config.ts). */
export const DeliverySinkKinds = ['webhook', 'alertmanager', 'slack'] as const;
export type DeliverySinkKind = (typeof DeliverySinkKinds)[number];

/** Why a notification is sent: an alert change, or a reminder while it stays open. */
export const DeliveryChanges = ['opened', 'escalated', 'resolved', 'reminder'] as const;
export type DeliveryChange = (typeof DeliveryChanges)[number];

/**
 * `pending`: to be sent (again) at `next_attempt_at`; `delivered`: a receiver
 * accepted it (never sent again); `failed`: dead-lettered after its last
 * attempt or a refusal retrying cannot fix.
 */
export const DeliveryStatuses = ['pending', 'delivered', 'failed'] as const;
export type DeliveryStatus = (typeof DeliveryStatuses)[number];

/**
 * One notification of one alert to one sink: the outbox row of the
 * `alert_deliveries` table. Every state change writes the whole row again
 * with a higher `version`.
 */
export interface AlertDelivery {
  /** Deterministic from alert id, change and sink (alerting/delivery-plan.ts); sent as the `Idempotency-Key`. */
  notification_id: string;
  alert_id: string;
  tenant: string;
  /** The configured sink's name. */
  sink: string;
  sink_kind: DeliverySinkKind;
  change: DeliveryChange;
  /** The alert as it was when the notification was made: what every attempt sends. */
  alert: Alert;
  status: DeliveryStatus;
  /** Attempts finished (a response or an error); an attempt cut short by a crash is not counted. */
  attempts: number;
  /** Why the latest attempt failed ('' when none); never holds the sink's URL or headers. */
  last_error: string;
  /** When the notification was made (epoch ms). */
  created_at: number;
  /** When the next attempt is due (epoch ms); meaningful while pending. */
  next_attempt_at: number;
  /** When a receiver accepted it (epoch ms); 0 until then. */
  delivered_at: number;
  /** When this version of the row was written (epoch ms). */
  updated_at: number;
  /** Row version for the replacing engine: 1 when made, one more per attempt. */
  version: number;
}

/** Durable outbox of alert notifications (ClickHouse `alert_deliveries`, migration 0006). */
export interface DeliveryStore {
  /** Writes the current version of each delivery (the highest `version` wins). */
  upsertDeliveries(deliveries: readonly AlertDelivery[]): Promise<void>;
  /** The stored state of the given notifications; ids not stored are absent. */
  getDeliveries(notificationIds: readonly string[]): Promise<AlertDelivery[]>;
  /** Pending deliveries, the earliest due first. */
  pendingDeliveries(limit: number): Promise<AlertDelivery[]>;
  /** The newest delivery of each (alert, sink) of the given alerts: when each sink was last told, for reminders after a restart. */
  latestDeliveries(alertIds: readonly string[]): Promise<AlertDelivery[]>;
  /** One alert's deliveries, newest first; `tenant`, when given, must own the alert. */
  deliveriesFor(alertId: string, tenant?: string): Promise<AlertDelivery[]>;
}
