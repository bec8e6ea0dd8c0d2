import { maxSeverity } from '../core/decision.js';
import { alertId } from '../core/ids.js';
import type { Alert, Verdict } from '../core/records.js';
import { RecentIds } from '../core/recent-ids.js';
import { AlertingError } from './errors.js';
import { nextVersion } from './row-version.js';
import type { SilenceLookup } from './silences.js';

/** How many verdict ids an alert keeps: the first few and the most recent. */
export const VERDICT_SAMPLE_FIRST = 5;
export const VERDICT_SAMPLE_LATEST = 15;

export type AlertChange = 'opened' | 'bumped' | 'escalated' | 'acknowledged' | 'resolved';

export interface AlertUpdate {
  alert: Alert;
  change: AlertChange;
}

/** Who changes an alert by hand, and the note kept with the change. */
export interface AlertChangeOptions {
  /** The caller's tenant: another tenant's alert is reported as not found. null/undefined: any tenant. */
  tenant?: string | null;
  /** Kept as the alert's `comment`; the previous note stays when omitted or blank. */
  comment?: string;
}

/**
 * How many verdict ids the replay guard remembers, over all alerts. A verdict
 * comes again when a worker re-judges a batch it published but had not
 * committed (a restart): those are the latest few batches of verdicts, far
 * fewer than this. The guard is bounded so a long run's memory is too.
 */
export const DEFAULT_REPLAY_GUARD_IDS = 100_000;

const NO_POSITION = { partition: -1, offset: -1 };
const NO_SILENCES: SilenceLookup = { silencing: () => undefined };

function dedupKey(tenant: string, policyId: string, agentId: string): string {
  return `${tenant}\u0000${policyId}\u0000${agentId}`;
}

/**
 * Alert deduplication and lifecycle, as plain in-memory logic.
 *
 * One alert per (tenant, policy_id, agent_id) while it is `open` or
 * `acknowledged`; repeats raise `count` and `last_seen` (and severity, when a
 * later verdict is more severe). A `resolved` alert leaves the book, so the
 * next matching verdict opens a new alert with a new id.
 *
 * Every verdict that opens or bumps an alert is judged against the silences
 * in force at `now`: the alert records the muting silence in `silenced_by`
 * ('' when none), which tells the caller not to notify.
 */
export class AlertBook {
  private readonly active = new Map<string, Alert>();
  private readonly byId = new Map<string, Alert>();
  /** Verdict ids counted lately (all alerts), so a republished verdict does not bump twice. */
  private readonly counted: RecentIds;

  constructor(
    activeAlerts: readonly Alert[] = [],
    private readonly silences: SilenceLookup = NO_SILENCES,
    replayGuardIds = DEFAULT_REPLAY_GUARD_IDS,
  ) {
    this.counted = new RecentIds(replayGuardIds);
    for (const a of activeAlerts) {
      if (a.status === 'resolved') continue;
      this.active.set(dedupKey(a.tenant, a.policy_id, a.agent_id), { ...a });
      this.byId.set(a.alert_id, this.active.get(dedupKey(a.tenant, a.policy_id, a.agent_id)) as Alert);
      for (const id of a.verdict_ids) this.counted.add(id);
    }
  }

  /**
   * Opens an alert for the verdict or bumps the one already open; null for a
   * replayed verdict (same verdict id, or a bus position the alert already
   * counted) and for a verdict an exception let through (`exception` set):
   * an approved exception is a decision already taken, not something for an
   * analyst to triage; the verdict itself stays queryable. Verdicts with
   * `would_decide` allow but no exception (`action: alert` policies) do alert.
   */
  openOrBumpAlert(verdict: Verdict, now: number, position: { partition: number; offset: number } = NO_POSITION): AlertUpdate | null {
    if (isExcepted(verdict)) return null;
    const key = dedupKey(verdict.tenant, verdict.policy_id, verdict.agent_id);
    const existing = this.active.get(key);
    if (existing !== undefined && position.offset >= 0 && position.partition === existing.source_partition && position.offset <= existing.source_offset) {
      return null;
    }
    if (existing === undefined) {
      const alert: Alert = {
        alert_id: alertId(verdict.tenant, verdict.policy_id, verdict.agent_id, verdict.time),
        tenant: verdict.tenant,
        policy_id: verdict.policy_id,
        policy_type: verdict.policy_type,
        agent_id: verdict.agent_id,
        severity: verdict.severity,
        status: 'open',
        count: 1,
        first_seen: verdict.time,
        last_seen: verdict.time,
        title: `${verdict.policy_type} on ${verdict.agent_id} (${verdict.policy_id})`,
        reason: verdict.reason,
        verdict_ids: [verdict.verdict_id],
        evidence: verdict.evidence,
        atlas: verdict.atlas,
        updated_at: now,
        acknowledged_by: '',
        resolved_at: 0,
        source_partition: position.partition,
        source_offset: position.offset,
        silenced_by: '',
        comment: '',
      };
      alert.silenced_by = this.silences.silencing(alert, now)?.silence_id ?? '';
      this.active.set(key, alert);
      this.byId.set(alert.alert_id, alert);
      this.counted.add(verdict.verdict_id);
      return { alert: { ...alert }, change: 'opened' };
    }
    // Verdict ids are unique per (event, policy): one guard serves every alert.
    if (!this.counted.add(verdict.verdict_id)) return null;
    const previousSeverity = existing.severity;
    existing.count += 1;
    existing.first_seen = Math.min(existing.first_seen, verdict.time);
    if (verdict.time >= existing.last_seen) {
      existing.last_seen = verdict.time;
      existing.reason = verdict.reason;
      existing.evidence = verdict.evidence;
    }
    existing.severity = maxSeverity(existing.severity, verdict.severity);
    existing.verdict_ids = sampleVerdictIds(existing.verdict_ids, verdict.verdict_id);
    existing.updated_at = nextVersion(existing.updated_at, now);
    if (position.offset >= 0) {
      existing.source_partition = position.partition;
      existing.source_offset = position.offset;
    }
    // Judged on the alert as counted: a silence of low severities stops muting once the alert escalates.
    existing.silenced_by = this.silences.silencing(existing, now)?.silence_id ?? '';
    return { alert: { ...existing }, change: existing.severity !== previousSeverity ? 'escalated' : 'bumped' };
  }

