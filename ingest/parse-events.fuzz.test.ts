import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { z } from 'zod';
import { AgentEventSchema, EventTypes, validateEvent } from '../core/event.js';
import { formatPath } from '../core/validation.js';
import { DEAD_LETTER_RAW_LIMIT, DEFAULT_MAX_ITEMS_PER_REQUEST, parseEventsBody, type ParsedBody, type ParseEventsOptions } from './parse-events.js';

/**
 * Property-based fuzzing of parseEventsBody, the part of HTTP ingest that reads
 * a body. Every body must end as `fatal` with a reason, or with each of its
 * items accepted or rejected exactly once; nothing throws, nothing reaches
 * Object.prototype, nothing unstorable reaches a dead-letter row.
 */

const NOW = Date.UTC(2026, 10, 24, 10);
const NOT_AFTER = NOW + 15 * 60_000;
const MAX_TIME = 253_402_300_799_999;
const options: ParseEventsOptions = { maxEventBytes: 65_536, notAfter: NOT_AFTER };
const LONE_SURROGATE = /\p{Cs}/u;

const prototypeNames = (proto: object) => Object.getOwnPropertyNames(proto).sort();
const PROTOTYPES = [Object.prototype, Array.prototype, Function.prototype, String.prototype];
const pristine = PROTOTYPES.map(prototypeNames);

/** Nothing added to a built-in prototype, in particular by `__proto__` / `constructor.prototype` keys. */
function expectNoPollution(): void {
  expect(PROTOTYPES.map(prototypeNames)).toEqual(pristine);
  expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  expect(({} as Record<string, unknown>).admin).toBeUndefined();
}

/** Items the body holds, read independently of the parser: `fatal` when it cannot be read as a whole. */
function itemsOf(body: string, maxItems: number): { count: number } | { fatal: 'unreadable' | 'too_many' | 'maybe_forbidden' } {
  const start = body.search(/\S/);
  if (start === -1) return { fatal: 'unreadable' };
  if (body[start] === '[') {
    let value: unknown;
    try {
      value = JSON.parse(body.charCodeAt(0) === 0xfeff ? body.slice(1) : body);
    } catch {
      return { fatal: 'unreadable' };
    }
    if (!Array.isArray(value)) return { fatal: 'unreadable' };
    if (value.length > maxItems) return { fatal: 'too_many' };
    return { count: value.length };
  }
  const count = body.split('\n').filter((line) => line.trim() !== '').length;
  if (count === 0) return { fatal: 'unreadable' };
  return count > maxItems ? { fatal: 'too_many' } : { count };
}

/** The invariants every body must satisfy; returns the result for further checks. */
function parseChecked(body: string, opts: ParseEventsOptions = options): ParsedBody {
  const result = parseEventsBody(body, opts);
  const expected = itemsOf(body, opts.maxItems ?? DEFAULT_MAX_ITEMS_PER_REQUEST);
  if (result.fatal !== undefined) {
    expect(result.fatal.length).toBeGreaterThan(0);
    expect(result.events).toEqual([]);
    expect(result.rejected).toEqual([]);
    if ('count' in expected) {
      // JSON.parse read an array of allowed length: only a forbidden key refuses it.
      expect(result.fatal).toMatch(/^forbidden key/);
    } else if (expected.fatal === 'too_many') {
      expect(result.fatalCode).toBe('AW_INGEST_TOO_MANY_ITEMS');
      expect(result.fatal).toMatch(/a request may hold at most \d+: split it$/);
    } else {
      expect(result.fatalCode).toBe('AW_INGEST_UNREADABLE_BODY');
    }
    return result;
  }
  expect(expected).toHaveProperty('count');
  const count = (expected as { count: number }).count;
  const indices = [...result.events.map((e) => e.index), ...result.rejected.map((r) => r.index)].sort((a, b) => a - b);
  expect(indices).toEqual(Array.from({ length: count }, (_, i) => i));
  for (const r of result.rejected) {
    expect(r.reason.length).toBeGreaterThan(0);
    expect(r.raw.length).toBeLessThanOrEqual(DEAD_LETTER_RAW_LIMIT);
    expect(r.rawBytes).toBeGreaterThanOrEqual(0);
    // What goes onto a dead-letter row must be UTF-8 encodable (ClickHouse refuses the insert otherwise).
    expect(LONE_SURROGATE.test(r.reason) || LONE_SURROGATE.test(r.raw) || LONE_SURROGATE.test(r.event_id ?? '')).toBe(false);
  }
  for (const { event } of result.events) {
    const again = validateEvent(event, { notAfter: opts.notAfter ?? Infinity });
    expect(again).toEqual({ ok: true, event });
    expect(event.time).toBeGreaterThanOrEqual(0);
    expect(event.time).toBeLessThanOrEqual(Math.min(MAX_TIME, opts.notAfter ?? Infinity));
    expect(Object.getPrototypeOf(event)).toBe(Object.prototype);
  }
  return result;
}

