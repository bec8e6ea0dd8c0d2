import { Decisions, PolicyActions, Severities } from '../../core/decision.js';
import { EventTypes } from '../../core/event.js';
import type { Evidence, Verdict } from '../../core/records.js';
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