  /**
   * Moves an open alert to acknowledged. Acknowledging again is a no-op that
   * returns the alert (a new comment is still kept).
   *
   * @throws AlertingError `AW_ALERTING_NOT_FOUND` for an alert not open or acknowledged, or of another tenant than `options.tenant`.
   */
  acknowledge(id: string, by: string, now: number, options: AlertChangeOptions = {}): AlertUpdate {
    const alert = this.changeable(id, options.tenant);
    const comment = options.comment?.trim() ?? '';
    if (alert.status === 'open' || (comment !== '' && comment !== alert.comment)) {
      if (alert.status === 'open') {
        alert.status = 'acknowledged';
        alert.acknowledged_by = by;
      }
      if (comment !== '') alert.comment = comment;
      alert.updated_at = nextVersion(alert.updated_at, now);
    }
    return { alert: { ...alert }, change: 'acknowledged' };
  }

  /**
   * Resolves an open or acknowledged alert; the next matching verdict opens a new one.
   *
   * @throws AlertingError `AW_ALERTING_NOT_FOUND` for an alert not open or acknowledged, or of another tenant than `options.tenant`.
   */
  resolve(id: string, now: number, options: AlertChangeOptions = {}): AlertUpdate {
    const alert = this.changeable(id, options.tenant);
    const comment = options.comment?.trim() ?? '';
    if (comment !== '') alert.comment = comment;
    alert.status = 'resolved';
    alert.resolved_at = now;
    alert.updated_at = nextVersion(alert.updated_at, now);
    this.byId.delete(id);
    this.active.delete(dedupKey(alert.tenant, alert.policy_id, alert.agent_id));
    return { alert: { ...alert }, change: 'resolved' };
  }

  /** The live alert `id`, when open or acknowledged and visible to a caller of `tenant`. */
  private changeable(id: string, tenant: string | null | undefined): Alert {
    const alert = this.byId.get(id);
    // Another tenant's alert is reported exactly like a missing one: its existence is not the caller's business.
    if (alert === undefined || (tenant !== undefined && tenant !== null && alert.tenant !== tenant)) {
      throw new AlertingError('AW_ALERTING_NOT_FOUND', `no open or acknowledged alert ${id}`);
    }
    return alert;
  }

  get(id: string): Alert | undefined {
    const a = this.byId.get(id);
    return a === undefined ? undefined : { ...a };
  }

  /** Verdict ids the replay guard holds (at most its capacity). */
  replayGuardSize(): number {
    return this.counted.size;
  }

  activeCount(): number {
    return this.active.size;
  }

  activeAlerts(): Alert[] {
    return [...this.active.values()].map((a) => ({ ...a }));
  }
}

/** True when an exception let the verdict through; verdicts from before the field existed have none. */
export function isExcepted(verdict: Pick<Verdict, 'exception'>): boolean {
  return typeof verdict.exception === 'string' && verdict.exception !== '';
}

function sampleVerdictIds(ids: readonly string[], added: string): string[] {
  if (ids.length < VERDICT_SAMPLE_FIRST + VERDICT_SAMPLE_LATEST) return [...ids, added];
  return [...ids.slice(0, VERDICT_SAMPLE_FIRST), ...ids.slice(VERDICT_SAMPLE_FIRST + 1), added];
}
