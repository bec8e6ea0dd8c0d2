import sjson from 'secure-json-parse';
import { validateEvent, type AgentEvent } from '../core/event.js';

/** How much of a rejected input is kept on its dead-letter row. */
export const DEAD_LETTER_RAW_LIMIT = 4096;

export interface RejectedInput {
  /** Position in the request: array index or NDJSON line number (from 0). */
  index: number;
  event_id?: string;
  reason: string;
  /** Raw text of the input, truncated to DEAD_LETTER_RAW_LIMIT characters. */
  raw: string;
  rawBytes: number;
}

export interface ParsedBody {
  events: { index: number; event: AgentEvent }[];
  rejected: RejectedInput[];
  /** The body as a whole could not be read (not JSON, empty): nothing was accepted. */
  fatal?: string;
}

export interface ParseEventsOptions {
  /** Maximum encoded size of one event. @default 65536 */
  maxEventBytes: number;
  /** Latest acceptable event time (epoch ms): the ingest clock plus `ingest.max_future_skew_ms`. @default no limit */
  notAfter?: number;
}

function parseJson(text: string): { ok: true; value: unknown } | { ok: false; reason: string } {
  try {
    // Rejects `__proto__` and `constructor.prototype` keys instead of letting them reach objects.
    return { ok: true, value: sjson.parse(text, undefined, { protoAction: 'error', constructorAction: 'error' }) };
  } catch (error) {
    const message = (error as Error).message;
    if (/prototype|__proto__|constructor/i.test(message)) return { ok: false, reason: `forbidden key: ${message}` };
    return { ok: false, reason: `not valid JSON: ${message}` };
  }
}

function eventIdOf(value: unknown): string | undefined {
  if (typeof value === 'object' && value !== null && 'event_id' in value) {
    const id = (value as { event_id: unknown }).event_id;
    if (typeof id === 'string') return id.slice(0, 128);
  }
  return undefined;
}

function reject(index: number, reason: string, raw: string, value?: unknown): RejectedInput {
  const eventId = value === undefined ? undefined : eventIdOf(value);
  return {
    index,
    ...(eventId === undefined ? {} : { event_id: eventId }),
    reason,
    raw: raw.length > DEAD_LETTER_RAW_LIMIT ? raw.slice(0, DEAD_LETTER_RAW_LIMIT) : raw,
    rawBytes: Buffer.byteLength(raw),
  };
}

/**
 * Reads a request body that is either a JSON array of events or NDJSON (one
 * event per line; a single JSON object is one-line NDJSON). Every item is
 * accepted or rejected with a reason; nothing throws.
 */
export function parseEventsBody(body: string, options: ParseEventsOptions): ParsedBody {
  const events: ParsedBody['events'] = [];
  const rejected: RejectedInput[] = [];
  const start = body.search(/\S/);
  if (start === -1) return { events, rejected, fatal: 'empty body: send a JSON array of events or NDJSON' };

  const judge = (index: number, raw: string, value: unknown): void => {
    const result = validateEvent(value, options.notAfter === undefined ? {} : { notAfter: options.notAfter, clockName: 'the ingest clock' });
    if (result.ok) events.push({ index, event: result.event });
    else rejected.push(reject(index, result.reason, raw, value));
  };

  if (body[start] === '[') {
    const parsed = parseJson(body);
    if (!parsed.ok) return { events, rejected, fatal: parsed.reason };
    if (!Array.isArray(parsed.value)) return { events, rejected, fatal: 'body must be a JSON array of events or NDJSON' };
    const items = parsed.value as unknown[];
    // Only a body larger than one event's limit can hold an oversize event; measure items only then.
    const measure = Buffer.byteLength(body) > options.maxEventBytes;
    items.forEach((item, index) => {
      if (measure) {
        const raw = JSON.stringify(item) ?? '';
        const bytes = Buffer.byteLength(raw);
        if (bytes > options.maxEventBytes) {
          rejected.push(reject(index, `event is ${bytes} bytes; the limit is ${options.maxEventBytes}`, raw, item));
          return;
        }
      }
      judge(index, '', item);
    });
    // Raw text of rejected array items is kept for the dead-letter row.
    for (const r of rejected) if (r.raw === '') r.raw = (JSON.stringify(items[r.index]) ?? '').slice(0, DEAD_LETTER_RAW_LIMIT);
    return { events, rejected };
  }

  let index = 0;
  for (const rawLine of body.split('\n')) {
    const line = rawLine.endsWith('\r') ? rawLine.slice(0, -1) : rawLine;
    if (line.trim() === '') continue;
    const i = index++;
    // UTF-8 uses at most 3 bytes per UTF-16 unit, so short lines skip the byte count.
    if (line.length * 3 > options.maxEventBytes) {
      const bytes = Buffer.byteLength(line);
      if (bytes > options.maxEventBytes) {
        rejected.push(reject(i, `event is ${bytes} bytes; the limit is ${options.maxEventBytes}`, line));
        continue;
      }
    }
    const parsed = parseJson(line);
    if (!parsed.ok) rejected.push(reject(i, parsed.reason, line));
    else judge(i, line, parsed.value);
  }
  if (index === 0) return { events, rejected, fatal: 'empty body: send a JSON array of events or NDJSON' };
  return { events, rejected };
}
