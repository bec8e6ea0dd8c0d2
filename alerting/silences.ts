import { z } from 'zod';
import { Severities, type Severity } from '../core/decision.js';
import { compileGlobs } from '../core/glob.js';
import type { Alert, Silence, SilenceMatchers } from '../core/records.js';
import { problemsFromZod, type ValidationProblem } from '../core/validation.js';
import { AlertingError } from './errors.js';
import { nextVersion } from './row-version.js';

/** Longest a silence may last: muting for longer is a policy change, not a silence. */
export const MAX_SILENCE_DURATION_MS = 90 * 24 * 60 * 60 * 1000;

/** Latest epoch ms a time may name (DateTime64(3) holds it exactly; same bound as event times). */
const MAX_EPOCH_MS = 253_402_300_799_999;

const epochMs = z.number().int().min(0).max(MAX_EPOCH_MS);
const pattern = z.string().trim().min(1).max(256);

/** Matchers as a caller gives them; at least one, each non-empty. */
export const SilenceMatchersSchema = z
  .strictObject({
    policy_id: pattern.optional(),
    policy_type: z.string().trim().min(1).max(64).optional(),
    agent_id: pattern.optional(),
    severity: z.array(z.enum(Severities)).min(1).max(Severities.length * 4).optional(),
  })
  .refine((m) => m.policy_id !== undefined || m.policy_type !== undefined || m.agent_id !== undefined || m.severity !== undefined, {
    message: 'at least one matcher (policy_id, policy_type, agent_id, severity) is required',
  });

/** A silence to create, as an API caller gives it. */
export const SilenceInputSchema = z.strictObject({
  /** The tenant whose alerts it mutes; null: every tenant's. @default the caller's tenant, null for a caller bound to none */
  tenant: z.string().min(1).max(128).nullable().optional(),
  matchers: SilenceMatchersSchema,
  /** @default now; a time in the past counts as now */
  starts_at: epochMs.optional(),
  ends_at: epochMs,
  comment: z.string().trim().min(1).max(2000),
});

export type SilenceInput = z.input<typeof SilenceInputSchema>;

/** What {@link newSilence} needs besides the input. */
export interface NewSilenceContext {
  /** Who creates it (API key id, user). */
  by: string;
  now: number;
  silence_id: string;
  /** The caller's tenant: a bound caller may only silence its own tenant's alerts. null/undefined: bound to none. */
  callerTenant?: string | null;
}

/**
 * Validates a silence to create and fills in its defaults.
 *
 * @throws AlertingError `AW_ALERTING_INVALID_SILENCE` (problems in `details`)
 *   for a malformed input, an end not after the start (or now), or a span
 *   over {@link MAX_SILENCE_DURATION_MS}; `AW_ALERTING_FORBIDDEN` when a
 *   tenant-bound caller names another tenant or every tenant.
 */
export function newSilence(input: unknown, context: NewSilenceContext): Silence {
  const parsed = SilenceInputSchema.safeParse(input);
  if (!parsed.success) throw invalidSilence(problemsFromZod(parsed.error));
  const data = parsed.data;
  const caller = context.callerTenant ?? null;
  const tenant = data.tenant === undefined ? caller : data.tenant;
  if (caller !== null && tenant !== caller) {
    throw new AlertingError('AW_ALERTING_FORBIDDEN', `a caller bound to tenant ${JSON.stringify(caller)} can only silence that tenant's alerts`);
  }
  const problems: ValidationProblem[] = [];
  const createdBy = context.by.trim();
  if (createdBy === '') problems.push({ path: 'created_by', message: 'the author of a silence is required' });
  // Silences judge verdicts as they are processed: a start in the past means now.
  const startsAt = Math.max(data.starts_at ?? context.now, context.now);
  if (data.ends_at <= startsAt) {
    problems.push({ path: 'ends_at', message: `must be after starts_at and after now (${startsAt})` });
  } else if (data.ends_at - startsAt > MAX_SILENCE_DURATION_MS) {
    problems.push({ path: 'ends_at', message: `a silence lasts at most ${MAX_SILENCE_DURATION_MS} ms (90 days)` });
  }
  if (problems.length > 0) throw invalidSilence(problems);
  return {
    silence_id: context.silence_id,
    tenant,
    matchers: normaliseMatchers(data.matchers),
    starts_at: startsAt,
    ends_at: data.ends_at,
    comment: data.comment,
    created_by: createdBy,
    created_at: context.now,
    expired_at: null,
    expired_by: '',
    updated_at: context.now,
  };
}

function invalidSilence(problems: ValidationProblem[]): AlertingError {
  const summary = problems.map((p) => `${p.path}: ${p.message}`).join('; ');
  return new AlertingError('AW_ALERTING_INVALID_SILENCE', `invalid silence: ${summary}`, { details: problems });
}

