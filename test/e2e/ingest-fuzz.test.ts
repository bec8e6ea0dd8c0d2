import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EmbeddedPipeline } from '../../cli/pipeline.js';
import { EventTypes } from '../../core/event.js';
import { DEFAULT_MAX_ITEMS_PER_REQUEST, parseEventsBody } from '../../ingest/parse-events.js';
import { liveHeap } from '../support/memory.js';
import { ADMIN, startTestPipeline, testConfig } from '../support/pipeline.js';

/**
 * Property-based fuzzing of `POST /v1/events` through the embedded pipeline:
 * random payloads (bytes, invalid UTF-8, cut bodies, hostile JSON, random
 * content types) must each get a JSON answer of an expected status, never a
 * 500; every accepted event is stored once, every rejection is one dead-letter
 * row with its reason; the heap stays bounded and the process keeps serving.
 */

const MAX_EVENT_BYTES = 16 * 1024;
const BODY_LIMIT = 1024 * 1024;
const config = testConfig({ ingest: { max_event_bytes: MAX_EVENT_BYTES, body_limit: BODY_LIMIT } });
const NOW = Date.now();
const DAY = 86_400_000;

const hash = (text: string) => createHash('sha256').update(text).digest().readUInt32BE(0);

/**
 * The event a producer sends under `id`, the same every time: a repeat is a
 * retry. Times reach 300 days back (inside the 400-day retention of events).
 */
function eventFor(id: string): Record<string, unknown> {
  const h = hash(id);
  return {
    event_id: id,
    time: h % 2 === 0 ? NOW - (h % 300) * DAY - (h % 997) : new Date(NOW - (h % 300) * DAY).toISOString(),
    ...(h % 3 === 0 ? {} : { tenant: `t${h % 3}` }),
    agent: { id: `agent-${h % 20}`, name: 'cursor' },
    type: EventTypes[h % EventTypes.length],
    resource: h % 5 === 0 ? `/home/\u{1F600}/${id}` : `/srv/${id}`,
    attributes: { constructor: 'harmless', prototype: 1, n: h % 100 },
  };
}

/** One item of a generated body: its JSON text and what ingest must answer for it. */
interface Item {
  text: string;
  expect: 'accept' | RegExp;
  /** Refuses a JSON-array body as a whole. */
  poisonsArray?: true;
}

const retryId = fc.integer({ min: 0, max: 499 }).map((i) => `ev-${i}`);
const jsonWithoutPrototypeKeys = fc.jsonValue({ maxDepth: 3 }).filter((v) => !/__proto__|constructor|prototype/.test(JSON.stringify(v)));

const item: fc.Arbitrary<Item> = fc.oneof(
  { weight: 8, arbitrary: retryId.map((id) => ({ text: JSON.stringify(eventFor(id)), expect: 'accept' as const })) },
  {
    weight: 2,
    arbitrary: fc
      .tuple(retryId, fc.constantFrom('event_id', 'time', 'agent', 'type', 'tenant', 'duration_ms', 'attributes', 'capabilities', 'content'), fc.constantFrom(null, true, 7.5, [], { x: 1 }))
      // Values that are right for the field are left out: an object for attributes/content, a number for duration_ms, a list for capabilities.
      .filter(([, field, value]) => !(['attributes', 'content'].includes(field) && typeof value === 'object' && value !== null && !Array.isArray(value)))
      .filter(([, field, value]) => !(field === 'duration_ms' && value === 7.5) && !(field === 'capabilities' && Array.isArray(value)))
      .map(([id, field, value]) => ({ text: JSON.stringify({ ...eventFor(id), [field]: value }), expect: new RegExp(`(^|; |: )${field}(\\.[^:]+)?: `) })),
  },
  {
    weight: 2,
    arbitrary: fc.tuple(retryId, fc.integer({ min: 16 * 60_000, max: 1000 * 365 * DAY }), fc.boolean()).map(([id, ahead, iso]) => ({
      text: JSON.stringify({ ...eventFor(`future-${id}`), time: iso && NOW + ahead <= 253_402_300_799_999 ? new Date(NOW + ahead).toISOString() : NOW + ahead }),
      expect: /^time: /,
    })),
  },
  { weight: 1, arbitrary: fc.constantFrom(-1, '1969-12-31T23:59:59Z', '0000-01-01T00:00:00Z', 'NaN', 1.5).map((time) => ({ text: JSON.stringify({ ...eventFor('ancient'), time }), expect: /^time: / })) },
  {
    weight: 1,
    arbitrary: fc.constantFrom('event_id', 'resource').map((field) => ({
      text: JSON.stringify({ ...eventFor('lone'), [field]: 'x\ud800y' }),
      expect: new RegExp(`event .*: ${field}: holds an unpaired UTF-16 surrogate|^${field}: holds an unpaired`),
    })),
  },
  {
    weight: 1,
    arbitrary: fc.constantFrom('"__proto__"', '"\\u005f_proto__"', '"constructor":{"prototype":{"polluted":1}},"x"').map((key) => ({
      text: JSON.stringify(eventFor('proto')).replace('"agent":{', `"agent":{${key}:{"polluted":1},`),
      expect: /^forbidden key/,
      poisonsArray: true as const,
    })),
  },
  { weight: 1, arbitrary: fc.integer({ min: 10, max: 20_000 }).map((depth) => ({ text: `${'['.repeat(depth)}${']'.repeat(depth)}`, expect: /./ })) },
  { weight: 1, arbitrary: fc.integer({ min: MAX_EVENT_BYTES, max: 64 * 1024 }).map((n) => ({ text: JSON.stringify({ ...eventFor('big'), resource: 'r'.repeat(n) }), expect: /^event is \d+ bytes; the limit is 16384$/ })) },
  { weight: 2, arbitrary: jsonWithoutPrototypeKeys.map((v) => ({ text: JSON.stringify(v), expect: /./ })) },
);

