import { Decisions, PolicyActions, Severities } from '../../core/decision.js';
import { EventTypes } from '../../core/event.js';
import { AlertStatuses, type Alert, type AuditRecord, type Evidence, type Verdict } from '../../core/records.js';
import { StorageError } from '../errors.js';

/**
 * Reading rows back: the verdict columns and their mapping, and the checks
 * every row mapper uses. A value a column should not hold is a
 * `AW_STORAGE_BAD_ROW` error rather than a record of the wrong type.
 */

/** 64-bit integers arrive as JSON strings from a server (output_format_json_quote_64bit_integers=1), numbers from chdb. */
export type Int64Json = number | string;

export const ENFORCEMENT_MODES = ['monitoring', 'strict'] as const;

// Times leave ClickHouse as epoch-ms integers under distinct aliases: an alias
// named like its column would shadow the column in WHERE and ORDER BY.
export const VERDICT_COLUMNS = `verdict_id, event_id, toUnixTimestamp64Milli(time) AS time_ms, tenant, agent_id, agent_name,
  event_type, policy_id, policy_type, severity, action, decision, would_decide, mode, reason, evidence, atlas, late, exception`;

export interface VerdictRow {
  verdict_id: string;
  event_id: string;
  time_ms: Int64Json;
  tenant: string;
  agent_id: string;
  agent_name: string;
  event_type: string;
  policy_id: string;
  policy_type: string;
  severity: string;
  action: string;
  decision: string;
  would_decide: string;
  mode: string;
  reason: string;
  evidence: string;
  atlas: string[];
  late: boolean | number;
  exception: string;
}

export function rowToVerdict(row: VerdictRow): Verdict {
  return {
    verdict_id: row.verdict_id,
    event_id: row.event_id,
    time: toInteger(row.time_ms, 'verdicts.time'),
    tenant: row.tenant,
    agent_id: row.agent_id,
    agent_name: row.agent_name,
    event_type: oneOf(EventTypes, row.event_type, 'verdicts.event_type'),
    policy_id: row.policy_id,
    policy_type: row.policy_type,
    severity: oneOf(Severities, row.severity, 'verdicts.severity'),
    action: oneOf(PolicyActions, row.action, 'verdicts.action'),
    decision: oneOf(Decisions, row.decision, 'verdicts.decision'),
    would_decide: oneOf(Decisions, row.would_decide, 'verdicts.would_decide'),
    mode: oneOf(ENFORCEMENT_MODES, row.mode, 'verdicts.mode'),
    reason: row.reason,
    evidence: parseEvidence(row.evidence, 'verdicts.evidence'),
    atlas: row.atlas,
    late: row.late === true || row.late === 1,
    exception: row.exception,
  };
}

export function toInteger(value: Int64Json, column: string): number {
  const n = typeof value === 'number' ? value : Number(value);
  if (!Number.isSafeInteger(n)) throw badRow(column, value);
  return n;
}

export function oneOf<const T extends readonly string[]>(allowed: T, value: string, column: string): T[number] {
  if (!allowed.includes(value)) throw badRow(column, value);
  return value as T[number];
}