const RUNS = 1000;
/** fast-check parameters: the seed is printed on failure, and a run can be replayed with it. */
const params = (numRuns = RUNS) => ({ numRuns });

// ---------------------------------------------------------------- arbitraries

const plainKey = fc.stringMatching(/^[a-z][a-z0-9_]{0,7}$/);
const idText = fc.string({ unit: 'grapheme', minLength: 1, maxLength: 12 });

/** A valid event (all times up to NOT_AFTER, far past included). */
const validEvent = fc.record(
  {
    event_id: idText,
    time: fc.oneof(fc.integer({ min: 0, max: NOT_AFTER }), fc.integer({ min: 0, max: NOT_AFTER }).map((ms) => new Date(ms).toISOString())),
    tenant: fc.string({ minLength: 1, maxLength: 8 }),
    agent: fc.record({ id: idText, name: fc.constantFrom('claude-code', 'cursor', 'copilot') }, { requiredKeys: ['id'] }),
    type: fc.constantFrom(...EventTypes),
    action: fc.string({ minLength: 1, maxLength: 12 }),
    resource: fc.string({ unit: 'grapheme', maxLength: 40 }),
    attributes: fc.dictionary(plainKey, fc.oneof(fc.string({ maxLength: 8 }), fc.integer(), fc.boolean()), { maxKeys: 4 }),
  },
  { requiredKeys: ['event_id', 'time', 'agent', 'type'] },
);

/** Every field of AgentEvent v1 set to a valid value, to replace one at a time. */
const RICH = {
  event_id: 'e-1',
  time: '2026-11-24T10:00:00Z',
  tenant: 'acme',
  agent: { id: 'a-1', name: 'cursor', type: 'ide', version: '1.2' },
  type: 'tool_call',
  action: 'file_read',
  resource: '/etc/hosts',
  source: { ip: '10.0.0.1', host: 'laptop', user: 'ana' },
  tool: { name: 'read', server: 'fs', version: '1.0.0' },
  mcp: { server_id: 'fs', url: 'https://mcp.example', trust_score: 80, tools: ['read'], capabilities: ['files'] },
  capabilities: ['file_read'],
  key: { fingerprint: 'SHA256:abc', algorithm: 'ed25519' },
  network: { domain: 'example.com', url: 'https://example.com/x', method: 'GET', ip: '93.184.216.34', port: 443 },
  outcome: 'success',
  duration_ms: 12.5,
  content: { input: 'hi', output: 'there' },
  attributes: { s: 'v', n: 1, b: true },
};