/** A body made of items, with the answer each must get when it is sent intact. */
const structured = fc.record({ items: fc.array(item, { minLength: 1, maxLength: 12 }), ndjson: fc.boolean(), crlf: fc.boolean(), blankLines: fc.boolean() }).map(({ items: drawn, ndjson, crlf, blankLines }) => {
  // A body starting with `[` is read as one JSON array: NDJSON starts with an object here.
  const items = ndjson && drawn[0]!.text.startsWith('[') ? [{ text: JSON.stringify(eventFor('ev-0')), expect: 'accept' as const }, ...drawn] : drawn;
  const text = ndjson ? items.map((i) => i.text).join(crlf ? '\r\n' : blankLines ? '\n\n' : '\n') + (blankLines ? '\n' : '') : `[${items.map((i) => i.text).join(',')}]`;
  return { kind: 'structured' as const, payload: Buffer.from(text), items, ndjson };
});

/** Corruption of a structured body: bytes overwritten (invalid UTF-8 included) or the body cut. */
const damaged = fc
  .tuple(fc.array(retryId, { minLength: 1, maxLength: 6 }), fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 8 }), fc.nat(), fc.boolean(), fc.uuid())
  .map(([ids, flips, cut, ndjson, serial]) => {
    // Unique ids, so a flipped agent id never poses as a retry of another event.
    const events = ids.map((id, i) => ({ ...eventFor(id), event_id: `dmg-${serial}-${i}-${id}` }));
    const payload = Buffer.from(ndjson ? events.map((e) => JSON.stringify(e)).join('\n') : JSON.stringify(events));
    for (const [at, byte] of flips) payload[at % payload.length] = byte;
    return { kind: 'damaged' as const, payload: cut % 3 === 0 ? payload.subarray(0, cut % payload.length) : payload };
  });

const special = fc.oneof(
  { weight: 2, arbitrary: fc.uint8Array({ maxLength: 2048 }).map((bytes) => ({ kind: 'bytes' as const, payload: Buffer.from(bytes) })) },
  fc.constantFrom('', ' \n\r\n ', '\ufeff').map((text) => ({ kind: 'empty' as const, payload: Buffer.from(text) })),
  // Over the item cap, within the body limit: refused as a whole with one dead letter.
  fc.constantFrom('array', 'ndjson').map((form) => ({
    kind: 'too-many' as const,
    payload: Buffer.from(form === 'array' ? `[${'1,'.repeat(DEFAULT_MAX_ITEMS_PER_REQUEST)}1]` : '{}\n'.repeat(DEFAULT_MAX_ITEMS_PER_REQUEST + 1)),
  })),
  fc.constant({ kind: 'too-large' as const, payload: Buffer.alloc(BODY_LIMIT + 1, 0x20) }),
  // Near the body limit: one event and one of up to 1 MiB, which is rejected as oversize.
  {
    weight: 5,
    arbitrary: fc.integer({ min: 512 * 1024, max: BODY_LIMIT - 512 }).map((n) => ({
      kind: 'large' as const,
      payload: Buffer.from(`${JSON.stringify({ ...eventFor('large'), event_id: 'large-ok' })}\n${JSON.stringify({ event_id: 'large-big', pad: 'p'.repeat(n - 300) })}`),
    })),
  },
);

