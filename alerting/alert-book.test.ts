import { describe, expect, it } from 'vitest';
import type { Silence, Verdict } from '../core/records.js';
import { AlertBook } from './alert-book.js';
import { AlertingError } from './errors.js';
import { expireSilence, SilenceBook } from './silences.js';

let n = 0;
function verdict(overrides: Partial<Verdict> = {}): Verdict {
  n++;
  return {
    verdict_id: `v${String(n).padStart(31, '0')}`,
    event_id: `e${n}`,
    time: 1_000 + n,
    tenant: 'default',
    agent_id: 'agent-1',
    agent_name: 'cursor',
    event_type: 'api_call',
    policy_id: 'spike',
    policy_type: 'rate_spike',
    severity: 'medium',
    action: 'alert',
    decision: 'allow',
    would_decide: 'allow',
    mode: 'monitoring',
    reason: `reason ${n}`,
    evidence: { count: n },
    atlas: ['AML.T0034'],
    late: false,
    exception: '',
    ...overrides,
  };
}

describe('alert dedup and lifecycle', () => {
  it('opens no alert for verdicts an exception let through, but does for alert-only (would_decide allow) verdicts', () => {
    const book = new AlertBook();
    expect(book.openOrBumpAlert(verdict({ exception: 'ops-bot-window', action: 'block' }), 1)).toBeNull();
    expect(book.activeCount()).toBe(0);
    const alertOnly = book.openOrBumpAlert(verdict({ action: 'alert', would_decide: 'allow' }), 2);
    expect(alertOnly?.change).toBe('opened');
    // An excepted verdict does not bump the alert either.
    expect(book.openOrBumpAlert(verdict({ exception: 'ops-bot-window' }), 3)).toBeNull();
    expect(book.activeAlerts()[0]?.count).toBe(1);
    // A verdict from before the field existed (replayed from the bus) counts as not excepted.
    const { exception: _none, ...legacy } = verdict();
    expect(book.openOrBumpAlert(legacy as Verdict, 4)?.change).toBe('bumped');
  });

  it('opens one alert per (tenant, policy, agent) and bumps count and last_seen on repeats', () => {
    const book = new AlertBook();
    const first = book.openOrBumpAlert(verdict({ time: 100 }), 10)!;
    const second = book.openOrBumpAlert(verdict({ time: 200 }), 11)!;
    expect(first.change).toBe('opened');
    expect(second.change).toBe('bumped');
    expect(second.alert.alert_id).toBe(first.alert.alert_id);
    expect(second.alert.count).toBe(2);
    expect(second.alert.first_seen).toBe(100);
    expect(second.alert.last_seen).toBe(200);
    expect(second.alert.updated_at).toBeGreaterThan(first.alert.updated_at);
    expect(book.activeCount()).toBe(1);
  });

  it('keeps separate alerts for other agents, policies and tenants', () => {
    const book = new AlertBook();
    book.openOrBumpAlert(verdict(), 1);
    book.openOrBumpAlert(verdict({ agent_id: 'agent-2' }), 1);
    book.openOrBumpAlert(verdict({ policy_id: 'other' }), 1);
    book.openOrBumpAlert(verdict({ tenant: 'acme' }), 1);
    expect(book.activeCount()).toBe(4);
  });

  it('a replayed verdict does not bump twice', () => {
    const book = new AlertBook();
    const v = verdict();
    book.openOrBumpAlert(v, 1);
    book.openOrBumpAlert(verdict(), 2);
    expect(book.openOrBumpAlert(v, 3)).toBeNull();
    expect(book.activeAlerts()[0]!.count).toBe(2);
  });

  it('the replay guard is bounded over all alerts, and still catches the latest verdicts', () => {
    const book = new AlertBook([], undefined, 1_000);
    let k = 0;
    const next = (agent: string) => verdict({ verdict_id: `v-${++k}`, agent_id: agent });
    const latest: ReturnType<typeof verdict>[] = [];
    for (let i = 0; i < 5_000; i++) {
      const v = next(`agent-${i % 3}`);
      book.openOrBumpAlert(v, i);
      latest.push(v);
      if (latest.length > 900) latest.shift();
    }
    expect(book.replayGuardSize()).toBe(1_000);
    const counts = book.activeAlerts().map((a) => a.count);
    for (const v of latest) expect(book.openOrBumpAlert(v, 10_000)).toBeNull();
    expect(book.activeAlerts().map((a) => a.count)).toEqual(counts);
    expect(counts.reduce((a, b) => a + b, 0)).toBe(5_000);
  });

  it('a verdict counted before its alert was resolved and reopened does not bump the new alert', () => {
    const book = new AlertBook();
    const first = verdict({ verdict_id: 'v-1', time: 100 });
    const opened = book.openOrBumpAlert(first, 1)!.alert;
    book.resolve(opened.alert_id, 2);
    const reopened = book.openOrBumpAlert(verdict({ verdict_id: 'v-2', time: 300 }), 3)!.alert;
    expect(book.openOrBumpAlert(first, 4)).toBeNull();
    expect(book.get(reopened.alert_id)!.count).toBe(1);
  });

  it('escalates severity to the highest seen', () => {
    const book = new AlertBook();
    book.openOrBumpAlert(verdict({ severity: 'low' }), 1);
    const up = book.openOrBumpAlert(verdict({ severity: 'critical' }), 2)!;
    expect(up.change).toBe('escalated');
    expect(up.alert.severity).toBe('critical');
    const again = book.openOrBumpAlert(verdict({ severity: 'low' }), 3)!;
    expect(again.alert.severity).toBe('critical');
  });

  it('acknowledged alerts still dedup; resolved alerts make room for a new one', () => {
    const book = new AlertBook();
    const opened = book.openOrBumpAlert(verdict({ time: 100 }), 1)!.alert;
    const acked = book.acknowledge(opened.alert_id, 'ana', 2).alert;
    expect(acked.status).toBe('acknowledged');
    expect(acked.acknowledged_by).toBe('ana');
    const bumped = book.openOrBumpAlert(verdict({ time: 150 }), 3)!;
    expect(bumped.alert.alert_id).toBe(opened.alert_id);
    expect(bumped.alert.status).toBe('acknowledged');
    const resolved = book.resolve(opened.alert_id, 4).alert;
    expect(resolved.status).toBe('resolved');
    expect(resolved.resolved_at).toBe(4);
    const reopened = book.openOrBumpAlert(verdict({ time: 300 }), 5)!;
    expect(reopened.change).toBe('opened');
    expect(reopened.alert.alert_id).not.toBe(opened.alert_id);
    expect(reopened.alert.count).toBe(1);
  });

  it('unknown or resolved alerts cannot be acknowledged or resolved', () => {
    const book = new AlertBook();
    const a = book.openOrBumpAlert(verdict(), 1)!.alert;
    book.resolve(a.alert_id, 2);
    expect(() => book.acknowledge(a.alert_id, 'x', 3)).toThrow(AlertingError);
    expect(() => book.resolve('f'.repeat(32), 3)).toThrow(/no open or acknowledged alert/);
  });

  it('keeps a bounded sample of verdict ids: the first five and the latest', () => {
    const book = new AlertBook();
    const ids: string[] = [];
    for (let i = 0; i < 40; i++) {
      const v = verdict();
      ids.push(v.verdict_id);
      book.openOrBumpAlert(v, i);
    }
    const alert = book.activeAlerts()[0]!;
    expect(alert.count).toBe(40);
    expect(alert.verdict_ids).toHaveLength(20);
    expect(alert.verdict_ids.slice(0, 5)).toEqual(ids.slice(0, 5));
    expect(alert.verdict_ids.slice(5)).toEqual(ids.slice(25));
  });

  it('rebuilds from stored active alerts and keeps counting on them', () => {
    const book = new AlertBook();
    const a = book.openOrBumpAlert(verdict(), 1)!.alert;
    const restarted = new AlertBook([a, { ...a, alert_id: 'r'.repeat(32), agent_id: 'gone', status: 'resolved' }]);
    expect(restarted.activeCount()).toBe(1);
    const bumped = restarted.openOrBumpAlert(verdict(), 2)!;
    expect(bumped.alert.alert_id).toBe(a.alert_id);
    expect(bumped.alert.count).toBe(2);
  });
});

