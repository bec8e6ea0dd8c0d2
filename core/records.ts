import type { Decision, EnforcementMode, PolicyAction, Severity } from './decision.js';
import type { EventType } from './event.js';

export type EvidenceValue = string | number | boolean;
export type Evidence = Record<string, EvidenceValue>;

/** One policy's judgement of one event (ARCHITECTURE.md, records). */
export interface Verdict {
  /** Deterministic from tenant + event_id + policy_id, so replays do not duplicate. */
  verdict_id: string;
  event_id: string;
  /** Event time, epoch ms. */
  time: number;
  tenant: string;
  agent_id: string;
  agent_name: string;
  event_type: EventType;
  policy_id: string;
  policy_type: string;
  severity: Severity;
  action: PolicyAction;
  /** Effective decision (always `allow` in monitoring mode). */
  decision: Decision;
  /** What strict mode would have decided. */
  would_decide: Decision;
  mode: EnforcementMode;
  reason: string;
  evidence: Evidence;
  atlas: string[];
  /** The event was older than the allowed lateness behind the agent's newest event. */
  late: boolean;
  /**
   * Id of the policy exception that let the event through ('' when none): the
   * policy fired, but an approved exception covers the event, so decision and
   * would_decide are `allow` and `evidence.suppressed_decision` keeps what the
   * policy asked for. Alerting opens no alerts for these verdicts.
   */
  exception: string;
}

/**
 * One row per evaluated event. Rows form one hash chain per (tenant, bus
 * partition): a partition is judged by one worker at a time, in offset order, so
 * the chain is deterministic — a replay after a crash recomputes identical rows.
 */
export interface AuditRecord {
  event_id: string;
  time: number;
  tenant: string;
  /** The bus partition the event came from (-1: none); with `tenant`, names the chain. */
  bus_partition: number;
  agent_id: string;
  event_type: EventType;
  decision: Decision;
  would_decide: Decision;
  mode: EnforcementMode;
  matched_policies: string[];
  verdict_ids: string[];
  /** Content hash of the policy document in force. */
  policy_version: string;
  evaluated_at: number;
  /** The event's offset in its partition: increasing along the chain, not contiguous. */
  seq: number;
  prev_hash: string;
  hash: string;
}

export const AlertStatuses = ['open', 'acknowledged', 'resolved'] as const;
export type AlertStatus = (typeof AlertStatuses)[number];

/** A deduplicated alert per (tenant, policy_id, agent_id) while open or acknowledged. */
export interface Alert {
  alert_id: string;
  tenant: string;
  policy_id: string;
  policy_type: string;
  agent_id: string;
  severity: Severity;
  status: AlertStatus;
  count: number;
  first_seen: number;
  last_seen: number;
  title: string;
  reason: string;
  /** Sample of the verdicts behind the alert: the first few and the latest. */
  verdict_ids: string[];
  evidence: Evidence;
  atlas: string[];
  /** Monotonic row version for the replacing engine (ms since epoch at change, bumped to stay increasing). */
  updated_at: number;
  acknowledged_by: string;
  resolved_at: number;
  /** Bus partition of the newest verdict counted (-1: none). */
  source_partition: number;
  /** Offset of that verdict: a replayed verdict at or below it is not counted again. */
  source_offset: number;
  /**
   * Id of the silence in force when a verdict last opened or bumped the alert
   * ('' when none): that change was stored but not sent to the sinks. Cleared
   * by the first verdict counted once no silence matches.
   */
  silenced_by: string;
  /** Note given with the latest acknowledge or resolve that had one ('' when none). */
  comment: string;
}

/**
 * What a {@link Silence} matches. Every matcher given must match the alert;
 * a silence has at least one. Patterns take `*` and `?` and ignore case
 * (core/glob.ts).
 */
export interface SilenceMatchers {
  /** Policy id pattern. */
  policy_id?: string;
  /** Policy type, exactly. */
  policy_type?: string;
  /** Agent id pattern. */
  agent_id?: string;
  /** Any of these severities: the alert's, once the verdict is counted. */
  severity?: Severity[];
}

/**
 * Mutes the notifications of matching alerts for a while (Alertmanager's
 * silences): alerts still open and count, sinks are not told. Every change
 * writes the whole row again with a higher `updated_at`.
 */
export interface Silence {
  silence_id: string;
  /** The tenant whose alerts it matches; null: every tenant's. */
  tenant: string | null;
  matchers: SilenceMatchers;
  /** In force from `starts_at` (inclusive) to `ends_at` (exclusive), epoch ms. */
  starts_at: number;
  ends_at: number;
  /** Why; required. */
  comment: string;
  created_by: string;
  created_at: number;
  /** When it was ended early (epoch ms; in force until then), null while not. */
  expired_at: number | null;
  /** Who ended it early ('' while not). */
  expired_by: string;
  /** Row version (ms at the latest change, bumped to stay increasing). */
  updated_at: number;
}

/** Input that could not be accepted, kept with the reason. */
export interface DeadLetter {
  id: string;
  received_at: number;
  /** `http`, `kafka:<topic>/<partition>@<offset>`, … */
  source: string;
  reason: string;
  /** Raw input, truncated. */
  raw: string;
  raw_bytes: number;
}

/** API list envelope (ARCHITECTURE.md). */
export interface Page<T> {
  items: T[];
  next_cursor: string | null;
}