/** A body as fast-check prints it on failure: kind, size and head, not a megabyte of byte values. */
function printable<T extends { kind: string; payload: Buffer }>(body: T): T {
  const head = body.payload.subarray(0, 300).toString('utf8');
  return Object.assign(body, { [fc.toStringMethod]: () => `${body.kind} body, ${body.payload.length} bytes, starting ${JSON.stringify(head)}` });
}

const READ_TYPES = ['application/json', 'application/x-ndjson', 'application/ndjson', 'application/jsonl', 'text/plain', 'application/json; charset=utf-8', 'application/json; charset=latin1', 'application/octet-stream', 'multipart/form-data; boundary=x', undefined];
const REFUSED_TYPES = ['', 'bogus', '(((;;;'];

const request = fc.record({
  body: fc.oneof({ weight: 13, arbitrary: structured }, { weight: 4, arbitrary: damaged }, { weight: 3, arbitrary: special }).map(printable),
  contentType: fc.oneof(
    { weight: 30, arbitrary: fc.constantFrom(...READ_TYPES).map((type) => ({ type, refused: false as boolean | null })) },
    { weight: 1, arbitrary: fc.constantFrom(...REFUSED_TYPES).map((type) => ({ type, refused: true as boolean | null })) },
    // Anything: whichever fastify makes of it, the answer is one of the expected statuses.
    { weight: 1, arbitrary: fc.string({ unit: 'binary-ascii', maxLength: 30 }).filter((t) => /^[\t\x20-\x7e]*$/.test(t)).map((type) => ({ type, refused: null })) },
  ),
});
type Request = typeof request extends fc.Arbitrary<infer R> ? R : never;

interface Answer {
  accepted: number;
  rejected: number;
  errors: boolean;
  results: { index: number; status: 'accepted' | 'rejected'; event_id?: string; reason?: string }[];
}

/** What the run expects in ClickHouse afterwards. */
const ledger = {
  /** `tenant \0 event_id` → time of every accepted event: the events table holds each exactly once. */
  accepted: new Map<string, number>(),
  /** Reason of every dead-letter row ingest must have written. */
  deadLetterReasons: [] as string[],
  statuses: new Map<number, number>(),
  requests: 0,
  /** Bytes of the bodies ingest read. */
  bytesRead: 0,
};

async function count(p: EmbeddedPipeline, query: string): Promise<{ [key: string]: string | number }[]> {
  const rs = await p.clickhouse.query({ query, format: 'JSONEachRow' });
  return rs.json();
}

