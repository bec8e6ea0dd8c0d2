import { describe, expect, it } from 'vitest';
import type { Verdict } from '../core/records.js';
import { T0, testAlert } from './delivery-testing.js';
import { OCSF_SCHEMA_VERSION, toOcsfDetectionFinding } from './ocsf.js';

function verdict(n: number, overrides: Partial<Verdict> = {}): Verdict {
  return {
    verdict_id: `v${n}`,
    event_id: `e${n}`,
    time: T0 + n,
    tenant: 'acme',
    agent_id: 'agent-1',
    agent_name: 'cursor',
    event_type: 'api_call',
    policy_id: 'api-rate-spike',
    policy_type: 'rate_spike',
    severity: 'high',
    action: 'alert',
    decision: 'allow',
    would_decide: 'allow',
    mode: 'monitoring',
    reason: `reason ${n}`,
    evidence: { n },
    atlas: [],
    late: false,
    exception: '',
    ...overrides,
  };
}

describe('toOcsfDetectionFinding', () => {
  it('renders an open alert as a Detection Finding (class 2004) with its ATLAS techniques', () => {
    const finding = toOcsfDetectionFinding(testAlert({ atlas: ['AML.T0034', 'AML.T0051.000', 'not-atlas'] }));
    expect(finding).toMatchObject({
      class_uid: 2004,
      class_name: 'Detection Finding',
      category_uid: 2,
      activity_id: 1,
      type_uid: 200401,
      severity_id: 4,
      severity: 'High',
      status_id: 1,
      status: 'New',
      time: T0 + 10,
      count: 3,
      metadata: { version: OCSF_SCHEMA_VERSION, tenant_uid: 'acme', product: { name: 'agentwatch' } },
      finding_info: {
        uid: 'a1',
        title: 'rate_spike on agent-1 (api-rate-spike)',
        first_seen_time: T0,
        last_seen_time: T0 + 10,
        analytic: { uid: 'api-rate-spike', type_id: 1, type: 'Rule' },
      },
      resources: [{ uid: 'agent-1', type: 'AI Agent' }],
      evidences: [{ data: { count: 120, threshold: 100 } }],
    });
    expect(finding.finding_info.attacks).toEqual([
      { technique: { uid: 'AML.T0034', src_url: 'https://atlas.mitre.org/techniques/AML.T0034' } },
      {
        technique: { uid: 'AML.T0051', src_url: 'https://atlas.mitre.org/techniques/AML.T0051' },
        sub_technique: { uid: 'AML.T0051.000', src_url: 'https://atlas.mitre.org/techniques/AML.T0051.000' },
      },
    ]);
    expect(finding.finding_info.related_events).toBeUndefined();
    expect(finding.metadata.uid).toBeUndefined();
  });

  it('closes a resolved alert, and maps acknowledged to in progress', () => {
    expect(toOcsfDetectionFinding(testAlert({ status: 'resolved', resolved_at: T0 + 99 }))).toMatchObject({ activity_id: 3, type_uid: 200403, status_id: 4, unmapped: { resolved_time: T0 + 99 } });
    expect(toOcsfDetectionFinding(testAlert({ status: 'acknowledged', acknowledged_by: 'ana' }))).toMatchObject({ status_id: 2, status: 'In Progress', unmapped: { acknowledged_by: 'ana' } });
    expect(toOcsfDetectionFinding(testAlert(), [], { activity: 'update', uid: 'n1', time: 5, alertUrl: 'https://aw/v1/alerts/a1' })).toMatchObject({
      activity_id: 2,
      time: 5,
      metadata: { uid: 'n1' },
      finding_info: { src_url: 'https://aw/v1/alerts/a1' },
    });
  });

  it('takes related events, evidence and techniques from the verdicts given', () => {
    const finding = toOcsfDetectionFinding(testAlert({ atlas: ['AML.T0034'] }), [verdict(1, { atlas: ['AML.T0034', 'AML.T0024'] }), verdict(2)]);
    expect(finding.finding_info.related_events).toEqual([
      { uid: 'e1', product_uid: 'agentwatch' },
      { uid: 'e2', product_uid: 'agentwatch' },
    ]);
    expect(finding.evidences).toEqual([{ data: { n: 1 } }, { data: { n: 2 } }]);
    expect(finding.finding_info.attacks.map((a) => a.technique.uid)).toEqual(['AML.T0034', 'AML.T0024']);
    expect(finding.resources).toEqual([{ uid: 'agent-1', type: 'AI Agent', name: 'cursor' }]);
  });

  it('is plain JSON', () => {
    const finding = toOcsfDetectionFinding(testAlert());
    expect(JSON.parse(JSON.stringify(finding))).toEqual(finding);
  });
});
