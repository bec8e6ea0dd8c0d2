import sjson from 'secure-json-parse';
import { storableText, validateEvent, type AgentEvent } from '../core/event.js';

/** How much of a rejected input is kept on its dead-letter row. */
export const DEAD_LETTER_RAW_LIMIT = 4096;

/**
 * Default of {@link ParseEventsOptions.maxItems}. A 4 MiB body of `[1,1,…]`
 * holds two million items, and each rejected item costs a dead-letter row and
 * an entry in the answer: the cap bounds what one request can cost. Batching
 * clients send hundreds to a few thousand events per request; 10,000 leaves
 * room for small events up to the default body limit's worth of them.
 */
export const DEFAULT_MAX_ITEMS_PER_REQUEST = 10_000;

export interface RejectedInput {
  /** Position in the request: array index or NDJSON line number (from 0). */
  index: number;
  event_id?: string;
  reason: string;
  /** Raw text of the input, truncated to DEAD_LETTER_RAW_LIMIT characters ({@link deadLetterRaw}). */
  raw: string;
  rawBytes: number;
}

/** Why a body was refused as a whole. */
export type FatalCode = 'AW_INGEST_UNREADABLE_BODY' | 'AW_INGEST_TOO_MANY_ITEMS';

export interface ParsedBody {
  events: { index: number; event: AgentEvent }[];
  rejected: RejectedInput[];
  /** The body as a whole was refused (not JSON, empty, too many items): nothing was accepted. */
  fatal?: string;
  /** Set with `fatal`. */
  fatalCode?: FatalCode;
}

export interface ParseEventsOptions {
  /** Maximum encoded size of one event. @default 65536 */
  maxEventBytes: number;
  /** Latest acceptable event time (epoch ms): the ingest clock plus `ingest.max_future_skew_ms`. @default no limit */
  notAfter?: number;
  /**
   * Most items (array elements or non-blank NDJSON lines) one body may hold; a
   * body with more is refused as a whole, so the producer can split it and
   * resend without duplicates. @default 10000
   */
  maxItems?: number;
}

/** secure-json-parse's message for a `__proto__` or `constructor.prototype` key. */
const FORBIDDEN_KEY_MESSAGE = 'Object contains forbidden prototype property';

function parseJson(text: string): { ok: true; value: unknown } | { ok: false; reason: string } {
  try {
    // Rejects `__proto__` and `constructor.prototype` keys instead of letting them reach objects.
    return { ok: true, value: sjson.parse(text, undefined, { protoAction: 'error', constructorAction: 'error' }) };
  } catch (error) {
    // Matched exactly: a syntax error's message quotes the input, which may say "constructor".
    const message = (error as Error).message;
    if (message === FORBIDDEN_KEY_MESSAGE) return { ok: false, reason: `forbidden key: ${message}` };
    // V8 quotes the unexpected UTF-16 unit: half of a pair when the input has an emoji there.
    return { ok: false, reason: `not valid JSON: ${storableText(message)}` };
  }
}

/**
 * JSON text of a decoded item, or undefined when JSON.stringify cannot write
 * it: it recurses, so a few thousand levels of nesting (a 10 KB body of `[`)
 * exhaust the stack with a RangeError, which must not escape as a 500.
 */
function jsonText(value: unknown): string | undefined {
  try {
    return JSON.stringify(value) ?? '';
  } catch {
    return undefined;
  }
}

/** Why an item JSON.stringify cannot write is refused. */
const TOO_DEEP = 'nested too deeply to be an event (JSON.stringify exhausted the stack)';

/** The head of a rejected input kept on its dead-letter row: at most DEAD_LETTER_RAW_LIMIT UTF-16 units, storable. */
export function deadLetterRaw(text: string): string {
  return storableText(text.length > DEAD_LETTER_RAW_LIMIT ? text.slice(0, DEAD_LETTER_RAW_LIMIT) : text);
}

function eventIdOf(value: unknown): string | undefined {
  if (typeof value === 'object' && value !== null && 'event_id' in value) {
    const id = (value as { event_id: unknown }).event_id;
    // It names the item in the answer and on the dead-letter row: a rejected id may hold anything.
    if (typeof id === 'string') return storableText(id.slice(0, 128));
  }
  return undefined;
}

function reject(index: number, reason: string, raw: string, value?: unknown): RejectedInput {
  const eventId = value === undefined ? undefined : eventIdOf(value);
  return {
    index,
    ...(eventId === undefined ? {} : { event_id: eventId }),
    reason,
    raw: deadLetterRaw(raw),
    rawBytes: Buffer.byteLength(raw),
  };
}

const EMPTY_BODY = 'empty body: send a JSON array of events or NDJSON';

/**
 * Reads a request body that is either a JSON array of events or NDJSON (one
 * event per line; a single JSON object is one-line NDJSON). Every item is
 * accepted or rejected with a reason, or the body is refused as a whole
 * (`fatal`); nothing throws.
 */