describe('HTTP ingest under property-based fuzzing', () => {
  let p: EmbeddedPipeline;
  beforeAll(async () => {
    p = await startTestPipeline(config);
    await p.app.ready();
  });
  afterAll(async () => p?.stop());

  /** Sends one generated request and checks its answer; records what ClickHouse must then hold. */
  async function sendChecked({ body, contentType }: Request, unauthenticated: boolean): Promise<void> {
    const headers: Record<string, string> = unauthenticated ? {} : { ...ADMIN };
    if (contentType.type !== undefined) headers['content-type'] = contentType.type;
    const res = await p.app.inject({ method: 'POST', url: '/v1/events', headers, payload: body.payload });
    ledger.requests++;
    ledger.statuses.set(res.statusCode, (ledger.statuses.get(res.statusCode) ?? 0) + 1);
    expect(res.headers['content-type']).toMatch(/^application\/json/);
    const answer = res.json() as Answer & { code?: string; message?: string };
    if (unauthenticated) {
      // 429 once the failed-authentication budget of this address is spent (api.rate_limit).
      expect([401, 429]).toContain(res.statusCode);
      return;
    }
    if (contentType.refused === true) {
      expect(res.statusCode).toBe(415);
      expect(answer.code).toBe('AW_API_UNSUPPORTED_MEDIA_TYPE');
      return;
    }
    expect([200, 400, 413, 415]).toContain(res.statusCode);
    if (res.statusCode === 415) {
      expect(contentType.refused).toBeNull();
      return;
    }
    if (res.statusCode === 413 && answer.code === 'AW_API_BODY_TOO_LARGE') {
      // Never read: no dead letter.
      expect(body.payload.length).toBeGreaterThan(BODY_LIMIT);
      return;
    }
    expect(body.payload.length).toBeLessThanOrEqual(BODY_LIMIT);
    ledger.bytesRead += body.payload.length;
    if (answer.code !== undefined) {
      // The body as a whole: one dead letter with the message as its reason.
      expect(answer.code).toBe(res.statusCode === 413 ? 'AW_INGEST_TOO_MANY_ITEMS' : 'AW_INGEST_UNREADABLE_BODY');
      expect(answer.message?.length).toBeGreaterThan(0);
      ledger.deadLetterReasons.push(answer.message as string);
      if (body.kind === 'too-many') expect(answer.code).toBe('AW_INGEST_TOO_MANY_ITEMS');
      if (body.kind === 'empty') expect(answer.message).toMatch(/^empty body/);
      if (body.kind === 'structured') {
        expect(body.ndjson).toBe(false);
        expect(body.items.some((i) => i.poisonsArray)).toBe(true);
        expect(answer.message).toMatch(/^forbidden key/);
      }
      return;
    }
    expect(['too-many', 'empty', 'too-large']).not.toContain(body.kind);
    // Item by item: every index once, accepted + rejected = items.
    expect(answer.results.map((r) => r.index)).toEqual(Array.from({ length: answer.results.length }, (_, i) => i));
    expect(answer.accepted + answer.rejected).toBe(answer.results.length);
    expect(answer.results.filter((r) => r.status === 'accepted')).toHaveLength(answer.accepted);
    expect(res.statusCode).toBe(answer.accepted > 0 ? 200 : 400);
    expect(answer.errors).toBe(answer.rejected > 0);
    if (body.kind === 'structured') {
      expect(body.items.some((i) => i.poisonsArray) && !body.ndjson).toBe(false);
      expect(answer.results).toHaveLength(body.items.length);
      body.items.forEach((it, i) => {
        const result = answer.results[i]!;
        if (it.expect === 'accept') expect(result).toMatchObject({ status: 'accepted' });
        else expect(result).toMatchObject({ status: 'rejected', reason: expect.stringMatching(it.expect) });
      });
    }
    if (body.kind === 'large') expect(answer.results.map((r) => r.status)).toEqual(['accepted', 'rejected']);
    // The tenant of an accepted event is read back from the body (it may be a damaged one).
    const sent = parseEventsBody(body.payload.toString('utf8'), { maxEventBytes: MAX_EVENT_BYTES });
    for (const r of answer.results) {
      if (r.status === 'rejected') {
        expect(r.reason?.length).toBeGreaterThan(0);
        ledger.deadLetterReasons.push(r.event_id === undefined ? (r.reason as string) : `event ${r.event_id}: ${r.reason}`);
        continue;
      }
      const event = sent.events.find((e) => e.index === r.index)?.event;
      expect(event?.event_id).toBe(r.event_id);
      ledger.accepted.set(`${event?.tenant}\u0000${event?.event_id}`, event?.time ?? NaN);
    }
  }

  async function fuzz(runs: number, offset: number): Promise<void> {
    let n = offset;
    await fc.assert(
      fc.asyncProperty(request, async (req) => {
        // Every 100th request comes without a key: few enough not to matter, enough to prove 401.
        await sendChecked(req, ++n % 100 === 0);
        if (n % 25 === 0) await new Promise(setImmediate);
      }),
      // No shrinking: the pipeline keeps state between runs; the seed and the failing request are printed.
      { numRuns: runs, endOnFailure: true },
    );
  }

  it('answers 2,200 random requests with JSON of the right status; stores each accepted event once and each rejection as a dead letter; heap bounded', { timeout: 120_000 }, async () => {
    const started = performance.now();
    await fuzz(200, 0); // warm-up: JIT, pools, first parts in ClickHouse
    await p.settle();
    const heapBefore = liveHeap();
    await fuzz(2000, 200);
    await p.settle();
    const heapAfter = liveHeap();
    const growthMiB = (heapAfter - heapBefore) / 2 ** 20;
    console.log(
      `ingest fuzz: ${ledger.requests} requests (${(ledger.bytesRead / 2 ** 20).toFixed(0)} MiB of bodies read) in ${((performance.now() - started) / 1000).toFixed(1)} s; statuses ${JSON.stringify(Object.fromEntries(ledger.statuses))}; ` +
        `${ledger.accepted.size} distinct events accepted, ${ledger.deadLetterReasons.length} dead letters; heap ${(heapBefore / 2 ** 20).toFixed(1)} → ${(heapAfter / 2 ** 20).toFixed(1)} MiB (${growthMiB >= 0 ? '+' : ''}${growthMiB.toFixed(1)})`,
    );
    // Every status was seen, so each path above ran.
    for (const status of [200, 400, 401, 413, 415]) expect(ledger.statuses.has(status) || (status === 401 && ledger.statuses.has(429))).toBe(true);
    // Over 100 MiB of bodies were read (about 6% of requests are near 1 MiB): holding on to bodies,
    // answers or dead letters would show here. What legitimately stays: the worker's recent event ids and window state.
    expect(ledger.bytesRead).toBeGreaterThan(100 * 2 ** 20);
    expect(growthMiB).toBeLessThan(16);

    const db = config.clickhouse.database;
    const stored = await count(p, `SELECT tenant, event_id, count() AS n FROM ${db}.events GROUP BY tenant, event_id`);
    expect(stored.filter((r) => Number(r.n) !== 1)).toEqual([]);
    // Rows expire by event time (retention, 400 days by default): a damaged digit can send an
    // accepted event's time back past it, and ClickHouse drops such rows on insert.
    const retained = NOW - 399 * DAY;
    const storedKeys = new Set(stored.map((r) => `${r.tenant}\u0000${r.event_id}`));
    const expected = [...ledger.accepted].filter(([, time]) => time >= retained).map(([key]) => key);
    expect([...storedKeys].filter((key) => !ledger.accepted.has(key))).toEqual([]);
    expect(expected.filter((key) => !storedKeys.has(key))).toEqual([]);
    const letters = await count(p, `SELECT reason FROM ${db}.dead_letters`);
    expect(letters.map((r) => String(r.reason)).sort()).toEqual([...ledger.deadLetterReasons].sort());
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it('is alive afterwards: a valid event is accepted and stored, /healthz answers', async () => {
    const res = await p.app.inject({ method: 'POST', url: '/v1/events', headers: { ...ADMIN, 'content-type': 'application/json' }, payload: JSON.stringify([{ ...eventFor('after-the-fuzz'), tenant: 'last' }]) });
    expect(res.statusCode).toBe(200);
    await p.settle();
    const rows = await count(p, `SELECT event_id FROM ${config.clickhouse.database}.events WHERE tenant = 'last'`);
    expect(rows).toEqual([{ event_id: 'after-the-fuzz' }]);
    const health = await p.app.inject({ method: 'GET', url: '/healthz' });
    expect(health.statusCode).toBe(200);
    expect(health.json()).toMatchObject({ status: 'ok' });
  });
});

describe('HTTP ingest: event times far ahead and far back', () => {
  // Two minutes of allowed skew instead of the default 15: the setting is what decides.
  const skewConfig = testConfig({ ingest: { max_future_skew_ms: 120_000 } });
  let p: EmbeddedPipeline;
  beforeAll(async () => {
    p = await startTestPipeline(skewConfig);
    await p.app.ready();
  });
  afterAll(async () => p?.stop());

  it('rejects an event an hour (or five minutes) ahead with a `time:` reason and a dead letter; accepts one 20 years back and one a minute ahead', async () => {
    const now = Date.now();
    const at = (id: string, time: number | string) => ({ event_id: id, time, agent: { id: 'clock-agent' }, type: 'api_call' });
    const events = [
      at('hour-ahead', now + 3_600_000),
      at('five-minutes-ahead', new Date(now + 5 * 60_000).toISOString()),
      at('twenty-years-back', new Date(now - 20 * 365.25 * DAY).toISOString()),
      at('minute-ahead', now + 60_000),
    ];
    const res = await p.app.inject({ method: 'POST', url: '/v1/events', headers: { ...ADMIN, 'content-type': 'application/json' }, payload: JSON.stringify(events) });
    expect(res.statusCode).toBe(200);
    const answer = res.json() as Answer;
    expect(answer.results.map((r) => [r.event_id, r.status])).toEqual([
      ['hour-ahead', 'rejected'],
      ['five-minutes-ahead', 'rejected'],
      ['twenty-years-back', 'accepted'],
      ['minute-ahead', 'accepted'],
    ]);
    for (const r of answer.results.slice(0, 2)) expect(r.reason).toMatch(/^time: \S+ is later than \S+, the latest time the ingest clock accepts \(ingest\.max_future_skew_ms\)$/);

    await p.settle();
    const db = skewConfig.clickhouse.database;
    const letters = await count(p, `SELECT reason FROM ${db}.dead_letters ORDER BY reason`);
    expect(letters.map((r) => r.reason)).toEqual([expect.stringMatching(/^event five-minutes-ahead: time: /), expect.stringMatching(/^event hour-ahead: time: /)]);
    // Judged: both accepted events have their audit row. (The events table keeps rows by event
    // time for `retention`, 400 days by default, so the old one does not stay there.)
    const audited = await count(p, `SELECT event_id FROM ${db}.audit_log ORDER BY event_id`);
    expect(audited.map((r) => r.event_id)).toEqual(['minute-ahead', 'twenty-years-back']);
  });
});