/** Only the matchers given; severities unique, lowest first. */
function normaliseMatchers(m: z.output<typeof SilenceMatchersSchema>): SilenceMatchers {
  const out: SilenceMatchers = {};
  if (m.policy_id !== undefined) out.policy_id = m.policy_id;
  if (m.policy_type !== undefined) out.policy_type = m.policy_type;
  if (m.agent_id !== undefined) out.agent_id = m.agent_id;
  if (m.severity !== undefined) out.severity = Severities.filter((s) => m.severity?.includes(s));
  return out;
}

/** Whether the silence has ended (`ends_at`) or was expired by `now`. */
export function isSilenceOver(silence: Pick<Silence, 'ends_at' | 'expired_at'>, now: number): boolean {
  return now >= silence.ends_at || (silence.expired_at !== null && now >= silence.expired_at);
}

/** Whether the silence is in force at `now`: started, not over. */
export function isSilenceActive(silence: Pick<Silence, 'starts_at' | 'ends_at' | 'expired_at'>, now: number): boolean {
  return silence.starts_at <= now && !isSilenceOver(silence, now);
}

/**
 * The silence ended early at `now` by `by`; null when it is over already
 * (expiring is idempotent). A silence yet to start is expired before it starts.
 */
export function expireSilence(silence: Silence, by: string, now: number): Silence | null {
  if (isSilenceOver(silence, now)) return null;
  return { ...silence, expired_at: now, expired_by: by, updated_at: nextVersion(silence.updated_at, now) };
}

/** The fields of an alert a silence looks at. */
export type SilenceTarget = Pick<Alert, 'tenant' | 'policy_id' | 'policy_type' | 'agent_id' | 'severity'>;

/** Compiles a silence's tenant and matchers into one predicate (time is not judged). */
export function compileSilenceMatcher(silence: Pick<Silence, 'tenant' | 'matchers'>): (target: SilenceTarget) => boolean {
  const { tenant, matchers } = silence;
  const checks: ((target: SilenceTarget) => boolean)[] = [];
  if (matchers.policy_id !== undefined) {
    const policy = compileGlobs([matchers.policy_id]);
    checks.push((t) => policy(t.policy_id));
  }
  if (matchers.policy_type !== undefined) {
    const type = matchers.policy_type;
    checks.push((t) => t.policy_type === type);
  }
  if (matchers.agent_id !== undefined) {
    const agent = compileGlobs([matchers.agent_id]);
    checks.push((t) => agent(t.agent_id));
  }
  if (matchers.severity !== undefined) {
    const severities = new Set<Severity>(matchers.severity);
    checks.push((t) => severities.has(t.severity));
  }
  // A silence without matchers cannot be created; should one be read back, it
  // must not mute a whole tenant (or everything).
  if (checks.length === 0) return () => false;
  if (tenant !== null) checks.unshift((t) => t.tenant === tenant);
  return (target) => checks.every((check) => check(target));
}

/** Whether `silence` matches `target` and is in force at `now`. */
export function silenceMatches(silence: Silence, target: SilenceTarget, now: number): boolean {
  return isSilenceActive(silence, now) && compileSilenceMatcher(silence)(target);
}

/** What the alert book asks of the silences. */
export interface SilenceLookup {
  /** The silence muting `target` at `now`, if any. */
  silencing(target: SilenceTarget, now: number): Silence | undefined;
}

/**
 * The silences not over yet, in memory, with their matchers compiled: the
 * alerter judges every opened or bumped alert against them.
 */
export class SilenceBook implements SilenceLookup {
  private readonly byId = new Map<string, { silence: Silence; matches: (target: SilenceTarget) => boolean }>();

  constructor(silences: readonly Silence[] = []) {
    for (const silence of silences) this.put(silence);
  }

  /** Adds a silence or replaces its older version (a version not newer than the one held is ignored). */
  put(silence: Silence): void {
    const held = this.byId.get(silence.silence_id);
    if (held !== undefined && held.silence.updated_at > silence.updated_at) return;
    this.byId.set(silence.silence_id, { silence: { ...silence }, matches: compileSilenceMatcher(silence) });
  }

  /** Replaces every silence held (a reload from the store). */
  replaceAll(silences: readonly Silence[]): void {
    this.byId.clear();
    for (const silence of silences) this.put(silence);
  }

  get(silenceId: string): Silence | undefined {
    const held = this.byId.get(silenceId);
    return held === undefined ? undefined : { ...held.silence };
  }

  /**
   * The silence in force at `now` that matches `target`; of several, the one
   * ending last (then the lowest id), so the answer does not depend on the
   * order silences were added.
   */
  silencing(target: SilenceTarget, now: number): Silence | undefined {
    let best: Silence | undefined;
    for (const { silence, matches } of this.byId.values()) {
      if (!isSilenceActive(silence, now) || !matches(target)) continue;
      if (best === undefined || silence.ends_at > best.ends_at || (silence.ends_at === best.ends_at && silence.silence_id < best.silence_id)) {
        best = silence;
      }
    }
    return best === undefined ? undefined : { ...best };
  }

  /** Forgets the silences over at `now`. */
  prune(now: number): void {
    for (const [id, { silence }] of this.byId) if (isSilenceOver(silence, now)) this.byId.delete(id);
  }

  size(): number {
    return this.byId.size;
  }
}