export function parseEvidence(json: string, column: string): Evidence {
  let parsed: unknown;
  try {
    parsed = JSON.parse(json);
  } catch {
    throw badRow(column, json);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw badRow(column, json);
  for (const value of Object.values(parsed)) {
    if (typeof value !== 'string' && typeof value !== 'number' && typeof value !== 'boolean') throw badRow(column, json);
  }
  return parsed as Evidence;
}

export function badRow(column: string, value: unknown): StorageError {
  return new StorageError('AW_STORAGE_BAD_ROW', `unexpected value in ${column}: ${JSON.stringify(value)?.slice(0, 200)}`);
}

export const ALERT_COLUMNS = `alert_id, tenant, policy_id, policy_type, agent_id, severity, status, count,
  toUnixTimestamp64Milli(first_seen) AS first_seen_ms, toUnixTimestamp64Milli(last_seen) AS last_seen_ms,
  title, reason, verdict_ids, evidence, atlas, toUnixTimestamp64Milli(updated_at) AS updated_at_ms,
  acknowledged_by, toUnixTimestamp64Milli(resolved_at) AS resolved_at_ms, source_partition, source_offset, silenced_by, comment`;

export interface AlertRow {
  alert_id: string;
  tenant: string;
  policy_id: string;
  policy_type: string;
  agent_id: string;
  severity: string;
  status: string;
  count: Int64Json;
  first_seen_ms: Int64Json;
  last_seen_ms: Int64Json;
  title: string;
  reason: string;
  verdict_ids: string[];
  evidence: string;
  atlas: string[];
  updated_at_ms: Int64Json;
  acknowledged_by: string;
  resolved_at_ms: Int64Json;
  source_partition: Int64Json;
  source_offset: Int64Json;
  silenced_by: string;
  comment: string;
}

export function rowToAlert(row: AlertRow): Alert {
  return {
    alert_id: row.alert_id,
    tenant: row.tenant,
    policy_id: row.policy_id,
    policy_type: row.policy_type,
    agent_id: row.agent_id,
    severity: oneOf(Severities, row.severity, 'alerts.severity'),
    status: oneOf(AlertStatuses, row.status, 'alerts.status'),
    count: toInteger(row.count, 'alerts.count'),
    first_seen: toInteger(row.first_seen_ms, 'alerts.first_seen'),
    last_seen: toInteger(row.last_seen_ms, 'alerts.last_seen'),
    title: row.title,
    reason: row.reason,
    verdict_ids: row.verdict_ids,
    evidence: parseEvidence(row.evidence, 'alerts.evidence'),
    atlas: row.atlas,
    updated_at: toInteger(row.updated_at_ms, 'alerts.updated_at'),
    acknowledged_by: row.acknowledged_by,
    resolved_at: toInteger(row.resolved_at_ms, 'alerts.resolved_at'),
    source_partition: toInteger(row.source_partition, 'alerts.source_partition'),
    source_offset: toInteger(row.source_offset, 'alerts.source_offset'),
    silenced_by: row.silenced_by,
    comment: row.comment,
  };
}

export const AUDIT_COLUMNS = `event_id, toUnixTimestamp64Milli(time) AS time_ms, tenant, bus_partition, agent_id, event_type,
  decision, would_decide, mode, matched_policies, verdict_ids, policy_version,
  toUnixTimestamp64Milli(evaluated_at) AS evaluated_at_ms, seq, prev_hash, hash`;

export interface AuditRow {
  event_id: string;
  time_ms: Int64Json;
  tenant: string;
  bus_partition: Int64Json;
  agent_id: string;
  event_type: string;
  decision: string;
  would_decide: string;
  mode: string;
  matched_policies: string[];
  verdict_ids: string[];
  policy_version: string;
  evaluated_at_ms: Int64Json;
  seq: Int64Json;
  prev_hash: string;
  hash: string;
}

export function rowToAudit(row: AuditRow): AuditRecord {
  return {
    event_id: row.event_id,
    time: toInteger(row.time_ms, 'audit_log.time'),
    tenant: row.tenant,
    bus_partition: toInteger(row.bus_partition, 'audit_log.bus_partition'),
    agent_id: row.agent_id,
    event_type: oneOf(EventTypes, row.event_type, 'audit_log.event_type'),
    decision: oneOf(Decisions, row.decision, 'audit_log.decision'),
    would_decide: oneOf(Decisions, row.would_decide, 'audit_log.would_decide'),
    mode: oneOf(ENFORCEMENT_MODES, row.mode, 'audit_log.mode'),
    matched_policies: row.matched_policies,
    verdict_ids: row.verdict_ids,
    policy_version: row.policy_version,
    evaluated_at: toInteger(row.evaluated_at_ms, 'audit_log.evaluated_at'),
    seq: toInteger(row.seq, 'audit_log.seq'),
    prev_hash: row.prev_hash,
    hash: row.hash,
  };
}
