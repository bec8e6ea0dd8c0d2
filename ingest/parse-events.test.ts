import { describe, expect, it } from 'vitest';
import { DEAD_LETTER_RAW_LIMIT, parseEventsBody, parseEventsBodyYielding } from './parse-events.js';

const ev = (id: string, extra: Record<string, unknown> = {}) =>
  JSON.stringify({ event_id: id, time: '2026-11-24T10:00:00Z', agent: { id: 'a' }, type: 'api_call', ...extra });
const opts = { maxEventBytes: 1024 };

describe('parseEventsBody', () => {
  it('reads a JSON array', () => {
    const r = parseEventsBody(`[${ev('1')},${ev('2')}]`, opts);
    expect(r.events.map((e) => e.event.event_id)).toEqual(['1', '2']);
    expect(r.rejected).toEqual([]);
  });

  it('reads NDJSON with blank lines and CRLF', () => {
    const r = parseEventsBody(`${ev('1')}\r\n\n${ev('2')}\n`, opts);
    expect(r.events.map((e) => [e.index, e.event.event_id])).toEqual([
      [0, '1'],
      [1, '2'],
    ]);
  });

  it('reads a single object as one-line NDJSON', () => {
    expect(parseEventsBody(ev('solo'), opts).events).toHaveLength(1);
  });

  it('rejects bad lines with reasons and keeps the good ones', () => {
    const r = parseEventsBody([ev('ok'), '{not json', ev('x', { type: 'teleport' }), ev('y', { agent: {} })].join('\n'), opts);
    expect(r.events.map((e) => e.event.event_id)).toEqual(['ok']);
    expect(r.rejected.map((x) => [x.index, x.event_id ?? null])).toEqual([
      [1, null],
      [2, 'x'],
      [3, 'y'],
    ]);
    expect(r.rejected[0]!.reason).toMatch(/^not valid JSON/);
    expect(r.rejected[1]!.reason).toMatch(/^type: /);
    expect(r.rejected[2]!.reason).toMatch(/^agent\.id: /);
    expect(r.rejected[0]!.raw).toBe('{not json');
  });

  it('rejects __proto__ and constructor.prototype keys', () => {
    const proto = '{"event_id":"p","time":0,"agent":{"id":"a"},"type":"auth","attributes":{"__proto__":{"admin":true}}}';
    const ctor = '{"event_id":"c","time":0,"agent":{"id":"a"},"type":"auth","constructor":{"prototype":{"x":1}}}';
    const r = parseEventsBody(`${proto}\n${ctor}`, opts);
    expect(r.events).toHaveLength(0);
    expect(r.rejected.map((x) => x.reason)).toEqual([expect.stringMatching(/^forbidden key/), expect.stringMatching(/^forbidden key/)]);
    expect(({} as Record<string, unknown>).admin).toBeUndefined();
  });

  it('rejects oversize events in both forms', () => {
    const big = ev('big', { resource: 'x'.repeat(2000) });
    const nd = parseEventsBody(`${ev('1')}\n${big}`, opts);
    expect(nd.rejected[0]!.reason).toMatch(/^event is \d+ bytes; the limit is 1024$/);
    expect(nd.events).toHaveLength(1);
    const arr = parseEventsBody(`[${ev('1')},${big}]`, opts);
    expect(arr.rejected.map((x) => x.index)).toEqual([1]);
    expect(arr.rejected[0]!.raw.length).toBeLessThanOrEqual(4096);
  });

  it('refuses a body of more items than maxItems as a whole, in both forms', () => {
    const capped = { ...opts, maxItems: 3 };
    for (const [fits, over] of [
      ['[1,2,3]', '[1,2,3,4]'],
      ['1\n2\n\n3\n', '1\n2\n\n3\n4'],
    ] as const) {
      expect(parseEventsBody(fits, capped).rejected).toHaveLength(3);
      const r = parseEventsBody(over, capped);
      expect(r).toMatchObject({ events: [], rejected: [], fatalCode: 'AW_INGEST_TOO_MANY_ITEMS', fatal: expect.stringMatching(/at most 3: split it$/) });
    }
  });

  it('rejects an array item too deep for JSON.stringify instead of throwing', () => {
    const deep = `${'['.repeat(10_000)}${']'.repeat(10_000)}`;
    const r = parseEventsBody(`[${ev('1')},${deep}]`, opts);
    expect(r.events).toHaveLength(1);
    expect(r.rejected).toMatchObject([{ index: 1 }]);
  });

  it('keeps rejections storable: no half surrogate pair in a reason, a raw text or an event id', () => {
    const emoji = '\u{1F600}';
    const cut = parseEventsBody(`x${emoji.repeat(DEAD_LETTER_RAW_LIMIT)}`, opts);
    const quoted = parseEventsBody(emoji, opts);
    const lone = parseEventsBody('{"event_id":"a\\ud800","time":0,"agent":{"id":"a"},"type":"auth"}', opts);
    for (const r of [...cut.rejected, ...quoted.rejected, ...lone.rejected]) expect(/\p{Cs}/u.test(r.reason + r.raw + (r.event_id ?? ''))).toBe(false);
    expect(lone.rejected[0]).toMatchObject({ event_id: 'a\uFFFD', reason: expect.stringMatching(/^event_id: holds an unpaired UTF-16 surrogate/) });
  });

  it('counts the bytes of a rejected array item, and names a syntax error quoting "constructor" as such', () => {
    expect(parseEventsBody('["abc"]', opts).rejected[0]).toMatchObject({ raw: '"abc"', rawBytes: 5 });
    expect(parseEventsBody('{"constructor": oops}', opts).rejected[0]!.reason).toMatch(/^not valid JSON/);
  });

  it('reports unreadable bodies as fatal', () => {
    expect(parseEventsBody('', opts).fatal).toMatch(/empty body/);
    expect(parseEventsBody('  \n ', opts).fatal).toMatch(/empty body/);
    expect(parseEventsBody('[1, 2', opts).fatal).toMatch(/^not valid JSON/);
    const r = parseEventsBody('[1, "x", null]', opts);
    expect(r.rejected.map((x) => x.reason)).toEqual(Array(3).fill('(root): event must be a JSON object'));
  });
});