describe('alert replays by bus position', () => {
  it('does not count a verdict at or below the newest position already counted, even with a new verdict id', () => {
    const book = new AlertBook();
    book.openOrBumpAlert(verdict(), 1, { partition: 3, offset: 100 });
    book.openOrBumpAlert(verdict(), 2, { partition: 3, offset: 101 });
    // After a restart only the stored alert is known: positions ≤ 101 on partition 3 are replays.
    const restarted = new AlertBook(book.activeAlerts().map((a) => ({ ...a, verdict_ids: [] })));
    expect(restarted.openOrBumpAlert(verdict(), 3, { partition: 3, offset: 101 })).toBeNull();
    expect(restarted.openOrBumpAlert(verdict(), 3, { partition: 3, offset: 100 })).toBeNull();
    const next = restarted.openOrBumpAlert(verdict(), 4, { partition: 3, offset: 102 })!;
    expect(next.alert.count).toBe(3);
    expect(next.alert.source_offset).toBe(102);
    // Another partition (the topic was repartitioned) counts normally.
    expect(restarted.openOrBumpAlert(verdict(), 5, { partition: 1, offset: 5 })!.alert.count).toBe(4);
  });
});

describe('silences', () => {
  function silence(overrides: Partial<Silence> = {}): Silence {
    return {
      silence_id: 'sil-1',
      tenant: 'default',
      matchers: { policy_id: 'spike' },
      starts_at: 100,
      ends_at: 200,
      comment: 'load test',
      created_by: 'ana',
      created_at: 100,
      expired_at: null,
      expired_by: '',
      updated_at: 100,
      ...overrides,
    };
  }

  it('opens and bumps the alert while silenced, recording the silence; the first verdict after it clears silenced_by', () => {
    const silences = new SilenceBook([silence()]);
    const book = new AlertBook([], silences);
    expect(book.openOrBumpAlert(verdict(), 50)?.alert.silenced_by).toBe('');
    const other = book.openOrBumpAlert(verdict({ agent_id: 'agent-2' }), 150)!;
    expect(other).toMatchObject({ change: 'opened', alert: { silenced_by: 'sil-1', count: 1 } });
    const bumped = book.openOrBumpAlert(verdict({ agent_id: 'agent-2' }), 199)!;
    expect(bumped).toMatchObject({ change: 'bumped', alert: { silenced_by: 'sil-1', count: 2 } });
    // Judged at processing time: the silence ended at 200.
    const after = book.openOrBumpAlert(verdict({ agent_id: 'agent-2' }), 200)!;
    expect(after).toMatchObject({ change: 'bumped', alert: { silenced_by: '', count: 3 } });
  });

  it('stops muting once expired early, and when the alert escalates out of the silenced severities', () => {
    const s = silence({ matchers: { severity: ['low', 'medium'] }, tenant: null });
    const silences = new SilenceBook([s]);
    const book = new AlertBook([], silences);
    expect(book.openOrBumpAlert(verdict({ severity: 'low' }), 110)?.alert.silenced_by).toBe('sil-1');
    expect(book.openOrBumpAlert(verdict({ severity: 'high' }), 120)).toMatchObject({ change: 'escalated', alert: { silenced_by: '' } });
    expect(book.openOrBumpAlert(verdict({ tenant: 'acme', severity: 'medium' }), 130)?.alert.silenced_by).toBe('sil-1');
    silences.put(expireSilence(s, 'bob', 140)!);
    expect(book.openOrBumpAlert(verdict({ tenant: 'acme' }), 140)?.alert.silenced_by).toBe('');
  });

  it('does not apply silences of another tenant or other matchers', () => {
    const silences = new SilenceBook([silence({ tenant: 'acme' }), silence({ silence_id: 'sil-2', matchers: { agent_id: 'agent-9*' } })]);
    const book = new AlertBook([], silences);
    expect(book.openOrBumpAlert(verdict(), 150)?.alert.silenced_by).toBe('');
    expect(book.openOrBumpAlert(verdict({ agent_id: 'AGENT-99' }), 150)?.alert.silenced_by).toBe('sil-2');
  });
});

