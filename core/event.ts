import { z } from 'zod';
import { formatPath, problemsFromZod, type ValidationProblem } from './validation.js';

/** Event types of AgentEvent v1 (ARCHITECTURE.md, wire format). */
export const EventTypes = [
  'api_call',
  'resource_access',
  'tool_call',
  'mcp_connect',
  'capability_change',
  'key_rotation',
  'network_egress',
  'auth',
  'config_change',
] as const;
export type EventType = (typeof EventTypes)[number];

/** Default maximum encoded size of one event, in bytes. */
export const DEFAULT_MAX_EVENT_BYTES = 64 * 1024;

const shortText = z.string().min(1).max(256);
const text = z.string().max(4096);

/**
 * RFC 3339 timestamp (with `Z` or an offset) or epoch milliseconds; normalised
 * to epoch milliseconds. Bounded to years 1970–9999 so Date arithmetic and the
 * ClickHouse DateTime64 column both hold it.
 */
const eventTime = z
  .union([
    z.iso.datetime({ offset: true, message: 'must be an RFC 3339 timestamp or epoch milliseconds' }),
    z.number().int('must be an integer number of epoch milliseconds').min(0).max(253_402_300_799_999),
  ])
  .transform((value, ctx) => {
    const ms = typeof value === 'number' ? value : Date.parse(value);
    if (!Number.isFinite(ms) || ms < 0 || ms > 253_402_300_799_999) {
      ctx.addIssue({ code: 'custom', message: 'timestamp out of range' });
      return z.NEVER;
    }
    return ms;
  });

const attributeValue = z.union([z.string().max(4096), z.number(), z.boolean()]);
/** Most attributes an event may carry. */
const MAX_ATTRIBUTES = 256;

/** AgentEvent v1 — the normative wire format. Unknown top-level fields are ignored. */
export const AgentEventSchema = z.object({
  event_id: z.string().min(1).max(128),
  time: eventTime,
  tenant: z.string().min(1).max(128).default('default'),
  agent: z.object({
    id: shortText,
    name: shortText.optional(),
    type: shortText.optional(),
    version: shortText.optional(),
  }),
  type: z.enum(EventTypes),
  action: shortText.optional(),
  resource: text.optional(),
  source: z
    .object({ ip: z.string().max(64).optional(), host: shortText.optional(), user: shortText.optional() })
    .optional(),
  tool: z.object({ name: shortText, server: shortText.optional(), version: shortText.optional() }).optional(),
  mcp: z
    .object({
      server_id: shortText,
      url: text.optional(),
      trust_score: z.number().min(0).max(100).optional(),
      tools: z.array(shortText).max(1024).optional(),
      capabilities: z.array(shortText).max(1024).optional(),
    })
    .optional(),
  capabilities: z.array(shortText).max(1024).optional(),
  key: z.object({ fingerprint: shortText, algorithm: shortText.optional() }).optional(),
  network: z
    .object({
      domain: z.string().max(253).optional(),
      url: text.optional(),
      method: z.string().max(16).optional(),
      ip: z.string().max(64).optional(),
      port: z.number().int().min(0).max(65535).optional(),
    })
    .optional(),
  outcome: z.enum(['success', 'failure', 'denied']).optional(),
  duration_ms: z.number().min(0).max(86_400_000 * 365).optional(),
  content: z.object({ input: z.string().optional(), output: z.string().optional() }).optional(),
  attributes: z
    .record(z.string().max(256), attributeValue)
    .refine((r) => Object.keys(r).length <= MAX_ATTRIBUTES, `at most ${MAX_ATTRIBUTES} attributes`)
    .optional(),
});

/** A validated, normalised event: `time` is epoch milliseconds, `tenant` is filled in. */
export type AgentEvent = z.output<typeof AgentEventSchema>;
/** What a producer sends. */
export type AgentEventInput = z.input<typeof AgentEventSchema>;

export type EventValidation =
  | { ok: true; event: AgentEvent }
  | { ok: false; reason: string; problems: ValidationProblem[] };

/** Default of `ingest.max_future_skew_ms`: how far ahead of the receiver's clock an event's time may be. */
export const DEFAULT_MAX_FUTURE_SKEW_MS = 15 * 60_000;

export interface ValidateEventOptions {
  /**
   * Latest acceptable event time (epoch ms): the receiver's clock plus the
   * allowed skew. A later time is refused, since it would open windows no
   * present event can reach and hold state until then.
   */
  notAfter?: number;
  /** Names the reference clock in the reason, e.g. `the ingest clock`. @default "the receiver's clock" */
  clockName?: string;
}

