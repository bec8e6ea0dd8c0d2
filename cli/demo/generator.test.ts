import { fileURLToPath } from 'node:url';
import { DateTime } from 'luxon';
import { beforeAll, describe, expect, it } from 'vitest';
import type { AgentEvent, AgentEventInput } from '../../core/event.js';
import { validateEvent } from '../../core/event.js';
import type { Verdict } from '../../core/records.js';
import { PolicyEngine, evaluateBatchSync } from '../../detectors/engine.js';
import { loadPolicyFile } from '../../detectors/policy-loader.js';
import { defaultRegistry } from '../../detectors/registry.js';
import { resourceType } from '../../detectors/resource.js';
import { MemoryStateStore } from '../../detectors/state/memory/memory-store.js';
import { DEMO_AGENT_NAMES, DEMO_ATTACK_AGENTS, DEMO_NORMAL_DOMAINS, DemoTelemetry, demoStartTime } from './generator.js';

const ZONE = 'Europe/Berlin';
const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
/** Wednesday 2026-03-04, 09:30 in Berlin. */
const START = demoStartTime(Date.UTC(2026, 2, 4, 12), ZONE);
const ATTACK_IDS = new Set(DEMO_ATTACK_AGENTS.map((a) => a.id));
const NIGHT_OWL = 'agent-nightowl-07';
const WAKEUP = 'agent-wakeup-34';
const OFFSITE = 'agent-offsite-81';
const RATED_TYPES = new Set(['api_call', 'tool_call', 'network_egress']);

function timeOf(event: AgentEventInput): number {
  if (typeof event.time !== 'number') throw new Error(`demo events carry epoch ms, got ${event.time}`);
  return event.time;
}

/** Events stamped with another time than the one they are emitted at: the night owl's 03:xx, the dormant agent's enrolment the day before. */
function backdated(event: AgentEventInput, start = START): boolean {
  return event.agent.id === NIGHT_OWL || (event.agent.id === WAKEUP && timeOf(event) < start);
}

function local(ms: number, zone = ZONE): DateTime {
  return DateTime.fromMillis(ms, { zone });
}

const QUARTER_HOUR = 15 * MINUTE;
const quarterCache = new Map<string, DateTime>();

/**
 * Local date, weekday and minute of the day, cheaply for many events: every
 * UTC offset is a whole number of quarter hours, so a UTC-aligned quarter hour
 * is one local quarter hour and luxon runs once per quarter, not per event.
 */
function localParts(ms: number, zone = ZONE): { date: string; weekday: number; minuteOfDay: number } {
  const quarter = Math.floor(ms / QUARTER_HOUR) * QUARTER_HOUR;
  const key = `${zone}@${quarter}`;
  let t = quarterCache.get(key);
  if (t === undefined) {
    t = local(quarter, zone);
    quarterCache.set(key, t);
  }
  return { date: t.toISODate() ?? '', weekday: t.weekday, minuteOfDay: t.hour * 60 + t.minute + Math.floor((ms - quarter) / MINUTE) };
}

function byAgent(events: readonly AgentEventInput[]): Map<string, AgentEventInput[]> {
  const map = new Map<string, AgentEventInput[]>();
  for (const e of events) {
    const list = map.get(e.agent.id) ?? [];
    list.push(e);
    map.set(e.agent.id, list);
  }
  return map;
}

/** Largest number of the given times (sorted ascending) in any window `(t - windowMs, t]`. */
function maxInSlidingWindow(times: readonly number[], windowMs: number): number {
  let max = 0;
  let lo = 0;
  for (let hi = 0; hi < times.length; hi++) {
    while ((times[lo] ?? 0) <= (times[hi] ?? 0) - windowMs) lo++;
    max = Math.max(max, hi - lo + 1);
  }
  return max;
}

function ratedTimes(events: readonly AgentEventInput[], type?: string): number[] {
  return events.filter((e) => (type === undefined ? RATED_TYPES.has(e.type) : e.type === type)).map(timeOf);
}

/**
 * Verdicts by agent and policy of the default document for the given events,
 * judged by the real engine on the memory store, as the embedded pipeline
 * judges them: baselines, learning periods and all.
 */
async function judge(events: readonly AgentEventInput[]): Promise<Map<string, Map<string, Verdict[]>>> {
  const document = loadPolicyFile(fileURLToPath(new URL('../../policies/default.yaml', import.meta.url)));
  const engine = new PolicyEngine(document, defaultRegistry);
  const store = new MemoryStateStore();
  const fired = new Map<string, Map<string, Verdict[]>>();
  for (let i = 0; i < events.length; i += 2_000) {
    const batch = events.slice(i, i + 2_000).map((input): AgentEvent => {
      const result = validateEvent(input);
      if (!result.ok) throw new Error(result.reason);
      return result.event;
    });
    for (const v of evaluateBatchSync(engine, store, batch).verdicts) {
      const byPolicy = fired.get(v.agent_id) ?? new Map<string, Verdict[]>();
      byPolicy.set(v.policy_id, [...(byPolicy.get(v.policy_id) ?? []), v]);
      fired.set(v.agent_id, byPolicy);
    }
    // A day takes tens of seconds: give the event loop a turn so the test
    // runner's RPC with this worker does not time out.
    await new Promise((resolve) => setImmediate(resolve));
  }
  return fired;
}