describe('tenant scope and comments of manual changes', () => {
  it('reports another tenant\'s alert as not found to a tenant-bound caller', () => {
    const book = new AlertBook();
    const a = book.openOrBumpAlert(verdict({ tenant: 'acme' }), 1)!.alert;
    expect(() => book.acknowledge(a.alert_id, 'eve', 2, { tenant: 'globex' })).toThrow(/no open or acknowledged alert/);
    expect(() => book.resolve(a.alert_id, 2, { tenant: 'globex' })).toThrow(AlertingError);
    expect(book.get(a.alert_id)?.status).toBe('open');
    expect(book.acknowledge(a.alert_id, 'ana', 3, { tenant: 'acme' }).alert.status).toBe('acknowledged');
    expect(book.resolve(a.alert_id, 4, { tenant: null }).alert.status).toBe('resolved');
  });

  it('keeps the latest comment given; acknowledging again with a new comment makes a new version', () => {
    const book = new AlertBook();
    const a = book.openOrBumpAlert(verdict(), 1)!.alert;
    expect(a.comment).toBe('');
    const acked = book.acknowledge(a.alert_id, 'ana', 2, { comment: '  looking into it ' }).alert;
    expect(acked.comment).toBe('looking into it');
    const same = book.acknowledge(a.alert_id, 'bob', 3).alert;
    expect(same).toEqual(acked);
    const noted = book.acknowledge(a.alert_id, 'bob', 3, { comment: 'vendor ticket 42' }).alert;
    expect(noted).toMatchObject({ comment: 'vendor ticket 42', acknowledged_by: 'ana' });
    expect(noted.updated_at).toBeGreaterThan(acked.updated_at);
    expect(book.resolve(a.alert_id, 4).alert.comment).toBe('vendor ticket 42');
  });
});
