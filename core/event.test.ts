import { describe, expect, it } from 'vitest';
import { validateEvent } from './event.js';

const valid = {
  event_id: '01J9Z',
  time: '2026-11-24T10:00:00Z',
  agent: { id: 'a-1', name: 'cursor' },
  type: 'tool_call',
};

describe('AgentEvent v1 schema', () => {
  it('accepts a minimal event and normalises time and tenant', () => {
    const r = validateEvent(valid);
    expect(r.ok).toBe(true);
    if (r.ok) {
      expect(r.event.time).toBe(Date.UTC(2026, 10, 24, 10));
      expect(r.event.tenant).toBe('default');
    }
  });

  it('accepts epoch milliseconds and offsets', () => {
    const a = validateEvent({ ...valid, time: 1_764_000_000_000 });
    const b = validateEvent({ ...valid, time: '2026-11-24T11:00:00+01:00' });
    expect(a.ok && a.event.time).toBe(1_764_000_000_000);
    expect(b.ok && b.event.time).toBe(Date.UTC(2026, 10, 24, 10));
  });

  it('accepts 256 attributes and refuses more, without checking each entry of a huge object', () => {
    const attributes = (n: number, value: unknown = 'v') => Object.fromEntries(Array.from({ length: n }, (_, i) => [`k${i}`, value]));
    expect(validateEvent({ ...valid, attributes: attributes(256) }).ok).toBe(true);
    expect(validateEvent({ ...valid, attributes: attributes(257) })).toEqual({ ok: false, reason: 'attributes: at most 256 attributes', problems: [{ path: 'attributes', message: 'at most 256 attributes' }] });
    // 200,000 wrong-typed entries: one problem, the count, not 200,000 (which took 2 s).
    const huge = validateEvent({ ...valid, attributes: attributes(200_000, {}) });
    expect(huge.ok ? [] : huge.problems).toEqual([{ path: 'attributes', message: 'at most 256 attributes' }]);
  });

  it('ignores unknown top-level fields', () => {
    const r = validateEvent({ ...valid, surprise: { deep: true } });
    expect(r.ok).toBe(true);
    expect(r.ok && 'surprise' in r.event).toBe(false);
  });

  it.each([
    ['missing agent.id', { ...valid, agent: { name: 'x' } }, 'agent.id'],
    ['missing event_id', { ...valid, event_id: undefined }, 'event_id'],
    ['empty event_id', { ...valid, event_id: '' }, 'event_id'],
    ['long event_id', { ...valid, event_id: 'x'.repeat(129) }, 'event_id'],
    ['unknown type', { ...valid, type: 'teleport' }, 'type'],
    ['bad time string', { ...valid, time: 'yesterday' }, 'time'],
    ['time without zone', { ...valid, time: '2026-11-24T10:00:00' }, 'time'],
    ['negative time', { ...valid, time: -5 }, 'time'],
    ['fractional epoch', { ...valid, time: 1.5 }, 'time'],
    ['agent wrong type', { ...valid, agent: 'a-1' }, 'agent'],
    ['negative duration', { ...valid, duration_ms: -1 }, 'duration_ms'],
    ['bad outcome', { ...valid, outcome: 'meh' }, 'outcome'],
    ['trust score over 100', { ...valid, mcp: { server_id: 's', trust_score: 101 } }, 'mcp.trust_score'],
    ['capabilities not strings', { ...valid, capabilities: [1, 2] }, 'capabilities[0]'],
    ['attribute object value', { ...valid, attributes: { a: { b: 1 } } }, 'attributes.a'],
    ['port out of range', { ...valid, network: { port: 70000 } }, 'network.port'],
  ])('rejects %s with the path in the reason', (_name, input, path) => {
    const r = validateEvent(input);
    expect(r.ok).toBe(false);
    if (!r.ok) {
      expect(r.problems.map((p) => p.path)).toContain(path);
      expect(r.reason).toContain(path);
    }
  });

  it.each([null, 42, 'text', [valid]])('rejects a non-object %j', (input) => {
    const r = validateEvent(input);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.reason).toBe('(root): event must be a JSON object');
  });
});