describe('parseEventsBodyYielding', () => {
  /** 2,000 items of 100 wrong-typed capabilities each: 200,000 validation problems, tenths of a second of work. */
  const slow = (ndjson: boolean) => {
    const items = Array.from({ length: 2_000 }, (_, i) => ev(`s${i}`, { capabilities: Array.from({ length: 100 }, () => 1) }));
    return ndjson ? items.join('\n') : `[${items.join(',')}]`;
  };

  it.each([false, true])('hands the event loop back while judging a slow body (NDJSON: %s), with the result of the synchronous parse', async (ndjson) => {
    const body = slow(ndjson);
    const options = { maxEventBytes: 65_536 };
    let ticks = 0;
    let ticking = true;
    const tick = (): void => {
      ticks++;
      if (ticking) setImmediate(tick);
    };
    setImmediate(tick);
    const result = await parseEventsBodyYielding(body, options, 5);
    ticking = false;
    expect(ticks).toBeGreaterThanOrEqual(10);
    expect(result.rejected).toHaveLength(2_000);
    expect(result).toEqual(parseEventsBody(body, options));
  });

  it('returns a refusal of the whole body as the synchronous parse does', async () => {
    await expect(parseEventsBodyYielding('   ', opts)).resolves.toEqual(parseEventsBody('   ', opts));
    const many = `[${Array.from({ length: 3 }, (_, i) => ev(String(i))).join(',')}]`;
    await expect(parseEventsBodyYielding(many, { ...opts, maxItems: 2 })).resolves.toMatchObject({ fatalCode: 'AW_INGEST_TOO_MANY_ITEMS' });
  });
});
