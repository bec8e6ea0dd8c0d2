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
  agents: z.array(z.string().min(1)).max(10_000).optional(),
  /** Event types the policy looks at. */
  event_types: z.array(z.enum(EventTypes)).min(1).optional(),
  /** Tenants the policy applies to (wildcards allowed). */
  tenants: z.array(z.string().min(1)).optional(),
});
export type PolicyMatch = z.infer<typeof PolicyMatchSchema>;

/** The common fields of one policy; `config` is validated by the policy type's own schema. */
export const PolicyCommonSchema = z.strictObject({
  id: PolicyId,
  type: z.string().min(1),
  description: z.string().max(2000).optional(),
  enabled: z.boolean().default(true),
  severity: z.enum(Severities).default('medium'),
  action: z.enum(PolicyActions).default('alert'),
  match: PolicyMatchSchema.optional(),
  config: z.record(z.string(), z.unknown()).default({}),
  atlas: z.array(AtlasId).optional(),
});
export type PolicyCommon = z.output<typeof PolicyCommonSchema>;

export const PolicyDocumentShapeSchema = z.strictObject({
  version: z.literal(1),
  mode: z.enum(['monitoring', 'strict']).default('monitoring'),
  timezone: TimeZoneSchema.default('UTC'),
  policies: z.array(z.unknown()).max(10_000).default([]),
});

/** A policy whose `config` has been validated and defaulted by its type. */
export interface ValidatedPolicy<C = unknown> extends Omit<PolicyCommon, 'config'> {
  config: C;
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

/**
 * Validates a decoded policy document: the shape, every policy's common fields,
 * its type-specific config, and id uniqueness. Every problem names its path,
 * e.g. `policies[3].config.window_minutes: Too small: expected number to be >=1`.
 */
export function parsePolicyDocument(raw: unknown, schemas: PolicyConfigSchemas): PolicyDocumentResult {
  const shape = PolicyDocumentShapeSchema.safeParse(raw);
  if (!shape.success) return { ok: false, problems: problemsFromZod(shape.error) };
  const problems: ValidationProblem[] = [];
  const policies: ValidatedPolicy[] = [];
  const seen = new Map<string, number>();
  shape.data.policies.forEach((rawPolicy, index) => {
    const root = `policies[${index}]`;
    const common = PolicyCommonSchema.safeParse(rawPolicy);
    if (!common.success) {
      problems.push(...problemsFromZod(common.error, root));
      return;
    }
    const policy = common.data;
    const earlier = seen.get(policy.id);
    if (earlier !== undefined) {
      problems.push({ path: `${root}.id`, message: `duplicate policy id "${policy.id}" (first used at policies[${earlier}])` });
    } else {
      seen.set(policy.id, index);
    }
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
    policies.push({ ...policy, config: config.data });
  });
  if (problems.length > 0) return { ok: false, problems };
  return {
    ok: true,
    document: { version: 1, mode: shape.data.mode, timezone: shape.data.timezone, policies },
  };
}

export { formatPath };