type Kind = 'string' | 'number' | 'boolean' | 'null' | 'array' | 'object';
const kindOf = (v: unknown): Kind => (v === null ? 'null' : Array.isArray(v) ? 'array' : (typeof v as Kind));
const valueOfKind: Record<Kind, fc.Arbitrary<unknown>> = {
  string: fc.string({ maxLength: 12 }),
  number: fc.oneof(fc.integer(), fc.double({ noNaN: true, noDefaultInfinity: true })),
  boolean: fc.boolean(),
  null: fc.constant(null),
  array: fc.array(fc.oneof(fc.integer(), fc.string({ maxLength: 4 })), { maxLength: 3 }),
  object: fc.dictionary(plainKey, fc.oneof(fc.integer(), fc.string({ maxLength: 4 })), { maxKeys: 3 }),
};

/** Every path of RICH (containers and leaves, array items included). */
function pathsOf(value: unknown, prefix: (string | number)[] = []): (string | number)[][] {
  if (typeof value !== 'object' || value === null) return [];
  return Object.entries(value).flatMap(([key, item]) => {
    const path = [...prefix, Array.isArray(value) ? Number(key) : key];
    return [path, ...pathsOf(item, path)];
  });
}
const RICH_PATHS = pathsOf(RICH);

/** Kinds a path accepts: its own, plus the union members of `time` and attribute values. */
function acceptedKinds(path: readonly (string | number)[], value: unknown): Kind[] {
  if (path.length === 1 && path[0] === 'time') return ['string', 'number'];
  if (path.length === 2 && path[0] === 'attributes') return ['string', 'number', 'boolean'];
  return [kindOf(value)];
}

function withValueAt(event: unknown, path: readonly (string | number)[], value: unknown): unknown {
  const copy = structuredClone(event) as Record<string | number, unknown>;
  let node = copy;
  for (const key of path.slice(0, -1)) node = node[key] as Record<string | number, unknown>;
  node[path[path.length - 1] as string | number] = value;
  return copy;
}

const valueAt = (event: unknown, path: readonly (string | number)[]): unknown =>
  path.reduce<unknown>((node, key) => (node as Record<string | number, unknown>)[key], event);

/** Field names of an object schema, looking through optional/default wrappers, with nested objects' fields. */
function schemaFields(schema: z.ZodType, prefix = ''): string[] {
  const def = schema.def as { type: string; innerType?: z.ZodType; shape?: Record<string, z.ZodType> };
  if ((def.type === 'optional' || def.type === 'default') && def.innerType !== undefined) return schemaFields(def.innerType, prefix);
  if (def.type !== 'object' || def.shape === undefined) return [];
  return Object.entries(def.shape).flatMap(([key, field]) => [`${prefix}${key}`, ...schemaFields(field, `${prefix}${key}.`)]);
}

const isObject = (v: unknown): v is object => typeof v === 'object' && v !== null;

/** Whether a decoded value holds, at any depth, a key secure-json-parse refuses (`jsonValue` generates `__proto__` keys too). */
function holdsForbiddenKey(value: unknown): boolean {
  if (!isObject(value)) return false;
  if (Object.hasOwn(value, '__proto__')) return true;
  const ctor = (value as Record<string, unknown>).constructor;
  if (Object.hasOwn(value, 'constructor') && isObject(ctor) && Object.hasOwn(ctor, 'prototype')) return true;
  return Object.values(value).some(holdsForbiddenKey);
}

// ---------------------------------------------------------------- properties

