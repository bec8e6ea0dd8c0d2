import { z } from 'zod';
import { Severities } from '../core/decision.js';
import { DeliverySinkKinds } from '../core/ports.js';

/** Grammar of a sink name: it goes into notification ids, logs and metrics labels. */
export const SINK_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;
/** HTTP header name (RFC 9110 token). */
const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
/** Headers the delivery sets itself; configuring them would break the idempotency contract or the body. */
const RESERVED_HEADERS: ReadonlySet<string> = new Set(['content-type', 'content-length', 'idempotency-key', 'host', 'transfer-encoding']);

/** Re-notifies an Alertmanager sink's alerts this often unless configured: below Alertmanager's default `resolve_timeout` of 5 minutes, after which an alert without `endsAt` that was not re-sent is resolved. */
export const ALERTMANAGER_DEFAULT_REPEAT_MINUTES = 4;

const HttpUrlSchema = z
  .string()
  .url()
  .refine((value) => /^https?:$/.test(new URL(value).protocol), 'must be an http:// or https:// URL')
  // fetch refuses URLs with credentials; say so at start rather than at every attempt.
  .refine((value) => new URL(value).username === '' && new URL(value).password === '', 'must not hold credentials (user:password@); put them in headers');

const BackoffSchema = z
  .strictObject({
    /** Ceiling of the first retry's delay, ms (each retry waits a random time below its ceiling: full jitter). @default 1000 */
    initial_ms: z.number().int().min(1).max(3_600_000).default(1_000),
    /** Largest ceiling, ms: ceilings double per attempt up to it. @default 300000 */
    max_ms: z.number().int().min(1).max(86_400_000).default(300_000),
  })
  .refine((b) => b.max_ms >= b.initial_ms, { message: 'must be ≥ initial_ms', path: ['max_ms'] });

const MatchSchema = z.strictObject({
  /** Only alerts of these severities (the alert's, when the notification is made). @default every severity */
  severities: z.array(z.enum(Severities)).min(1).optional(),
  /** Only alerts of policies whose id matches one of these patterns (`*`, `?`, case-insensitive). @default every policy */
  policies: z.array(z.string().min(1).max(256)).min(1).optional(),
  /** Only alerts of tenants matching one of these patterns. @default every tenant */
  tenants: z.array(z.string().min(1).max(256)).min(1).optional(),
});

/** One delivery sink and the alerts routed to it. */
export const DeliverySinkSchema = z
  .strictObject({
    /** Unique among the sinks; part of every notification id, so renaming a sink re-sends its open alerts as new. */
    name: z.string().regex(SINK_NAME, `must match ${String(SINK_NAME)}`),
    /** `webhook`: JSON POST; `alertmanager`: Prometheus Alertmanager `POST /api/v2/alerts`; `slack`: Slack-compatible incoming webhook. */
    kind: z.enum(DeliverySinkKinds),
    /** Where to POST. May hold a secret (Slack hook paths do): it is never logged or stored, only its host. For Alertmanager, the full endpoint (`http://am:9093/api/v2/alerts`). */
    url: HttpUrlSchema,
    /** Extra request headers (`Authorization`, …); never logged or stored. @default {} */
    headers: z
      .record(z.string().regex(HEADER_NAME, 'must be an HTTP header name'), z.string().max(8192).regex(/^[^\r\n\0]*$/, 'must not hold line breaks'))
      .default({})
      .refine((h) => Object.keys(h).every((k) => !RESERVED_HEADERS.has(k.toLowerCase())), `must not set ${[...RESERVED_HEADERS].join(', ')}`),
    /** Body of a `webhook`: `agentwatch` (`{ id, change, alert, … }`) or `ocsf` (an OCSF Detection Finding). Other kinds have their own. @default "agentwatch" */
    payload: z.enum(['agentwatch', 'ocsf']).optional(),
    /** Which alerts go to this sink; every criterion given must match. @default {} (every alert) */
    match: MatchSchema.prefault({}),
    /** Longest one attempt may take, ms. @default 10000 */
    timeout_ms: z.number().int().min(100).max(120_000).default(10_000),
    /** Attempts before a notification is dead-lettered (`failed`). @default 8 */
    max_attempts: z.number().int().min(1).max(100).default(8),
    backoff: BackoffSchema.prefault({}),
    /**
     * Re-notify an alert this often while it stays open and unacknowledged
     * (Alertmanager's `repeat_interval`; for an `alertmanager` sink: while it
     * is open or acknowledged, since Alertmanager resolves alerts that are
     * not re-sent). 0: never. Counted from the sink's latest notification of
     * the alert. @default 0, or 4 for `alertmanager` (below its 5-minute `resolve_timeout`)
     */
    repeat_interval_minutes: z.number().int().min(0).max(43_200).optional(),
  })
  .superRefine((sink, ctx) => {
    if (sink.payload !== undefined && sink.kind !== 'webhook') {
      ctx.addIssue({ code: 'custom', path: ['payload'], message: `only a webhook sink takes a payload option (this one is ${sink.kind})` });
    }
  })
  .transform((sink) => ({
    ...sink,
    payload: sink.payload ?? ('agentwatch' as const),
    repeat_interval_minutes: sink.repeat_interval_minutes ?? (sink.kind === 'alertmanager' ? ALERTMANAGER_DEFAULT_REPEAT_MINUTES : 0),
  }));

/**
 * Alert delivery (`alerting.delivery` in the config file): where alert
 * notifications go, how hard to try. Parsed once at start; errors name the
 * key (`sinks[1].url: must be an http:// or https:// URL`).
 */
export const DeliveryConfigSchema = z
  .strictObject({
    /** Sinks, each with its routing; an alert change goes to every sink it matches. @default [] */
    sinks: z
      .array(DeliverySinkSchema)
      .max(100)
      .default([])
      .superRefine((sinks, ctx) => {
        const seen = new Set<string>();
        for (const [index, sink] of sinks.entries()) {
          if (seen.has(sink.name)) ctx.addIssue({ code: 'custom', path: [index, 'name'], message: `duplicate sink name ${JSON.stringify(sink.name)}` });
          seen.add(sink.name);
        }
      }),
    /** Most attempts in flight at once, over all sinks. @default 8 */
    concurrency: z.number().int().min(1).max(256).default(8),
    /** Public base URL of the API (`https://agentwatch.example.com`); when set, notifications link to `<public_url>/v1/alerts/<id>`. @default none */
    public_url: HttpUrlSchema.optional(),
  })
  .prefault({});

export type DeliveryConfig = Readonly<z.output<typeof DeliveryConfigSchema>>;
export type DeliverySinkConfig = Readonly<z.output<typeof DeliverySinkSchema>>;