/**
 * Problems a reason names; the rest are counted. A 6 KB event of three lists
 * of 1,024 numbers has 3,072 problems: naming them all made the reasons of a
 * 4 MiB body 140 MB, on dead-letter rows and in the HTTP answer.
 */
const REASON_PROBLEMS = 10;

/**
 * A UTF-16 surrogate without its pair, as a JSON `\ud800` escape produces.
 * Such text has no UTF-8 encoding: ClickHouse refuses the whole insert, and a
 * batch writer retrying it would hold back every event behind it.
 */
const LONE_SURROGATE = /\p{Cs}/u;

/**
 * `text` with every lone UTF-16 surrogate (from a `\ud800` escape, or half a
 * pair cut off) replaced by U+FFFD, so a reason, dead-letter text or id that
 * quotes input stays storable.
 */
export function storableText(text: string): string {
  return text.replace(/\p{Cs}/gu, '\uFFFD');
}

/** Path of the first string (or attribute key) of a validated event holding a lone surrogate. */
function loneSurrogatePath(value: unknown, path: readonly PropertyKey[]): PropertyKey[] | undefined {
  if (typeof value === 'string') return LONE_SURROGATE.test(value) ? [...path] : undefined;
  if (typeof value !== 'object' || value === null) return undefined;
  for (const [key, item] of Object.entries(value)) {
    const at = [...path, Array.isArray(value) ? Number(key) : key];
    if (LONE_SURROGATE.test(key)) return at;
    const found = loneSurrogatePath(item, at);
    if (found !== undefined) return found;
  }
  return undefined;
}

/**
 * Validates one decoded JSON value as AgentEvent v1. Never throws: bad input
 * gets a reason naming the path of each problem (the first 10; `problems`
 * holds them all).
 */
export function validateEvent(value: unknown, options: ValidateEventOptions = {}): EventValidation {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    const problems = [{ path: '(root)', message: 'event must be a JSON object' }];
    return { ok: false, reason: '(root): event must be a JSON object', problems };
  }
  // Counted before the schema, which would check every entry of a 200,000-key
  // object (seconds of a blocked event loop) before refusing it for its size.
  const { attributes } = value as { attributes?: unknown };
  if (typeof attributes === 'object' && attributes !== null && !Array.isArray(attributes) && hasMoreKeysThan(attributes, MAX_ATTRIBUTES)) {
    const message = `at most ${MAX_ATTRIBUTES} attributes`;
    return { ok: false, reason: `attributes: ${message}`, problems: [{ path: 'attributes', message }] };
  }
  const result = AgentEventSchema.safeParse(value);
  if (result.success) {
    const unpaired = loneSurrogatePath(result.data, []);
    if (unpaired !== undefined) {
      // The path may itself hold the surrogate (an attribute key).
      const path = storableText(formatPath(unpaired));
      const message = 'holds an unpaired UTF-16 surrogate (a lone \\uD800–\\uDFFF escape): text must be valid Unicode';
      return { ok: false, reason: `${path}: ${message}`, problems: [{ path, message }] };
    }
    const { notAfter } = options;
    if (notAfter !== undefined && result.data.time > notAfter) {
      const message = `${new Date(result.data.time).toISOString()} is later than ${new Date(notAfter).toISOString()}, the latest time ${options.clockName ?? "the receiver's clock"} accepts (ingest.max_future_skew_ms)`;
      return { ok: false, reason: `time: ${message}`, problems: [{ path: 'time', message }] };
    }
    return { ok: true, event: result.data };
  }
  const problems = problemsFromZod(result.error);
  const named = problems.length > REASON_PROBLEMS ? problems.slice(0, REASON_PROBLEMS) : problems;
  const more = problems.length - named.length;
  const reason = named.map((p) => `${p.path}: ${p.message}`).join('; ') + (more > 0 ? `; … and ${more} more problems` : '');
  // Paths quote attribute keys as sent.
  return { ok: false, reason: storableText(reason), problems };
}

function hasMoreKeysThan(object: object, limit: number): boolean {
  let n = 0;
  for (const key in object) if (Object.hasOwn(object, key) && ++n > limit) return true;
  return false;
}

/** Partition key of an event: tenant and agent id, so one agent's events stay in order on one partition. */
export function partitionKey(tenant: string, agentId: string): string {
  return `${tenant}/${agentId}`;
}
