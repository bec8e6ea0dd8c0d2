import { z } from 'zod';
import { EventTypes } from './event.js';
import { PolicyActions, Severities } from './decision.js';
import { formatPath, problemsFromZod, type ValidationProblem } from './validation.js';

/** True when `name` is an IANA time zone this runtime knows. */
export function isValidTimeZone(name: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: name });
    return true;
  } catch {
    return false;
  }
}

export const TimeZoneSchema = z.string().refine(isValidTimeZone, { message: 'must be an IANA time zone such as Europe/Berlin' });

const PolicyId = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/, 'must be 1–128 characters of letters, digits, . _ : - (starting with a letter or digit)');

const AtlasId = z.string().regex(/^AML\.T\d{4}(\.\d{3})?$/, 'must be a MITRE ATLAS technique id such as AML.T0034');

/** Optional scope of a policy; an omitted field matches everything. */
export const PolicyMatchSchema = z.strictObject({
  /** Agent ids or names, wildcards allowed. */
  agents: z.array(z.string().min(1).max(256)).max(10_000).optional(),
  /** Event types the policy looks at. */
  event_types: z.array(z.enum(EventTypes)).min(1).optional(),
  /** Tenants the policy applies to (wildcards allowed). */
  tenants: z.array(z.string().min(1).max(256)).max(10_000).optional(),
});
export type PolicyMatch = z.infer<typeof PolicyMatchSchema>;

const RFC3339 = /^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})$/;

/**
 * Epoch milliseconds of an RFC 3339 date-time with an explicit offset
 * (`2026-12-31T23:59:59Z`, `2026-12-31T18:00:00+01:00`); undefined for
 * anything else. The calendar fields are checked because `Date.parse`
 * silently rolls `02-30` over into March.
 */
export function parseRfc3339(text: string): number | undefined {
  const m = RFC3339.exec(text);
  if (m === null) return undefined;
  const [year, month, day, hour, minute, second] = m.slice(1, 7).map(Number) as [number, number, number, number, number, number];
  const ms = Date.parse(text.replace(' ', 'T'));
  if (Number.isNaN(ms) || month < 1 || month > 12 || hour > 23 || minute > 59 || second > 59) return undefined;
  if (day < 1 || day > new Date(Date.UTC(year, month, 0)).getUTCDate()) return undefined;
  return ms;
}

/**
 * One approved exception to a policy: events of the listed agents (and,
 * optionally, only these event types / resources) are let through by the
 * policy, with a verdict recording which exception applied. Expiry is judged
 * against the event time, so a replay decides exactly as the first run did.
 */
export const PolicyExceptionSchema = z.strictObject({
  /** Recorded on verdicts; default `<policy id>/exceptions[<index>]`. */
  id: PolicyId.optional(),
  /** Agent ids or names, wildcards allowed (as in `match.agents`). */
  agents: z.array(z.string().min(1).max(256)).min(1).max(10_000),
  /** Why the exception exists (the business justification). */
  reason: z.string().trim().min(1, 'must say why the exception exists').max(2000),
  /** Who approved it (person or ticket). */
  approved_by: z.string().trim().min(1, 'must name who approved the exception').max(256),
  /** RFC 3339 date-time; the exception applies to events strictly before it. Omitted: no expiry. */
  expires: z
    .string()
    .refine((v) => parseRfc3339(v) !== undefined, { message: 'must be an RFC 3339 date-time with offset such as 2026-12-31T23:59:59Z' })
    .optional(),
  /** Only events of these types are excepted; omitted: every type the policy sees. */
  event_types: z.array(z.enum(EventTypes)).min(1).optional(),
  /** Only events whose `resource` matches one of these wildcards; omitted: any resource (or none). */
  resources: z.array(z.string().min(1).max(1024)).min(1).max(10_000).optional(),
});
export type PolicyException = z.output<typeof PolicyExceptionSchema>;
/** An exception after parsing: its id is always set. */
export type ValidatedPolicyException = PolicyException & { id: string };

/** The common fields of one policy; `config` is validated by the policy type's own schema. */
export const PolicyCommonSchema = z.strictObject({
  id: PolicyId,
  type: z.string().min(1).max(64),
  description: z.string().max(2000).optional(),
  enabled: z.boolean().default(true),
  severity: z.enum(Severities).default('medium'),
  action: z.enum(PolicyActions).default('alert'),
  match: PolicyMatchSchema.optional(),
  config: z.record(z.string(), z.unknown()).default({}),
  atlas: z.array(AtlasId).max(100).optional(),
  /** Approved exceptions; see {@link PolicyExceptionSchema}. */
  exceptions: z.array(PolicyExceptionSchema).max(1000).optional(),
});
export type PolicyCommon = z.output<typeof PolicyCommonSchema>;