/** Agent → the policies it tripped, sorted. */
function trippedPolicies(fired: Map<string, Map<string, Verdict[]>>): Record<string, string[]> {
  return Object.fromEntries([...fired].map(([agent, byPolicy]) => [agent, [...byPolicy.keys()].sort()]));
}

// Fixtures shared by several tests; generation is deterministic, so sharing is safe.
const twoHours = new DemoTelemetry({ start: START, timezone: ZONE }).eventsUntil(START + 2 * HOUR);
const wholeDay = new DemoTelemetry({ start: START, timezone: ZONE }).eventsUntil(START + 10 * HOUR);

describe('DemoTelemetry', () => {
  it('is deterministic: the same seed gives the same events, another seed others', () => {
    const a = new DemoTelemetry({ seed: 7, start: START, timezone: ZONE }).eventsUntil(START + HOUR);
    const b = new DemoTelemetry({ seed: 7, start: START, timezone: ZONE }).eventsUntil(START + HOUR);
    const c = new DemoTelemetry({ seed: 8, start: START, timezone: ZONE }).eventsUntil(START + HOUR);
    expect(a.length).toBeGreaterThan(1000);
    expect(b).toEqual(a);
    expect(c.map((e) => [e.time, e.type])).not.toEqual(a.map((e) => [e.time, e.type]));
  });

  it('emits only valid AgentEvent v1 events with the options stamped on', () => {
    const events = new DemoTelemetry({ start: START, timezone: ZONE, tenant: 'acme', seed: 3 }).eventsUntil(START + 2 * HOUR);
    const problems: string[] = [];
    const check = (e: AgentEventInput, ok: boolean, what: string): void => {
      if (!ok) problems.push(`${e.event_id}: ${what}`);
    };
    for (const e of events) {
      const result = validateEvent(JSON.parse(JSON.stringify(e)));
      check(e, result.ok, result.ok ? '' : result.reason);
      check(e, e.tenant === 'acme', 'tenant');
      check(e, e.agent.type === 'coding-assistant' && Boolean(e.agent.version), 'agent type/version');
      // Every agent acts from the company's 10/8, but the off-site attack, from TEST-NET-3.
      const sourceIp = e.agent.id === OFFSITE ? /^203\.0\.113\.\d{1,3}$/ : /^10\.\d{1,3}\.\d{1,3}\.\d{1,3}$/;
      check(e, sourceIp.test(e.source?.ip ?? ''), 'source ip');
      check(e, Boolean(e.source?.host) && Boolean(e.source?.user), 'source host/user');
      check(e, e.outcome !== undefined && (e.duration_ms ?? -1) >= 0, 'outcome/duration_ms');
      check(e, Number.isInteger(timeOf(e)), 'integer time');
      if (e.type === 'tool_call') check(e, Boolean(e.tool?.name) && Boolean(e.tool?.server), 'tool name/server');
      if ((e.type === 'api_call' || e.type === 'network_egress') && e.network?.ip === undefined) {
        check(e, /^https:\/\//.test(e.network?.url ?? '') && /^(GET|POST)$/.test(e.network?.method ?? ''), 'network url/method');
      }
      // A connection by bare address (the beacon) names its address and nothing a domain could be read from.
      if (e.network?.ip !== undefined) check(e, e.network.domain === undefined && e.network.url === undefined && e.resource === undefined, 'bare address');
    }
    expect(problems).toEqual([]);
    expect(new Set(events.map((e) => e.event_id)).size).toBe(events.length);
    expect(new Set(events.map((e) => e.type))).toEqual(
      new Set(['api_call', 'tool_call', 'resource_access', 'network_egress', 'mcp_connect', 'auth', 'capability_change', 'key_rotation']),
    );
    for (const e of events) {
      if (e.type === 'auth' || e.type === 'key_rotation') expect(e.key?.fingerprint, e.event_id).toMatch(/^SHA256:[A-Za-z0-9+/]{43}$/);
      if (e.type === 'capability_change') expect(e.capabilities?.length, e.event_id).toBeGreaterThan(2);
      if (e.type === 'mcp_connect') expect(e.mcp?.server_id && e.mcp.url && e.mcp.tools?.length, e.event_id).toBeTruthy();
    }
  });

  it('hands out each event once, in the call window it falls in, however time is sliced', () => {
    const small = new DemoTelemetry({ start: START, timezone: ZONE });
    const sliced: AgentEventInput[] = [];
    let previous = START;
    for (let t = START + 100; t <= START + 2 * HOUR; t += 100) {
      const batch = small.eventsUntil(t);
      for (const e of batch) {
        // The night owl is stamped 03:xx and the dormant agent's enrolment the day
        // before, both emitted as the clock passes; everything else is emitted at its event time.
        if (!backdated(e)) {
          expect(timeOf(e)).toBeGreaterThan(previous);
          expect(timeOf(e)).toBeLessThanOrEqual(t);
        }
      }
      const times = batch.filter((e) => !backdated(e)).map(timeOf);
      expect(times).toEqual([...times].sort((x, y) => x - y));
      sliced.push(...batch);
      previous = t;
    }
    expect(new Set(sliced.map((e) => e.event_id)).size).toBe(sliced.length);
    expect(sliced).toEqual(twoHours);

    // Irregular steps, including ones that do not move the clock, give the same stream too.
    const irregular = new DemoTelemetry({ start: START, timezone: ZONE });
    const pieces: AgentEventInput[] = [];
    for (const step of [1, 0, 59_999, 17 * MINUTE, 1, 33_333, 0, HOUR, 25 * MINUTE]) {
      pieces.push(...irregular.eventsUntil(irregular.simTime + step));
    }
    pieces.push(...irregular.eventsUntil(START + 2 * HOUR));
    expect(irregular.eventsUntil(START)).toEqual([]);
    expect(pieces).toEqual(twoHours);
  });

  it('copes with steps of days in one call', () => {
    const generator = new DemoTelemetry({ start: START, timezone: ZONE });
    const events = generator.eventsUntil(START + 30 * 24 * HOUR);
    // Compared as JSON: a deep equality over 100 000 events is needlessly slow.
    expect(events.length).toBe(wholeDay.length);
    expect(JSON.stringify(events)).toBe(JSON.stringify(wholeDay));
    expect(generator.eventsUntil(START + 60 * 24 * HOUR)).toEqual([]);
    expect(generator.workdayEnd).toBe(local(START).set({ hour: 18, minute: 0 }).toMillis());
  });

  describe('normal agents', () => {
    const normal = wholeDay.filter((e) => !ATTACK_IDS.has(e.agent.id));
    const allowedNames = new Set<string>(DEMO_AGENT_NAMES);
    const allowedDomains = new Set<string>(DEMO_NORMAL_DOMAINS);

    it('number 48 by default, named only as approved products', () => {
      const ids = new Set(normal.map((e) => e.agent.id));
      expect(ids.size).toBe(48);
      for (const id of ids) expect(id).toMatch(/^agent-\d{3}$/);
      expect(normal.filter((e) => !allowedNames.has(e.agent.name ?? ''))).toEqual([]);
      expect(new Set(normal.map((e) => e.agent.name)).size).toBeGreaterThan(3);
    });

    it('talk only to approved domains', () => {
      const domains = new Set(normal.flatMap((e) => (e.network?.domain === undefined ? [] : [e.network.domain])));
      for (const d of domains) expect(allowedDomains.has(d)).toBe(true);
      expect(domains.size).toBeGreaterThan(4);
    });

    it('work only 09:00–18:00 local on a weekday', () => {
      const outside = normal.filter((e) => {
        const { weekday, minuteOfDay } = localParts(timeOf(e));
        return weekday > 5 || minuteOfDay < 9 * 60 || minuteOfDay >= 18 * 60;
      });
      expect(outside).toEqual([]);
      // They keep working until the end of the day, then stop.
      const last = Math.max(...normal.map(timeOf));
      expect(local(last).hour).toBe(17);
    });

    it('stay well below 60 rated events in any 5-minute window, at 8–20 s per event', () => {
      const agents = byAgent(twoHours.filter((e) => !ATTACK_IDS.has(e.agent.id)));
      for (const [id, events] of agents) {
        const max = maxInSlidingWindow(ratedTimes(events), 5 * MINUTE);
        expect(max, id).toBeLessThanOrEqual(60);
        const meanGap = (2 * HOUR) / events.length;
        expect(meanGap, id).toBeGreaterThan(6_000);
        expect(meanGap, id).toBeLessThan(24_000);
      }
    });
    it('report one key and one capability set each, unchanged all day, about hourly', () => {
      for (const [id, events] of byAgent(normal)) {
        const keys = new Set(events.flatMap((e) => (e.key === undefined ? [] : [e.key.fingerprint])));
        const sets = new Set(events.flatMap((e) => (e.capabilities === undefined ? [] : [[...e.capabilities].sort().join(',')])));
        expect(keys.size, id).toBe(1);
        expect(sets.size, id).toBe(1);
        const sessions = events.filter((e) => e.type === 'auth');
        expect(sessions.length, id).toBeGreaterThanOrEqual(7);
        expect(sessions.length, id).toBeLessThanOrEqual(12);
        expect(events.filter((e) => e.type === 'capability_change')).toHaveLength(sessions.length);
        expect(events.some((e) => e.type === 'key_rotation'), id).toBe(false);
      }
    });
  });

  describe('through the default policies', () => {
    // The whole day judged by the real engine (see judge).
    let fired = new Map<string, Map<string, Verdict[]>>();
    beforeAll(async () => {
      fired = await judge(wholeDay);
    }, 120_000);
    const expected = Object.fromEntries(DEMO_ATTACK_AGENTS.map((a) => [a.id, [a.policyId]]));

    it('each attack agent trips exactly its own policy, again and again; no normal agent trips any', () => {
      expect([...fired.keys()].sort()).toEqual([...ATTACK_IDS].sort());
      for (const attack of DEMO_ATTACK_AGENTS) {
        const byPolicy = fired.get(attack.id);
        expect([...(byPolicy?.keys() ?? [])], attack.id).toEqual([attack.policyId]);
        const verdicts = byPolicy?.get(attack.policyId) ?? [];
        expect(verdicts.every((v) => v.policy_type === attack.policyType)).toBe(true);
        // Repeatedly within the 45 simulated minutes test/e2e/demo.test.ts runs: an alert whose count rises.
        expect(verdicts.filter((v) => v.time <= START + 45 * MINUTE).length, attack.id).toBeGreaterThanOrEqual(2);
      }
      expect(trippedPolicies(fired)).toEqual(expected);
    });

    // Other seeds draw other fleets (products, repositories, paces) and other
    // attack timings: the rule holds for them too, on another weekday.
    // A whole day of every policy takes ~15 s on a quiet 2-core machine: room for a busy one.
    it.each([2, 3])('holds for seed %i as well, over a whole day', { timeout: 120_000 }, async (seed) => {
      const start = demoStartTime(Date.UTC(2026, 2, 3 + seed, 12), ZONE);
      const day = new DemoTelemetry({ seed, start, timezone: ZONE }).eventsUntil(start + 10 * HOUR);
      expect(trippedPolicies(await judge(day))).toEqual(expected);
    });

    it('decides what each policy type decides: escalations, throttles and blocks', () => {
      const outcome = (agent: string): string[] => {
        const [policy] = [...(fired.get(agent)?.keys() ?? [])];
        return [...new Set((fired.get(agent)?.get(policy ?? '') ?? []).map((v) => `${v.severity}/${v.would_decide}`))].sort();
      };
      expect(outcome('agent-drift-55')).toEqual(['critical/require_approval']);
      expect(outcome('agent-rekey-58')).toEqual(['high/require_approval']);
      expect(outcome('agent-loop-42')).toEqual(['medium/throttle']);
      expect(outcome('agent-tunnel-66')).toEqual(['high/deny']);
      expect(outcome('agent-toolkit-71')).toEqual(['high/deny']);
      expect(outcome('agent-rugpull-62')).toEqual(['high/allow']);
      expect(outcome('agent-newmcp-77')).toEqual(['medium/allow']);
      expect(outcome('agent-wakeup-34')).toEqual(['low/allow']);
      expect(outcome('agent-sweep-31')).toEqual(['medium/allow']);
      expect(outcome('agent-offsite-81')).toEqual(['high/require_approval']);
      // geo_access and access_rule deny whatever the action; a key in the content escalates to critical.
      expect(outcome('agent-beacon-84')).toEqual(['critical/deny']);
      expect(outcome('agent-wiper-87')).toEqual(['high/deny']);
      expect(outcome('agent-sideload-91')).toEqual(['high/deny']);
      // An open circuit denies whatever the policy's action (alert).
      expect(outcome('agent-flaky-94')).toEqual(['medium/deny']);
      expect(outcome('agent-leaky-97')).toEqual(['critical/deny']);
      // Ten new servers, one finding each; one per new kind of resource probed.
      expect(fired.get('agent-newmcp-77')?.get('new-mcp-server')).toHaveLength(10);
      expect(fired.get(WAKEUP)?.get('new-resource-type')).toHaveLength(14);
      // The loop is throttled by its burst allowance only, never by the per-minute quota.
      expect(new Set(fired.get('agent-loop-42')?.get('tool-call-quota')?.map((v) => v.evidence.exceeded))).toEqual(new Set(['burst']));
    });

    it('explains the access, reliability and data findings by their evidence', () => {
      const evidence = (agent: string, keys: readonly string[]): string[] => [
        ...new Set(
          [...(fired.get(agent)?.values() ?? [])].flat().map((v) => keys.map((k) => String(v.evidence[k])).join(' ')),
        ),
      ];
      // The off-site agent's source is outside the company networks; its address has no country.
      expect(evidence('agent-offsite-81', ['field', 'trigger'])).toEqual(['source.ip not_allowed']);
      // The beacon's office source passes source-networks; its destination is in North Korea.
      expect(evidence('agent-beacon-84', ['field', 'country', 'trigger'])).toEqual(['network.ip KP blocked']);
      expect(evidence('agent-wiper-87', ['rule', 'action'])).toEqual(['no-prod-deletes file_delete']);
      expect(evidence('agent-sideload-91', ['tool_uri', 'allowlisted'])).toEqual(['mcp://postgres-admin/run_sql@0.4.1 false']);
      expect(evidence('agent-leaky-97', ['kinds', 'api_key_types', 'fields'])).toEqual(['credit_card,api_key aws_access_key_id output']);
      // The circuit opens, stays open (every call denied), closes after 5 minutes and opens again.
      const circuit = fired.get('agent-flaky-94')?.get('tool-circuit') ?? [];
      expect(new Set(circuit.map((v) => v.evidence.target))).toEqual(new Set(['mcp://github']));
      const openings = circuit.filter((v) => v.evidence.state === 'opened');
      expect(openings.length).toBeGreaterThan(20);
      expect(openings.filter((v) => v.time <= START + 45 * MINUTE).length).toBeGreaterThanOrEqual(3);
      expect(openings.every((v) => v.evidence.calls === 20 && v.evidence.failures === 20)).toBe(true);
      expect(circuit.length - openings.length).toBeGreaterThan(10 * openings.length);
      // No secret reaches a finding: evidence names kinds and offsets only.
      const leaked = wholeDay.flatMap((e) => (e.agent.id === 'agent-leaky-97' && e.content?.output !== undefined ? [e.content.output] : []));
      const secrets = leaked.flatMap((text) => [...text.matchAll(/AKIA[A-Z2-7]{16}|\d{4} \d{4,6} \d{4,5}(?: \d{4})?/g)].map((m) => m[0]));
      expect(secrets.length).toBeGreaterThan(100);
      const findings = JSON.stringify([...(fired.get('agent-leaky-97')?.values() ?? [])].flat().map((v) => [v.reason, v.evidence]));
      for (const secret of new Set(secrets)) expect(findings).not.toContain(secret);
    });
  });

  describe('attacks', () => {
    const agents = byAgent(twoHours);

    it('bursts: ≥ 200 api_calls in some 5-minute window, repeated every 10 minutes', () => {
      const burst = agents.get('agent-burst-01') ?? [];
      expect(burst.every((e) => e.agent.name === 'claude-code')).toBe(true);
      const calls = ratedTimes(burst, 'api_call');
      expect(maxInSlidingWindow(calls, 5 * MINUTE)).toBeGreaterThanOrEqual(200);
      const openai = burst.filter((e) => e.network?.domain === 'api.openai.com').map(timeOf);
      expect(openai.filter((t) => t > START + MINUTE && t <= START + 2 * MINUTE)).toHaveLength(250);
      // Bursts at +1, +11, …, +111 minutes: 12 in two hours.
      expect(openai.length).toBeGreaterThanOrEqual(12 * 250);
      // Between bursts it behaves like any other agent.
      expect(burst.some((e) => e.type === 'resource_access')).toBe(true);
    });

    it('night owl: secrets read at 03:xx local, drip-fed about once a simulated minute', () => {
      const owl = agents.get(NIGHT_OWL) ?? [];
      expect(owl.length).toBeGreaterThanOrEqual(110);
      expect(owl.length).toBeLessThanOrEqual(121);
      const times = owl.map(timeOf);
      expect(times).toEqual([...times].sort((a, b) => a - b));
      for (const e of owl) {
        const t = local(timeOf(e));
        expect(t.hasSame(local(START), 'day')).toBe(true);
        expect(t.hour).toBe(3);
        expect(t.minute).toBeLessThan(30);
        expect(e.type).toBe('resource_access');
        expect(e.agent.name).toBe('cursor');
      }
      expect(owl.map((e) => e.resource)).toContain('/srv/app/.env');
      expect(owl.map((e) => e.resource)).toContain('~/.ssh/id_rsa');
      // Its half hour of night lasts the first four simulated hours, then it stops.
      const all = byAgent(wholeDay).get(NIGHT_OWL) ?? [];
      expect(all.length).toBeGreaterThan(230);
      expect(all.length).toBeLessThanOrEqual(241);
    });

    it('shadow agent: an unapproved product calling api.openai.com every ~30 s', () => {
      const shadow = agents.get('agent-shadow-13') ?? [];
      expect(shadow.every((e) => e.agent.name === 'shadow-gpt' && e.network?.domain === 'api.openai.com')).toBe(true);
      expect(shadow.length).toBeGreaterThanOrEqual(200);
      expect(shadow.length).toBeLessThanOrEqual(290);
    });

    it('exfiltration: POSTs to paste.exfil-drop.net about every 2 minutes', () => {
      const exfil = (agents.get('agent-exfil-21') ?? []).filter((e) => e.network?.domain === 'paste.exfil-drop.net');
      expect(exfil.length).toBeGreaterThanOrEqual(50);
      expect(exfil.length).toBeLessThanOrEqual(72);
      for (const e of exfil) {
        expect(e.type).toBe('network_egress');
        expect(e.network?.method).toBe('POST');
        expect(e.resource).toBe('/upload');
        expect(e.agent.name).toBe('copilot');
      }
    });

    it('sweep: 100 distinct shared-drive files within 5 minutes, a new folder every hour', () => {
      const reads = (agents.get('agent-sweep-31') ?? []).filter((e) => e.resource?.startsWith('/mnt/corp-share/'));
      expect(reads.every((e) => e.type === 'resource_access')).toBe(true);
      expect(new Set(reads.map((e) => e.resource)).size).toBe(200);
      const first = reads.slice(0, 100).map(timeOf);
      expect(Math.max(...first) - Math.min(...first)).toBeLessThan(5 * MINUTE);
      expect(Math.min(...first)).toBeGreaterThanOrEqual(START + 3 * MINUTE);
    });

    it('dormant agent: enrolled over 24 h before, then a new kind of resource every 20–24 minutes and nothing else', () => {
      const events = agents.get(WAKEUP) ?? [];
      const enrolment = events.filter((e) => timeOf(e) < START);
      expect(enrolment.length).toBeGreaterThan(4);
      // Emitted first, stamped 08:xx on the business day before (Tuesday, for a Wednesday start).
      expect(events.slice(0, enrolment.length)).toEqual(enrolment);
      for (const e of enrolment) expect(local(timeOf(e)).toFormat('ccc HH')).toBe('Tue 08');
      const probes = events.filter((e) => e.type === 'resource_access' && timeOf(e) >= START);
      expect(timeOf(probes[0]!) - Math.max(...enrolment.map(timeOf))).toBeGreaterThan(24 * HOUR);
      const learned = new Set(enrolment.map((e) => resourceType(e.resource ?? '')));
      const kinds = probes.map((e) => resourceType(e.resource ?? ''));
      expect(new Set(kinds).size).toBe(probes.length);
      for (const kind of kinds) expect(learned.has(kind), kind).toBe(false);
      for (let i = 1; i < probes.length; i++) expect(timeOf(probes[i]!) - timeOf(probes[i - 1]!)).toBeGreaterThanOrEqual(20 * MINUTE);
      // Nothing else it does carries a resource that resource policies count.
      expect(events.filter((e) => e.type === 'tool_call')).toEqual([]);
    });

    it('loop: 45 runs of a failing test command within 5 s every 5 minutes, under the per-minute quota and the rate-spike threshold', () => {
      const events = agents.get('agent-loop-42') ?? [];
      const loop = events.filter((e) => e.type === 'tool_call' && e.tool?.name === 'run_command' && e.attributes?.attempt !== undefined);
      // The command's tests fail, the tool call does not: nothing for tool-circuit to count as a failure.
      expect(loop.every((e) => e.outcome === 'success' && e.attributes?.exit_code === 1)).toBe(true);
      expect(loop.length).toBe(Math.floor(loop.length / 45) * 45);
      expect(loop.length).toBeGreaterThanOrEqual(22 * 45);
      const firstLoop = loop.slice(0, 45).map(timeOf);
      expect(Math.max(...firstLoop) - Math.min(...firstLoop)).toBeLessThan(4_500);
      expect(maxInSlidingWindow(ratedTimes(events, 'tool_call'), MINUTE)).toBeLessThanOrEqual(60);
      expect(maxInSlidingWindow(ratedTimes(events), 5 * MINUTE)).toBeLessThanOrEqual(100);
    });

    it('drift and rekey: a dangerous capability, a new key, each reported again every few minutes', () => {
      const drift = agents.get('agent-drift-55') ?? [];
      const sets = drift.filter((e) => e.type === 'capability_change').map((e) => e.capabilities ?? []);
      expect(sets[0]).not.toContain('shell_execute');
      expect(sets.filter((c) => c.includes('shell_execute')).length).toBeGreaterThan(20);
      const rekey = agents.get('agent-rekey-58') ?? [];
      const rotation = rekey.filter((e) => e.type === 'key_rotation');
      expect(rotation).toHaveLength(1);
      const signed = rekey.filter((e) => e.type === 'auth').map((e) => e.key?.fingerprint);
      expect(new Set(signed).size).toBe(2);
      expect(signed.filter((f) => f === rotation[0]!.key?.fingerprint).length).toBeGreaterThan(20);
    });

    it('MCP: a trust fall, a tunnelled host, a destructive tool, new servers', () => {
      const mcp = (id: string): NonNullable<AgentEventInput['mcp']>[] => (agents.get(id) ?? []).flatMap((e) => (e.mcp === undefined ? [] : [e.mcp]));
      const fetch = mcp('agent-rugpull-62').filter((m) => m.server_id === 'fetch').map((m) => m.trust_score ?? -1);
      expect(fetch[0]).toBeGreaterThanOrEqual(88);
      expect(fetch.at(-1)).toBeLessThanOrEqual(53);
      expect(Math.min(...fetch)).toBeGreaterThanOrEqual(47);
      expect(mcp('agent-tunnel-66').filter((m) => m.url?.includes('.ngrok-free.app/')).length).toBeGreaterThan(20);
      expect(mcp('agent-toolkit-71').filter((m) => m.tools?.includes('delete_repository')).length).toBeGreaterThan(20);
      const known = new Set(['filesystem', 'git', 'github', 'terminal', 'fetch', 'memory', 'time']);
      const fresh = new Set(mcp('agent-newmcp-77').map((m) => m.server_id).filter((id) => !known.has(id)));
      expect(fresh.size).toBe(10);
    });

    it('access: a public source address, a sanctioned destination, production deletes, an unlisted tool', () => {
      const offsite = agents.get(OFFSITE) ?? [];
      expect(offsite.length).toBeGreaterThanOrEqual(90);
      expect(new Set(offsite.map((e) => e.source?.ip)).size).toBe(1);
      expect(offsite.every((e) => e.type === 'api_call' && /^203\.0\.113\./.test(e.source?.ip ?? ''))).toBe(true);

      const beacon = agents.get('agent-beacon-84') ?? [];
      const connects = beacon.filter((e) => e.network?.ip !== undefined);
      expect(connects.length).toBeGreaterThanOrEqual(30);
      expect(new Set(connects.map((e) => e.network?.ip)).size).toBe(1);
      for (const e of connects) {
        expect(e.network?.ip).toMatch(/^175\.45\.17[6-9]\.\d{1,3}$/);
        expect(e.type).toBe('network_egress');
      }
      expect(beacon.every((e) => /^10\./.test(e.source?.ip ?? ''))).toBe(true);
      expect(Math.min(...connects.map(timeOf))).toBeLessThan(START + 15 * MINUTE);

      const deletes = (agents.get('agent-wiper-87') ?? []).filter((e) => e.action === 'file_delete');
      expect(deletes.length).toBeGreaterThanOrEqual(24);
      expect(deletes.every((e) => e.type === 'resource_access' && /^\/(srv\/)?prod\//.test(e.resource ?? ''))).toBe(true);
      expect(new Set(deletes.map((e) => e.resource)).size).toBe(deletes.length);
      // At most 20 an hour: with its ordinary files, far below resource-sweep's 50 distinct resources.
      expect(maxInSlidingWindow(deletes.map(timeOf), HOUR)).toBeLessThanOrEqual(20);

      const sideload = (agents.get('agent-sideload-91') ?? []).filter((e) => e.tool?.server === 'postgres-admin');
      expect(sideload.length).toBeGreaterThanOrEqual(30);
      expect(sideload.every((e) => e.type === 'tool_call' && e.tool?.name === 'run_sql')).toBe(true);
      // Only tool calls: it never connects, so no MCP policy sees a new server.
      expect((agents.get('agent-sideload-91') ?? []).some((e) => e.mcp?.server_id === 'postgres-admin')).toBe(false);
    });

    it('reliability and data: a tool that always fails, configuration leaking a key and a card', () => {
      const flaky = agents.get('agent-flaky-94') ?? [];
      const calls = flaky.filter((e) => e.type === 'tool_call');
      expect(calls.every((e) => e.outcome === 'failure' && e.tool?.server === 'github' && e.tool.name === 'create_pull_request')).toBe(true);
      expect(calls.length).toBeGreaterThanOrEqual(550);
      // 20 calls (the circuit's minimum) within 5 minutes from the start; never near 30 a minute.
      expect(calls.filter((e) => timeOf(e) <= START + 5 * MINUTE).length).toBeGreaterThanOrEqual(20);
      expect(maxInSlidingWindow(ratedTimes(flaky), 5 * MINUTE)).toBeLessThan(60);

      const reads = (agents.get('agent-leaky-97') ?? []).filter((e) => e.content !== undefined);
      expect(reads.length).toBeGreaterThanOrEqual(24);
      for (const e of reads) {
        expect(e.type).toBe('tool_call');
        expect(e.tool?.server).toBe('filesystem');
        expect(e.content?.output).toMatch(/AKIA[A-Z2-7]{16}/);
        expect(e.content?.output).toMatch(/"\d{4} \d{4,6} \d{4,5}( \d{4})?"/);
      }
      // Nobody else sends content.
      expect(twoHours.filter((e) => e.content !== undefined && e.agent.id !== 'agent-leaky-97')).toEqual([]);
    });

    it('session reports are left out with sessions: false, but for the drift and rekey attacks', () => {
      const events = new DemoTelemetry({ start: START, timezone: ZONE, sessions: false }).eventsUntil(START + HOUR);
      const reporters = new Set(events.filter((e) => e.type === 'auth' || e.type === 'capability_change').map((e) => e.agent.id));
      expect(reporters).toEqual(new Set(['agent-drift-55', 'agent-rekey-58']));
    });

    it('are left out with attacks: false', () => {
      const quiet = new DemoTelemetry({ start: START, timezone: ZONE, attacks: false }).eventsUntil(START + HOUR);
      expect(quiet.length).toBeGreaterThan(0);
      expect(quiet.some((e) => ATTACK_IDS.has(e.agent.id))).toBe(false);
    });
  });

  it('outside a workday leaves only the night owl', () => {
    const saturday = DateTime.fromISO('2026-03-07T10:00', { zone: ZONE }).toMillis();
    const events = new DemoTelemetry({ start: saturday, timezone: ZONE }).eventsUntil(saturday + HOUR);
    expect(events.length).toBeGreaterThan(0);
    expect(new Set(events.map((e) => e.agent.id))).toEqual(new Set([NIGHT_OWL]));
  });

  it('starts normal work at 09:00 when the simulation starts earlier', () => {
    const early = DateTime.fromISO('2026-03-04T08:00', { zone: ZONE }).toMillis();
    const events = new DemoTelemetry({ start: early, timezone: ZONE }).eventsUntil(early + 2 * HOUR);
    const workers = events.filter((e) => !backdated(e, early)).map(timeOf);
    expect(Math.min(...workers)).toBeGreaterThan(early + HOUR);
    // The night owl's night is the same morning's, already over by 08:00.
    const owl = events.filter((e) => e.agent.id === NIGHT_OWL).map((e) => local(timeOf(e)));
    expect(owl.every((t) => t.toISODate() === '2026-03-04' && t.hour === 3)).toBe(true);
  });

  it('rejects bad options, naming the key', () => {
    expect(() => new DemoTelemetry({ start: START, timezone: 'Mars/Olympus' })).toThrow(/timezone/);
    expect(() => new DemoTelemetry({ start: START, timezone: ZONE, agents: -1 })).toThrow(/agents/);
    expect(() => new DemoTelemetry({ start: Number.NaN, timezone: ZONE })).toThrow(/start/);
    expect(() => new DemoTelemetry({ start: START, timezone: ZONE, seed: 1.5 })).toThrow(/seed/);
  });
});

describe('demoStartTime', () => {
  const at = (iso: string): number => DateTime.fromISO(iso, { zone: ZONE }).toMillis();
  const startOf = (iso: string): string | null => local(demoStartTime(at(iso), ZONE)).toISO();

  it('is 09:30 local today on a weekday, even before 09:30', () => {
    expect(startOf('2026-03-04T14:12')).toBe('2026-03-04T09:30:00.000+01:00');
    expect(startOf('2026-03-02T06:05')).toBe('2026-03-02T09:30:00.000+01:00');
  });

  it('falls back over a weekend to Friday', () => {
    expect(startOf('2026-03-07T12:00')).toBe('2026-03-06T09:30:00.000+01:00');
    expect(startOf('2026-03-08T23:59')).toBe('2026-03-06T09:30:00.000+01:00');
    // Saturday 00:30 in Berlin is still Friday in UTC: the local date decides.
    expect(local(demoStartTime(Date.parse('2026-03-06T23:30:00Z'), ZONE)).toISO()).toBe('2026-03-06T09:30:00.000+01:00');
  });

  it('keeps 09:30 local across the DST changes', () => {
    // Clocks go forward on Sunday 2026-03-29 and back on Sunday 2026-10-25.
    expect(startOf('2026-03-29T12:00')).toBe('2026-03-27T09:30:00.000+01:00');
    expect(startOf('2026-03-30T12:00')).toBe('2026-03-30T09:30:00.000+02:00');
    expect(demoStartTime(at('2026-03-30T12:00'), ZONE)).toBe(Date.parse('2026-03-30T07:30:00Z'));
    expect(startOf('2026-10-25T12:00')).toBe('2026-10-23T09:30:00.000+02:00');
    expect(startOf('2026-10-26T08:00')).toBe('2026-10-26T09:30:00.000+01:00');
  });

  it('skips the year-end holidays', () => {
    expect(startOf('2026-12-25T12:00')).toBe('2026-12-23T09:30:00.000+01:00');
    expect(startOf('2026-12-27T12:00')).toBe('2026-12-23T09:30:00.000+01:00');
    expect(startOf('2027-01-01T12:00')).toBe('2026-12-30T09:30:00.000+01:00');
    expect(startOf('2026-12-28T12:00')).toBe('2026-12-28T09:30:00.000+01:00');
  });

  it('works in other zones and rejects unknown ones', () => {
    const tokyo = DateTime.fromMillis(demoStartTime(Date.parse('2026-03-07T01:00:00Z'), 'Asia/Tokyo'), { zone: 'Asia/Tokyo' });
    expect(tokyo.toISO()).toBe('2026-03-06T09:30:00.000+09:00');
    expect(() => demoStartTime(Date.now(), 'Not/AZone')).toThrow(/timezone/);
  });
});