export function parseEventsBody(body: string, options: ParseEventsOptions): ParsedBody {
  const steps = parseSteps(body, options);
  for (;;) {
    const step = steps.next();
    if (step.done === true) return step.value;
  }
}

/** Default of {@link parseEventsBodyYielding}'s `sliceMs`. */
export const PARSE_SLICE_MS = 10;

/**
 * {@link parseEventsBody}, handing the event loop back every `sliceMs` of
 * work: a body built to be slow to judge (a million validation problems take
 * seconds) then delays other requests by a slice at a time, not by the whole
 * body. Same result as the synchronous version.
 */
export async function parseEventsBodyYielding(body: string, options: ParseEventsOptions, sliceMs = PARSE_SLICE_MS): Promise<ParsedBody> {
  const steps = parseSteps(body, options);
  let sliceStart = performance.now();
  for (;;) {
    const step = steps.next();
    if (step.done === true) return step.value;
    if (performance.now() - sliceStart >= sliceMs) {
      await new Promise<void>((resolve) => setImmediate(resolve));
      sliceStart = performance.now();
    }
  }
}

/** The parse, one step per item judged (the callers decide when to yield). */
function* parseSteps(body: string, options: ParseEventsOptions): Generator<void, ParsedBody, void> {
  const events: ParsedBody['events'] = [];
  const rejected: RejectedInput[] = [];
  const maxItems = options.maxItems ?? DEFAULT_MAX_ITEMS_PER_REQUEST;
  const refuse = (fatalCode: FatalCode, fatal: string): ParsedBody => ({ events: [], rejected: [], fatal, fatalCode });
  const tooMany = (items: string) => refuse('AW_INGEST_TOO_MANY_ITEMS', `the body holds ${items} items; a request may hold at most ${maxItems}: split it`);
  const start = body.search(/\S/);
  if (start === -1) return refuse('AW_INGEST_UNREADABLE_BODY', EMPTY_BODY);

  const validation = options.notAfter === undefined ? {} : { notAfter: options.notAfter, clockName: 'the ingest clock' };
  const judge = (index: number, value: unknown, rawOf: () => string): void => {
    const result = validateEvent(value, validation);
    if (result.ok) events.push({ index, event: result.event });
    else rejected.push(reject(index, result.reason, rawOf(), value));
  };

  if (body[start] === '[') {
    const parsed = parseJson(body);
    if (!parsed.ok) return refuse('AW_INGEST_UNREADABLE_BODY', parsed.reason);
    if (!Array.isArray(parsed.value)) return refuse('AW_INGEST_UNREADABLE_BODY', 'body must be a JSON array of events or NDJSON');
    const items = parsed.value as unknown[];
    if (items.length > maxItems) return tooMany(String(items.length));
    // Only a body larger than one event's limit can hold an oversize event; measure items only then.
    const measure = Buffer.byteLength(body) > options.maxEventBytes;
    for (const [index, item] of items.entries()) {
      const raw = measure ? jsonText(item) : '';
      const bytes = measure && raw !== undefined ? Buffer.byteLength(raw) : 0;
      if (raw === undefined) {
        rejected.push(reject(index, TOO_DEEP, '', item));
      } else if (bytes > options.maxEventBytes) {
        rejected.push(reject(index, `event is ${bytes} bytes; the limit is ${options.maxEventBytes}`, raw, item));
      } else {
        // Raw text of a rejected item is kept for its dead-letter row.
        judge(index, item, () => (measure ? raw : (jsonText(item) ?? '')));
      }
      yield;
    }
    return { events, rejected };
  }

  let index = 0;
  // Lines are found with indexOf rather than split('\n'): a 4 MiB body of newlines would be a 4-million-element array.
  for (let from = 0; from <= body.length; ) {
    const end = body.indexOf('\n', from);
    const stop = end === -1 ? body.length : end;
    const line = body.slice(from, body.charCodeAt(stop - 1) === 13 && stop > from ? stop - 1 : stop);
    from = stop + 1;
    if (line.trim() === '') continue;
    if (index === maxItems) return tooMany(`more than ${maxItems}`);
    const i = index++;
    // UTF-8 uses at most 3 bytes per UTF-16 unit, so short lines skip the byte count.
    if (line.length * 3 > options.maxEventBytes) {
      const bytes = Buffer.byteLength(line);
      if (bytes > options.maxEventBytes) {
        rejected.push(reject(i, `event is ${bytes} bytes; the limit is ${options.maxEventBytes}`, line));
        yield;
        continue;
      }
    }
    const parsed = parseJson(line);
    if (!parsed.ok) rejected.push(reject(i, parsed.reason, line));
    else judge(i, parsed.value, () => line);
    yield;
  }
  if (index === 0) return refuse('AW_INGEST_UNREADABLE_BODY', EMPTY_BODY);
  return { events, rejected };
}