/**
 * An entry of an including document that adjusts a policy of an included
 * pack instead of replacing it: it has no `type`, only the id and what changes
 * (switch it on/off, give it exceptions).
 */
export const PolicyPatchSchema = z.strictObject({
  id: PolicyId,
  enabled: z.boolean().optional(),
  exceptions: z.array(PolicyExceptionSchema).max(1000).optional(),
});
export type PolicyPatch = z.output<typeof PolicyPatchSchema>;

export const PolicyDocumentShapeSchema = z.strictObject({
  version: z.literal(1),
  mode: z.enum(['monitoring', 'strict']).default('monitoring'),
  timezone: TimeZoneSchema.default('UTC'),
  /** Policy packs merged before this document's own policies (resolved by the file loader). */
  include: z.array(z.string().trim().min(1).max(1024)).max(100).optional(),
  policies: z.array(z.unknown()).max(10_000).default([]),
});

/** A policy whose `config` has been validated and defaulted by its type. */
export interface ValidatedPolicy<C = unknown> extends Omit<PolicyCommon, 'config' | 'exceptions'> {
  config: C;
  exceptions?: ValidatedPolicyException[];
}

export interface PolicyDocument {
  version: 1;
  mode: 'monitoring' | 'strict';
  timezone: string;
  policies: ValidatedPolicy[];
}

/** What the document parser needs to know about policy types: their config schemas. */
export interface PolicyConfigSchemas {
  get(type: string): z.ZodType | undefined;
  types(): string[];
}

export type PolicyDocumentResult = { ok: true; document: PolicyDocument } | { ok: false; problems: ValidationProblem[] };

/** One policy file's own content, validated; its `include` list is not resolved yet. */
export interface PolicyFile {
  mode: PolicyDocument['mode'];
  timezone: string;
  /** Keys the file set itself (an included file may not set `mode` or `timezone`). */
  explicit: { mode: boolean; timezone: boolean };
  include: string[];
  /** Complete policies, in file order. */
  policies: ValidatedPolicy[];
  /** Adjustments of included policies (entries without `type`), with their index in `policies:`. */
  patches: { index: number; patch: Omit<PolicyPatch, 'exceptions'> & { exceptions?: ValidatedPolicyException[] } }[];
}

export type PolicyFileResult = { ok: true; file: PolicyFile } | { ok: false; problems: ValidationProblem[] };

/**
 * Validates one decoded policy file on its own: the shape, every policy's
 * common fields (exceptions included), its type-specific config, and id
 * uniqueness within the file. When the file has an `include` list, entries
 * without `type` are patches of included policies (checked by
 * {@link mergeIncludedPolicies}). Every problem names its path, e.g.
 * `policies[3].config.window_minutes: Too small: expected number to be >=1`.
 */
export function parsePolicyFile(raw: unknown, schemas: PolicyConfigSchemas): PolicyFileResult {
  const shape = PolicyDocumentShapeSchema.safeParse(raw);
  if (!shape.success) return { ok: false, problems: problemsFromZod(shape.error) };
  const include = shape.data.include ?? [];
  const rawObject = raw as Record<string, unknown>;
  const problems: ValidationProblem[] = [];
  const policies: ValidatedPolicy[] = [];
  const patches: PolicyFile['patches'] = [];
  const seen = new Map<string, number>();
  const checkUniqueId = (id: string, index: number): void => {
    const earlier = seen.get(id);
    if (earlier !== undefined) {
      problems.push({ path: `policies[${index}].id`, message: `duplicate policy id "${id}" (first used at policies[${earlier}])` });
    } else {
      seen.set(id, index);
    }
  };
  shape.data.policies.forEach((rawPolicy, index) => {
    const root = `policies[${index}]`;
    if (include.length > 0 && typeof rawPolicy === 'object' && rawPolicy !== null && !('type' in rawPolicy)) {
      const patch = PolicyPatchSchema.safeParse(rawPolicy);
      if (!patch.success) {
        problems.push(...problemsFromZod(patch.error, root));
        return;
      }
      checkUniqueId(patch.data.id, index);
      const exceptions = withExceptionIds(patch.data.id, patch.data.exceptions, root, problems);
      const { exceptions: _raw, ...switches } = patch.data;
      patches.push({ index, patch: { ...switches, ...(exceptions === undefined ? {} : { exceptions }) } });
      return;
    }
    const common = PolicyCommonSchema.safeParse(rawPolicy);
    if (!common.success) {
      problems.push(...problemsFromZod(common.error, root));
      return;
    }
    const policy = common.data;
    checkUniqueId(policy.id, index);
    const exceptions = withExceptionIds(policy.id, policy.exceptions, root, problems);
    const schema = schemas.get(policy.type);
    if (schema === undefined) {
      problems.push({
        path: `${root}.type`,
        message: `unknown policy type "${policy.type}" (known: ${schemas.types().join(', ')})`,
      });
      return;
    }
    const config = schema.safeParse(policy.config);
    if (!config.success) {
      problems.push(...problemsFromZod(config.error, `${root}.config`));
      return;
    }
    const { exceptions: _raw, ...rest } = policy;
    policies.push({ ...rest, config: config.data, ...(exceptions === undefined ? {} : { exceptions }) });
  });
  if (problems.length > 0) return { ok: false, problems };
  return {
    ok: true,
    file: {
      mode: shape.data.mode,
      timezone: shape.data.timezone,
      explicit: { mode: rawObject.mode !== undefined, timezone: rawObject.timezone !== undefined },
      include,
      policies,
      patches,
    },
  };
}