describe('parseEventsBody under fuzzing', () => {
  it('never throws on arbitrary text; every item is accepted or rejected once, or the body is fatal', () => {
    const text = fc.oneof(
      fc.string({ unit: 'binary', maxLength: 300 }),
      fc.string({ unit: fc.constantFrom('[', ']', '{', '}', '"', ':', ',', '\n', '\r', ' ', '1', 'a', '\\', 'u', '\ufeff', '\u00a0'), maxLength: 200 }),
      fc.array(fc.jsonValue({ maxDepth: 4 }), { maxLength: 8 }).map((items) => JSON.stringify(items)),
      fc.array(fc.jsonValue({ maxDepth: 4 }), { maxLength: 8 }).map((items) => items.map((i) => JSON.stringify(i)).join('\n')),
    );
    fc.assert(
      fc.property(text, (body) => {
        parseChecked(body);
      }),
      params(),
    );
    expectNoPollution();
  });

  it('reads random bytes as the server decodes them: invalid UTF-8 becomes U+FFFD, never a lone surrogate', () => {
    const bytes = fc.oneof(
      fc.uint8Array({ maxLength: 300 }),
      // Valid bodies with bytes overwritten by continuation or lead bytes: UTF-8 broken inside strings and structure.
      fc
        .tuple(fc.array(validEvent, { minLength: 1, maxLength: 4 }), fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0x80, max: 0xff })), { maxLength: 6 }), fc.boolean())
        .map(([events, flips, asArray]) => {
          const buffer = Buffer.from(asArray ? JSON.stringify(events) : events.map((e) => JSON.stringify(e)).join('\n'));
          for (const [at, byte] of flips) buffer[at % buffer.length] = byte;
          return new Uint8Array(buffer);
        }),
    );
    fc.assert(
      fc.property(bytes, (raw) => {
        // What fastify's string parser hands the route (Buffer#toString('utf8'), WHATWG replacement).
        const body = Buffer.from(raw).toString('utf8');
        expect(LONE_SURROGATE.test(body)).toBe(false);
        parseChecked(body);
      }),
      params(),
    );
  });

  it('a body cut at every point: arrays are fatal until complete; NDJSON keeps each complete line', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(validEvent, { minLength: 1, maxLength: 4 }), fc.boolean(), async (events, ndjson) => {
        const lines = events.map((e) => JSON.stringify(e));
        const body = ndjson ? `${lines.join('\n')}\n` : JSON.stringify(events);
        for (let cut = 0; cut <= body.length; cut++) {
          const prefix = body.slice(0, cut);
          const result = parseChecked(prefix);
          if (prefix.trim() === '') {
            expect(result.fatal).toMatch(/^empty body/);
          } else if (!ndjson) {
            if (cut < body.length) expect(result.fatal).toMatch(/^not valid JSON/);
            else expect(result.events).toHaveLength(events.length);
          } else {
            // Lines wholly inside the prefix are accepted; a cut line is rejected (a prefix of an object is not JSON).
            let end = 0;
            let whole = 0;
            for (const line of lines) {
              end += line.length;
              if (end <= cut) whole++;
              end += 1;
            }
            const tail = prefix.slice(prefix.lastIndexOf('\n') + 1);
            const cutLine = tail !== '' && !lines.includes(tail);
            expect(result.events.map((e) => e.index)).toEqual(Array.from({ length: whole }, (_, i) => i));
            expect(result.rejected.map((r) => r.index)).toEqual(cutLine ? [whole] : []);
          }
        }
        await new Promise(setImmediate);
      }),
      params(60),
    );
  });

  it('survives deep nesting anywhere (up to 100,000 levels): a rejection or a fatal, never a RangeError', async () => {
    const deep = fc.record({
      depth: fc.oneof(fc.integer({ min: 1, max: 3_000 }), fc.integer({ min: 3_000, max: 100_000 })),
      open: fc.constantFrom('[', '{"a":', '[{"b":'),
      closed: fc.boolean(),
      place: fc.constantFrom('body', 'item', 'line', 'field', 'field-in-large-array'),
    });
    let runs = 0;
    await fc.assert(
      fc.asyncProperty(deep, async ({ depth, open, closed, place }) => {
        const close = open === '[' ? ']' : open === '{"a":' ? '}' : '}]';
        const nested = `${open.repeat(depth)}1${closed ? close.repeat(depth) : ''}`;
        const event = JSON.stringify({ event_id: 'deep', time: NOW, agent: { id: 'a' }, type: 'auth' });
        const withField = `${event.slice(0, -1)},"extra":${nested}}`;
        const body = {
          body: `[${nested}]`,
          item: `[${event},${nested}]`,
          line: `${event}\n${nested}`,
          field: withField,
          // Over maxEventBytes in total, so every item is measured with JSON.stringify.
          'field-in-large-array': `[${withField},${JSON.stringify({ pad: 'x'.repeat(70_000) })}]`,
        }[place];
        const result = parseChecked(body);
        if (place === 'line') {
          expect(result.events.map((e) => e.event.event_id)).toEqual(['deep']);
          expect(result.rejected).toHaveLength(1);
        }
        if (place === 'item' && closed) expect(result.rejected.map((r) => r.index)).toEqual([1]);
        if (++runs % 10 === 0) await new Promise(setImmediate);
      }),
      params(80),
    );
  });

  it('rejects an array item JSON.stringify cannot write, in a small body too (was a 500)', () => {
    const nested = `${'['.repeat(6_000)}${']'.repeat(6_000)}`;
    for (const body of [`[${nested}]`, `[{"event_id":"x","extra":${nested}},${JSON.stringify({ pad: 'x'.repeat(70_000) })}]`]) {
      const result = parseChecked(body);
      expect(result.rejected[0]).toMatchObject({ index: 0, reason: expect.stringMatching(/nested too deeply|event must be a JSON object/) });
    }
  });

  it('huge strings: an event over maxEventBytes is rejected with its exact size; the raw kept is bounded', async () => {
    let runs = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 0, max: 300_000 }),
        fc.constantFrom('x', 'é', '\u{1F600}', '"', '\\'),
        fc.constantFrom('resource', 'event_id', 'extra'),
        fc.boolean(),
        async (length, char, field, ndjson) => {
          const line = JSON.stringify({ event_id: 'h', time: NOW, agent: { id: 'a' }, type: 'auth', [field]: char.repeat(length) });
          const bytes = Buffer.byteLength(line);
          const result = parseChecked(ndjson ? line : `[${line}]`);
          if (bytes > options.maxEventBytes) {
            expect(result.rejected).toHaveLength(1);
            expect(result.rejected[0]!.reason).toBe(`event is ${bytes} bytes; the limit is ${options.maxEventBytes}`);
            expect(result.rejected[0]!.rawBytes).toBe(bytes);
          }
          if (++runs % 20 === 0) await new Promise(setImmediate);
        },
      ),
      params(100),
    );
  });

  it('bodies with many items: up to the cap each is judged; over it the body is refused as a whole', async () => {
    const item = fc.constantFrom('1', 'null', '"x"', '{}', '[]', JSON.stringify({ event_id: 'm', time: NOW, agent: { id: 'a' }, type: 'auth' }));
    let runs = 0;
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 1, max: 400 }), fc.integer({ min: 1, max: 300 }), item, fc.boolean(), async (count, maxItems, one, ndjson) => {
        // A body that starts with `[` is read as one JSON array, so NDJSON of arrays is simply not JSON.
        fc.pre(!(ndjson && one === '[]'));
        const items = Array<string>(count).fill(one);
        const result = parseChecked(ndjson ? items.join('\n') : `[${items.join(',')}]`, { ...options, maxItems });
        expect(result.fatalCode === 'AW_INGEST_TOO_MANY_ITEMS').toBe(count > maxItems);
        if (++runs % 50 === 0) await new Promise(setImmediate);
      }),
      params(300),
    );
    // The default cap, on both sides, in both forms.
    for (const count of [DEFAULT_MAX_ITEMS_PER_REQUEST, DEFAULT_MAX_ITEMS_PER_REQUEST + 1, 2_000_000]) {
      for (const body of [`[${'1,'.repeat(count - 1)}1]`, '1\n'.repeat(count)]) {
        const result = parseChecked(body);
        expect(result.fatal !== undefined).toBe(count > DEFAULT_MAX_ITEMS_PER_REQUEST);
        await new Promise(setImmediate);
      }
    }
  });

  it('covers every field of the schema with the wrong-type fuzz', () => {
    const covered = new Set(RICH_PATHS.map((p) => formatPath(p)));
    for (const field of schemaFields(AgentEventSchema)) expect(covered, field).toContain(field);
    expect(validateEvent(RICH).ok).toBe(true);
  });

  it('a value of a wrong type in any field is rejected with that field named', () => {
    const replaced = fc
      .constantFrom(...RICH_PATHS)
      .chain((path) => {
        const kinds = (Object.keys(valueOfKind) as Kind[]).filter((k) => !acceptedKinds(path, valueAt(RICH, path)).includes(k));
        return fc.tuple(fc.constant(path), fc.constantFrom(...kinds).chain((k) => valueOfKind[k]));
      })
      .filter(([, value]) => value !== undefined);
    fc.assert(
      fc.property(replaced, fc.boolean(), ([path, value], ndjson) => {
        const event = withValueAt(RICH, path, value);
        const result = parseChecked(ndjson ? JSON.stringify(event) : JSON.stringify([event]));
        expect(result.events).toEqual([]);
        expect(result.rejected).toHaveLength(1);
        expect(result.rejected[0]!.reason).toContain(`${formatPath(path)}: `);
      }),
      params(),
    );
  });

  it('__proto__, constructor and prototype keys at any depth, escaped or not: refused or harmless, never polluting', () => {
    // Each character of the key, randomly written as a \uXXXX escape in either hex case.
    const spelled = (key: string) =>
      fc.array(fc.tuple(fc.boolean(), fc.boolean()), { minLength: key.length, maxLength: key.length }).map((choices) =>
        [...key]
          .map((ch, i) => {
            const [escape, upper] = choices[i]!;
            if (!escape) return ch;
            const hex = ch.charCodeAt(0).toString(16).padStart(4, '0');
            return `\\u${upper ? hex.toUpperCase() : hex}`;
          })
          .join(''),
      );
    const attack = fc.record({
      key: fc.constantFrom('__proto__', 'constructor', 'prototype').chain((key) => fc.tuple(fc.constant(key), spelled(key))),
      value: fc.oneof(fc.jsonValue({ maxDepth: 2 }), fc.constant({ prototype: { polluted: 1 } }), fc.constant({ polluted: 1, admin: true })),
      container: fc.constantFrom('root', 'agent', 'attributes', 'extra', 'deep'),
      depth: fc.integer({ min: 1, max: 20 }),
      ndjson: fc.boolean(),
    });
    fc.assert(
      fc.property(attack, ({ key: [key, spelling], value, container, depth, ndjson }) => {
        const marker = '@@key@@';
        const event: Record<string, unknown> = { event_id: 'p', time: NOW, agent: { id: 'a' }, type: 'auth', attributes: { ok: 1 } };
        const slot = { [marker]: value };
        if (container === 'root') Object.assign(event, slot);
        else if (container === 'agent') Object.assign(event.agent as object, slot);
        else if (container === 'attributes') Object.assign(event.attributes as object, slot);
        else if (container === 'extra') event.extra = slot;
        else event.extra = Array.from({ length: depth }).reduce<unknown>((inner) => ({ nest: [inner] }), slot);
        const line = JSON.stringify(event).replace(`"${marker}"`, `"${spelling}"`);
        const result = parseChecked(ndjson ? line : `[${line}]`);
        const forbidden = key === '__proto__' || (key === 'constructor' && isObject(value) && Object.hasOwn(value, 'prototype')) || holdsForbiddenKey(value);
        const reasons = result.fatal !== undefined ? [result.fatal] : result.rejected.map((r) => r.reason);
        if (forbidden) expect(reasons).toEqual([expect.stringMatching(/^forbidden key/)]);
        else expect(reasons.filter((r) => r.startsWith('forbidden key'))).toEqual([]);
        for (const { event: accepted } of result.events) {
          expect(Object.getPrototypeOf(accepted.attributes ?? {})).toBe(Object.prototype);
          expect(Object.getPrototypeOf(accepted.agent)).toBe(Object.prototype);
        }
        expectNoPollution();
      }),
      params(),
    );
  });

  it('a syntax error that quotes the word "constructor" is reported as not JSON, not as a forbidden key', () => {
    const result = parseEventsBody('{"constructor": oops}', options);
    expect(result.rejected[0]!.reason).toMatch(/^not valid JSON/);
  });

  describe('timestamps', () => {
    const base = { event_id: 't', agent: { id: 'a' }, type: 'auth' };
    const judgeTime = (time: unknown) => {
      const result = parseChecked(JSON.stringify({ ...base, time }));
      return result.events[0] ?? result.rejected[0]!;
    };

    it('RFC 3339 from year 0 to 9999 with any offset: accepted exactly when in 1970…notAfter, else a `time:` reason', () => {
      const two = (n: number) => String(n).padStart(2, '0');
      const rfc3339 = fc
        .record({
          year: fc.integer({ min: 0, max: 9999 }),
          month: fc.integer({ min: 1, max: 12 }),
          day: fc.integer({ min: 1, max: 28 }),
          hour: fc.integer({ min: 0, max: 23 }),
          minute: fc.integer({ min: 0, max: 59 }),
          second: fc.integer({ min: 0, max: 59 }),
          fraction: fc.option(fc.stringMatching(/^[0-9]{1,3}$/), { nil: undefined }),
          offset: fc.option(fc.tuple(fc.constantFrom(1, -1), fc.integer({ min: 0, max: 23 }), fc.integer({ min: 0, max: 59 })), { nil: undefined }),
        })
        .map((t) => {
          const zone = t.offset === undefined ? 'Z' : `${t.offset[0] > 0 ? '+' : '-'}${two(t.offset[1])}:${two(t.offset[2])}`;
          const text = `${String(t.year).padStart(4, '0')}-${two(t.month)}-${two(t.day)}T${two(t.hour)}:${two(t.minute)}:${two(t.second)}${t.fraction === undefined ? '' : `.${t.fraction}`}${zone}`;
          const local = new Date(0);
          local.setUTCFullYear(t.year, t.month - 1, t.day);
          local.setUTCHours(t.hour, t.minute, t.second, t.fraction === undefined ? 0 : Number(t.fraction.padEnd(3, '0')));
          const offsetMs = t.offset === undefined ? 0 : t.offset[0] * (t.offset[1] * 60 + t.offset[2]) * 60_000;
          return { text, ms: local.getTime() - offsetMs };
        });
      fc.assert(
        fc.property(rfc3339, ({ text, ms }) => {
          const judged = judgeTime(text);
          if (ms >= 0 && ms <= NOT_AFTER) expect(judged).toMatchObject({ event: { time: ms } });
          else expect(judged).toMatchObject({ reason: expect.stringMatching(/^time: /) });
        }),
        params(),
      );
    });

    it('epoch milliseconds anywhere in ±10^17, NaN-ish and malformed values: accepted exactly when in range, else a `time:` reason', () => {
      const time = fc.oneof(
        fc.integer({ min: -1e17, max: 1e17 }).map((n) => Math.trunc(n)),
        fc.integer({ min: 0, max: MAX_TIME }),
        fc.double({ noNaN: true }),
        fc.constantFrom('NaN', 'Infinity', '-Infinity', '', ' ', 'now', '1764000000000', '2026-11-24', '2026-11-24T10:00:00', '+010000-01-01T00:00:00Z', '2026-02-30T00:00:00Z', '2016-12-31T23:59:60Z', null, true, [], {}),
      );
      fc.assert(
        fc.property(time, (t) => {
          const judged = judgeTime(t);
          const inRange = typeof t === 'number' && Number.isInteger(t) && t >= 0 && t <= NOT_AFTER;
          if (inRange) expect(judged).toMatchObject({ event: { time: t === 0 ? 0 : t } });
          else expect(judged).toMatchObject({ reason: expect.stringMatching(/^time: /) });
        }),
        params(),
      );
      // Literals JSON.stringify cannot produce.
      for (const literal of ['1e400', '-1e400', '1.0e3', '-0']) {
        const result = parseChecked(`{"event_id":"t","agent":{"id":"a"},"type":"auth","time":${literal}}`);
        expect(result.events.length + result.rejected.length).toBe(1);
        if (result.rejected[0] !== undefined) expect(result.rejected[0].reason).toMatch(/^time: /);
      }
    });

    it('relative to notAfter: any later time is rejected naming it; any earlier one back to 1970 is accepted', () => {
      fc.assert(
        fc.property(fc.integer({ min: 1, max: MAX_TIME - NOT_AFTER }), fc.integer({ min: 0, max: NOT_AFTER }), fc.boolean(), (ahead, behind, asText) => {
          const late = NOT_AFTER + ahead;
          const early = NOT_AFTER - behind;
          const as = (ms: number) => (asText ? new Date(ms).toISOString() : ms);
          expect(judgeTime(as(late))).toMatchObject({ reason: `time: ${new Date(late).toISOString()} is later than ${new Date(NOT_AFTER).toISOString()}, the latest time the ingest clock accepts (ingest.max_future_skew_ms)` });
          expect(judgeTime(as(early))).toMatchObject({ event: { time: early } });
        }),
        params(),
      );
    });
  });

  it('duplicate event_ids in one body are each judged: deduplication is the worker\'s, by (tenant, event_id)', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.constantFrom('d1', 'd2', 'd3'), fc.integer({ min: 0, max: NOT_AFTER })), { minLength: 1, maxLength: 20 }), fc.boolean(), (items, ndjson) => {
        const events = items.map(([id, time]) => ({ event_id: id, time, agent: { id: 'a' }, type: 'auth' }));
        const result = parseChecked(ndjson ? events.map((e) => JSON.stringify(e)).join('\n') : JSON.stringify(events));
        expect(result.events.map((e) => e.event.event_id)).toEqual(items.map(([id]) => id));
      }),
      params(),
    );
  });

  it('a lone surrogate in any string or attribute key is rejected with its path, and nothing unstorable is kept', () => {
    const surrogate = fc.integer({ min: 0xd800, max: 0xdfff }).map((c) => String.fromCharCode(c));
    const target = fc.constantFrom<(string | number)[]>(['event_id'], ['tenant'], ['agent', 'id'], ['action'], ['resource'], ['attributes', 's'], ['capabilities', 0], ['content', 'input'], ['attributes']);
    fc.assert(
      fc.property(target, surrogate, fc.nat(), fc.boolean(), fc.boolean(), (path, lone, at, escaped, ndjson) => {
        let event: unknown;
        if (path.length === 1 && path[0] === 'attributes') {
          event = { ...RICH, attributes: { [`k${lone}`]: 'v' } };
        } else {
          const text = String(valueAt(RICH, path));
          const cut = at % (text.length + 1);
          event = withValueAt(RICH, path, `${text.slice(0, cut)}${lone}${text.slice(cut)}`);
        }
        // JSON.stringify writes a lone surrogate as a \uXXXX escape; unescaped, it is what a non-HTTP caller could pass.
        let line = JSON.stringify(event);
        if (!escaped) line = line.replace(/\\u(d[89a-f][0-9a-f]{2})/g, (_, hex: string) => String.fromCharCode(parseInt(hex, 16)));
        const result = parseChecked(ndjson ? line : `[${line}]`);
        expect(result.events).toEqual([]);
        const reason = result.rejected[0]!.reason;
        expect(reason).toMatch(/holds an unpaired UTF-16 surrogate/);
        if (path.length > 1 || path[0] !== 'attributes') expect(reason.startsWith(`${formatPath(path)}: `)).toBe(true);
      }),
      params(),
    );
  });
});
