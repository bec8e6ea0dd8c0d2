import type { Severity } from '../core/decision.js';
import type { Alert, AlertStatus, Evidence, Verdict } from '../core/records.js';

// An alert as an OCSF Detection Finding (class 2004, Findings category),
// schema 1.3.0. Pure: the webhook sink and the exporter render the same shape.

/** OCSF schema version the findings follow. */
export const OCSF_SCHEMA_VERSION = '1.3.0';

const ACTIVITIES = { create: [1, 'Create'], update: [2, 'Update'], close: [3, 'Close'] } as const;
export type OcsfActivity = keyof typeof ACTIVITIES;

const SEVERITIES: Record<Severity, readonly [number, string]> = {
  low: [2, 'Low'],
  medium: [3, 'Medium'],
  high: [4, 'High'],
  critical: [5, 'Critical'],
};

const STATUSES: Record<AlertStatus, readonly [number, string]> = {
  open: [1, 'New'],
  acknowledged: [2, 'In Progress'],
  resolved: [4, 'Resolved'],
};

/** An OCSF `attack` object for one MITRE ATLAS technique. */
export interface OcsfAttack {
  technique: { uid: string; src_url: string };
  sub_technique?: { uid: string; src_url: string };
}

/** The Detection Finding fields agentwatch fills. */
export interface OcsfDetectionFinding {
  activity_id: number;
  activity_name: string;
  category_uid: 2;
  category_name: 'Findings';
  class_uid: 2004;
  class_name: 'Detection Finding';
  type_uid: number;
  type_name: string;
  time: number;
  severity_id: number;
  severity: string;
  status_id: number;
  status: string;
  message: string;
  count: number;
  start_time: number;
  end_time: number;
  comment?: string;
  metadata: {
    version: string;
    uid?: string;
    tenant_uid: string;
    product: { name: 'agentwatch'; vendor_name: 'agentwatch'; version?: string };
  };
  finding_info: {
    uid: string;
    title: string;
    desc: string;
    types: string[];
    created_time: number;
    first_seen_time: number;
    last_seen_time: number;
    modified_time: number;
    src_url?: string;
    analytic: { uid: string; name: string; type_id: 1; type: 'Rule'; category: string };
    attacks: OcsfAttack[];
    related_events?: { uid: string; product_uid: 'agentwatch' }[];
  };
  resources: { uid: string; type: 'AI Agent'; name?: string }[];
  evidences: { data: Evidence }[];
  unmapped: Record<string, string | number | string[]>;
}

/** Options of {@link toOcsfDetectionFinding}. */
export interface OcsfOptions {
  /** @default `close` for a resolved alert, otherwise `create` */
  activity?: OcsfActivity;
  /** `metadata.uid`: this event instance's id (a notification id, an export row id). @default none */
  uid?: string;
  /** `time`: when the finding event was made (epoch ms). @default the alert's `updated_at` */
  time?: number;
  /** `metadata.product.version`. @default none */
  productVersion?: string;
  /** `finding_info.src_url`: the alert in agentwatch's API. @default none */
  alertUrl?: string;
}

/** The ATLAS page of a technique id; ids are `AML.T` plus digits (and `.NNN` for a sub-technique), checked so no odd text reaches a URL. */
function atlasAttack(id: string): OcsfAttack | null {
  const match = /^(AML\.T\d{4})(\.\d{3})?$/.exec(id);
  if (match === null) return null;
  const technique = match[1] as string;
  const url = (uid: string) => `https://atlas.mitre.org/techniques/${uid}`;
  return match[2] === undefined
    ? { technique: { uid: technique, src_url: url(technique) } }
    : { technique: { uid: technique, src_url: url(technique) }, sub_technique: { uid: id, src_url: url(id) } };
}

/**
 * An alert as an OCSF Detection Finding: `finding_info.uid` is the alert id,
 * the policy is the analytic (a rule), the agent the resource, and the ATLAS
 * techniques of the alert and of `verdicts` go to `finding_info.attacks`
 * (ids that are not ATLAS technique ids are left out). With `verdicts` (the
 * alert's, as many as the caller has), their events become
 * `related_events` and their evidence the `evidences`; without, the alert's
 * latest evidence is the one evidence. What OCSF has no place for (tenant,
 * policy type, verdict ids, who acknowledged) goes to `unmapped`.
 */
export function toOcsfDetectionFinding(alert: Alert, verdicts: readonly Verdict[] = [], options: OcsfOptions = {}): OcsfDetectionFinding {
  const [activityId, activityName] = ACTIVITIES[options.activity ?? (alert.status === 'resolved' ? 'close' : 'create')];
  const [severityId, severityName] = SEVERITIES[alert.severity];
  const [statusId, statusName] = STATUSES[alert.status];
  const techniques = [...new Set([...alert.atlas, ...verdicts.flatMap((v) => v.atlas)])];
  const unmapped: Record<string, string | number | string[]> = {
    tenant: alert.tenant,
    policy_id: alert.policy_id,
    policy_type: alert.policy_type,
    agent_id: alert.agent_id,
    verdict_ids: alert.verdict_ids,
  };
  if (alert.acknowledged_by !== '') unmapped.acknowledged_by = alert.acknowledged_by;
  if (alert.resolved_at > 0) unmapped.resolved_time = alert.resolved_at;
  if (alert.silenced_by !== '') unmapped.silenced_by = alert.silenced_by;
  const agentName = verdicts.find((v) => v.agent_name !== '')?.agent_name;
  return {
    activity_id: activityId,
    activity_name: activityName,
    category_uid: 2,
    category_name: 'Findings',
    class_uid: 2004,
    class_name: 'Detection Finding',
    type_uid: 2004 * 100 + activityId,
    type_name: `Detection Finding: ${activityName}`,
    time: options.time ?? alert.updated_at,
    severity_id: severityId,
    severity: severityName,
    status_id: statusId,
    status: statusName,
    message: alert.reason,
    count: alert.count,
    start_time: alert.first_seen,
    end_time: alert.last_seen,
    ...(alert.comment === '' ? {} : { comment: alert.comment }),
    metadata: {
      version: OCSF_SCHEMA_VERSION,
      ...(options.uid === undefined ? {} : { uid: options.uid }),
      tenant_uid: alert.tenant,
      product: { name: 'agentwatch', vendor_name: 'agentwatch', ...(options.productVersion === undefined ? {} : { version: options.productVersion }) },
    },
    finding_info: {
      uid: alert.alert_id,
      title: alert.title,
      desc: alert.reason,
      types: [alert.policy_type],
      created_time: alert.first_seen,
      first_seen_time: alert.first_seen,
      last_seen_time: alert.last_seen,
      modified_time: alert.updated_at,
      ...(options.alertUrl === undefined ? {} : { src_url: options.alertUrl }),
      analytic: { uid: alert.policy_id, name: alert.policy_id, type_id: 1, type: 'Rule', category: alert.policy_type },
      attacks: techniques.flatMap((id) => atlasAttack(id) ?? []),
      ...(verdicts.length === 0 ? {} : { related_events: verdicts.map((v) => ({ uid: v.event_id, product_uid: 'agentwatch' as const })) }),
    },
    resources: [{ uid: alert.agent_id, type: 'AI Agent', ...(agentName === undefined ? {} : { name: agentName }) }],
    evidences: verdicts.length === 0 ? [{ data: alert.evidence }] : verdicts.map((v) => ({ data: v.evidence })),
    unmapped,
  };
}