/** Gives every exception its id (default `<policy id>/exceptions[<i>]`) and rejects duplicates. */
function withExceptionIds(
  policyId: string,
  exceptions: readonly PolicyException[] | undefined,
  root: string,
  problems: ValidationProblem[],
): ValidatedPolicyException[] | undefined {
  if (exceptions === undefined) return undefined;
  const ids = new Map<string, number>();
  return exceptions.map((exception, i) => {
    const id = exception.id ?? `${policyId}/exceptions[${i}]`;
    const earlier = ids.get(id);
    if (earlier !== undefined) {
      problems.push({ path: `${root}.exceptions[${i}].id`, message: `duplicate exception id "${id}" (first used at exceptions[${earlier}])` });
    } else {
      ids.set(id, i);
    }
    return { ...exception, id };
  });
}

/** The policies one `include` entry contributed (already merged with its own includes). */
export interface IncludedPolicies {
  /** How problems name the included file, e.g. `packs/hipaa.yaml` or `pack:strict`. */
  label: string;
  policies: ValidatedPolicy[];
}

export type MergeResult = { ok: true; policies: ValidatedPolicy[] } | { ok: false; problems: ValidationProblem[] };

/**
 * Merges a file's included policies with its own. Order: the included
 * policies (in `include` order), then the file's own. A complete policy of the
 * file with the id of an included one replaces it in its place; a patch (an
 * entry without `type`) switches an included policy on or off and/or replaces
 * its exceptions. Two included files defining the same id is an error: which
 * one should win is the including file's decision, made by an override.
 */
export function mergeIncludedPolicies(included: readonly IncludedPolicies[], file: PolicyFile): MergeResult {
  const problems: ValidationProblem[] = [];
  const merged: ValidatedPolicy[] = [];
  const slot = new Map<string, { index: number; label: string }>();
  included.forEach((source, includeIndex) => {
    for (const policy of source.policies) {
      const earlier = slot.get(policy.id);
      // The very same object: one file reached through two includes, merged once.
      if (earlier !== undefined && merged[earlier.index] === policy) continue;
      if (earlier !== undefined) {
        problems.push({
          path: `include[${includeIndex}]`,
          message: `policy id "${policy.id}" is defined by both ${earlier.label} and ${source.label}; override it in this document to choose`,
        });
        continue;
      }
      slot.set(policy.id, { index: merged.length, label: source.label });
      merged.push(policy);
    }
  });
  const own = new Set<string>();
  for (const policy of file.policies) {
    own.add(policy.id);
    const at = slot.get(policy.id);
    if (at === undefined) merged.push(policy);
    else merged[at.index] = policy;
  }
  for (const { index, patch } of file.patches) {
    const at = slot.get(patch.id);
    if (at === undefined || own.has(patch.id)) {
      problems.push({
        path: `policies[${index}].type`,
        message: `required: "${patch.id}" is not a policy of an included pack, so this entry cannot be a switch or exception override`,
      });
      continue;
    }
    const target = merged[at.index] as ValidatedPolicy;
    merged[at.index] = {
      ...target,
      ...(patch.enabled === undefined ? {} : { enabled: patch.enabled }),
      ...(patch.exceptions === undefined ? {} : { exceptions: patch.exceptions }),
    };
  }
  return problems.length > 0 ? { ok: false, problems } : { ok: true, policies: merged };
}

/**
 * Validates a decoded policy document that includes nothing (see
 * {@link parsePolicyFile}); documents with `include` are resolved by the file
 * loader (`detectors/policy-loader.ts`), which reads the included files.
 */
export function parsePolicyDocument(raw: unknown, schemas: PolicyConfigSchemas): PolicyDocumentResult {
  const parsed = parsePolicyFile(raw, schemas);
  if (!parsed.ok) return parsed;
  const { file } = parsed;
  if (file.include.length > 0) {
    return { ok: false, problems: [{ path: 'include', message: 'included packs are resolved when loading a file (loadPolicyFile / parsePolicyText)' }] };
  }
  return { ok: true, document: { version: 1, mode: file.mode, timezone: file.timezone, policies: file.policies } };
}

export { formatPath };
