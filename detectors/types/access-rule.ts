import { z } from 'zod';
import type { Finding, PolicyType } from '../../core/detector.js';
import { coreError } from '../../core/errors.js';
import type { AgentEvent } from '../../core/event.js';
import { compileGlobs, compileTaggedGlobs, type GlobMatcher } from '../../core/glob.js';
import { TimeZoneSchema, type ValidatedPolicy } from '../../core/policy.js';
import type { Evidence } from '../../core/records.js';
import { agentLabel } from '../describe.js';
import { resourceOf } from '../resource.js';
import { DataProtectionConfigSchema, compileDataProtection, redactText } from './data-protection.js';
import {
  ALL_DAYS_MASK,
  dailyHours,
  dayMaskOf,
  describeDays,
  EndTimeSchema,
  formatMinuteOfDay,
  localTimeOf,
  minuteOfDay,
  shiftDayOf,
  StartTimeSchema,
  WEEKDAY_LABELS,
  weekdayOfDay,
  Weekdays,
  WeekdaySchema,
  ZoneClock,
  type DailyHours,
} from '../time-window.js';

/**
 * `access_rule`: an ordered list of resource/action rules, evaluated like a
 * firewall — the first rule that matches the event decides (`allow`, `deny`,
 * `require_approval`); when none matches, `default_effect` does. A rule matches
 * when every condition it states holds: resources, actions, roles, agents, and
 * its day/hour window in its time zone.
 */

// ---------------------------------------------------------------------------
// Config
// ---------------------------------------------------------------------------

export const AccessEffects = ['allow', 'deny', 'require_approval'] as const;
export type AccessEffect = (typeof AccessEffects)[number];
const EffectSchema = z.enum(AccessEffects, { error: `must be one of ${AccessEffects.join(', ')}` });

/**
 * A wildcard pattern in the `core/glob` language: `*` any run of characters
 * (slashes included), `?` one character, case-insensitive. Shapes that would
 * silently never match — and so turn a deny rule into no rule at all — are
 * rejected: blanks at either end (events' resources are trimmed), control
 * characters, and the brace/bracket syntax of shell globs (`{a,b}`, `[0-9]`),
 * which this language would read literally.
 */
function globSchema(maxChars: number): z.ZodType<string> {
  return z
    .string()
    .min(1, 'must not be empty')
    .max(maxChars, `must be at most ${maxChars} characters`)
    .superRefine((pattern, ctx) => {
      let message: string | undefined;
      if (pattern.trim() !== pattern) message = 'must not start or end with blanks';
      // eslint-disable-next-line no-control-regex -- rejecting control characters is the point
      else if (/[\u0000-\u001f\u007f]/.test(pattern)) message = 'must not contain control characters';
      else if (/[{}[\]]/.test(pattern)) {
        message = `"${pattern}": braces and brackets are not wildcards here (only * and ?); list alternatives as separate patterns`;
      }
      if (message !== undefined) ctx.addIssue({ code: 'custom', message });
    });
}

const RuleIdSchema = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/, 'must be 1–128 characters of letters, digits, . _ : - (starting with a letter or digit)');

const HoursSchema = z
  .strictObject({
    /** First minute the rule applies, local "HH:MM" (inclusive). */
    start: StartTimeSchema,
    /** End of the window, local "HH:MM" (exclusive); "24:00" is the end of the day; earlier than `start` = overnight. */
    end: EndTimeSchema,
  })
  .superRefine((hours, ctx) => {
    if (minuteOfDay(hours.start) === minuteOfDay(hours.end)) {
      ctx.addIssue({
        code: 'custom',
        path: ['end'],
        message: `must differ from start (${hours.start}); for the whole day use start "00:00" and end "24:00", or leave hours out`,
      });
    }
  });

export const AccessRuleSchema = z.strictObject({
  /** Named in reasons and evidence; unique within the policy. @default "rules[<index>]" */
  id: RuleIdSchema.optional(),
  /** Resource patterns; `"*"` also matches events without a resource. */
  resources: z.array(globSchema(1024)).min(1, 'must name at least one resource pattern ("*" for any)').max(1000),
  /** Action patterns (`file_delete`, `file_*`, `GET`); `"*"` also matches events without an action. @default ["*"] */
  actions: z.array(globSchema(256)).min(1, 'must name at least one action ("*" for any)').max(1000).default(['*']),
  /** What a match decides. */
  effect: EffectSchema,
  /** Roles the rule is for (wildcards allowed); an event without a role never matches a rule with `roles`. @default any role or none */
  roles: z.array(globSchema(256)).min(1, 'must name at least one role (leave roles out for any)').max(1000).optional(),
  /** Agent ids or names (wildcards allowed). @default every agent */
  agents: z.array(globSchema(256)).min(1, 'must name at least one agent (leave agents out for any)').max(10_000).optional(),
  /** Local days the rule applies on; with overnight `hours`, the day a window starts on. @default every day */
  days: z
    .array(WeekdaySchema)
    .min(1, 'must name at least one day (leave days out for every day)')
    .transform((days) => Weekdays.filter((d) => days.includes(d)))
    .optional(),
  /** Local daily window the rule applies in. @default the whole day */
  hours: HoursSchema.optional(),
  /** IANA time zone of `days` and `hours`. @default the policy document's `timezone` */
  timezone: TimeZoneSchema.optional(),
});
export type AccessRule = z.output<typeof AccessRuleSchema>;

export const AccessRuleConfigSchema = z
  .strictObject({
    /** Evaluated in order; the first matching rule decides. */
    rules: z.array(AccessRuleSchema).min(1, 'must hold at least one rule').max(10_000),
    /** What an event no rule matches gets. @default "allow" */
    default_effect: EffectSchema.default('allow'),
    /** The event attribute (`attributes.<name>`, a string) that holds the acting role. @default "role" */
    role_attribute: z.string().min(1).max(256).default('role'),
  })
  .superRefine((config, ctx) => {
    const seen = new Map<string, number>();
    config.rules.forEach((rule, index) => {
      if (rule.id === undefined) return;
      const earlier = seen.get(rule.id);
      if (earlier === undefined) seen.set(rule.id, index);
      else ctx.addIssue({ code: 'custom', path: ['rules', index, 'id'], message: `duplicate rule id "${rule.id}" (first used at rules[${earlier}])` });
    });
  });
export type AccessRuleConfig = z.output<typeof AccessRuleConfigSchema>;

// ---------------------------------------------------------------------------
// Resource paths
// ---------------------------------------------------------------------------

const URI_SCHEME = /^[a-z][a-z0-9+.-]*:\/\//i;
const FILE_URI = /^(file:\/\/[^/]*)(\/.*)?$/is;

/**
 * The form of a resource that rules are matched against. POSIX paths (and the
 * path of a `file://` URI) are normalised lexically — `.` and empty segments
 * dropped, `..` resolved — so `/tmp/../prod/db.sqlite` meets the rules for
 * `/prod/*` and `/workspace/../etc/passwd` does not pass as `/workspace/*`.
 * Other URIs are left alone: in `s3://bucket/a/../b` the dots are part of the key.
 */
export function normaliseResourcePath(resource: string): string {
  if (URI_SCHEME.test(resource)) {
    const file = FILE_URI.exec(resource);
    if (file === null) return resource;
    return `${file[1] ?? ''}${normalisePosixPath(file[2] ?? '/')}`;
  }
  return resource.includes('/') ? normalisePosixPath(resource) : resource;
}

/** `.` / `..` segments or an empty segment (`//`): a path that normalising would change. */
const NEEDS_NORMALISING = /(?:^|\/)\.{1,2}(?:\/|$)|\/\//;

function normalisePosixPath(path: string): string {
  // Most paths are already normal: no split and join on the hot path.
  if (path !== '' && !NEEDS_NORMALISING.test(path)) return path;
  const absolute = path.startsWith('/');
  const out: string[] = [];
  for (const segment of path.split('/')) {
    if (segment === '' || segment === '.') continue;
    if (segment === '..') {
      const last = out[out.length - 1];
      if (last !== undefined && last !== '..') out.pop();
      // Above the root is the root; above a relative start stays visible.
      else if (!absolute) out.push('..');
      continue;
    }
    out.push(segment);
  }
  const body = out.join('/');
  const trailing = path.endsWith('/') && body !== '' ? '/' : '';
  if (absolute) return `/${body}${trailing}`;
  return body === '' ? '.' : `${body}${trailing}`;
}

// ---------------------------------------------------------------------------
// Policy type
// ---------------------------------------------------------------------------

interface RuleWindow {
  clock: ZoneClock;
  /** Bit `i` set: weekday `i` (Monday = 0) is a day the rule applies on. */
  dayMask: number;
  hours: DailyHours | null;
  /** "22:00–06:00 Mon–Fri Europe/Berlin", for evidence. */
  label: string;
}

interface CompiledRule {
  /** The rule's id, or `rules[<index>]`. */
  name: string;
  index: number;
  effect: AccessEffect;
  /** null: `"*"`, any resource or none. */
  resources: GlobMatcher | null;
  /** null: `"*"`, any action or none. */
  actions: GlobMatcher | null;
  roles: GlobMatcher | null;
  agents: GlobMatcher | null;
  window: RuleWindow | null;
}

export interface CompiledAccessRule {
  rules: CompiledRule[];
  /** Indexes of the rules for any resource (`"*"`), ascending. */
  anyResourceRules: number[];
  /** Indexes of the rules with a resource pattern the (normalised) resource matches, ascending. */
  rulesForResource: (resource: string) => number[];
  defaultEffect: AccessEffect;
  roleAttribute: string;
}

/** The acting role: `attributes[roleAttribute]` when it is a non-blank string. */
function roleOf(event: AgentEvent, roleAttribute: string): string | undefined {
  const value = event.attributes?.[roleAttribute];
  if (typeof value !== 'string') return undefined;
  const role = value.trim();
  return role === '' ? undefined : role;
}

function compileWindow(rule: AccessRule, clocks: Map<string, ZoneClock>, documentZone: string, policyId: string, name: string): RuleWindow | null {
  if (rule.days === undefined && rule.hours === undefined) return null;
  const zone = rule.timezone ?? documentZone;
  let clock = clocks.get(zone);
  if (clock === undefined) {
    clock = new ZoneClock(zone);
    clocks.set(zone, clock);
  }
  const dayMask = rule.days === undefined ? ALL_DAYS_MASK : dayMaskOf(rule.days);
  let hours: DailyHours | null = null;
  if (rule.hours !== undefined) {
    hours = dailyHours(rule.hours.start, rule.hours.end);
    if (hours === null) throw coreError('AW_CORE_INVALID_CONFIG', `policy ${policyId}: rule ${name}: invalid hours ${rule.hours.start}–${rule.hours.end}`);
  }
  const hoursLabel = rule.hours === undefined ? '' : `${rule.hours.start}–${rule.hours.end} `;
  return { clock, dayMask, hours, label: `${hoursLabel}${describeDays(dayMask)} ${zone}` };
}

/** True when `value` is present and matched, or the list was `"*"` (null). */
function matchesOptional(matcher: GlobMatcher | null, value: string | undefined): boolean {
  if (matcher === null) return true;
  return value !== undefined && matcher(value);
}

function inWindow(window: RuleWindow, time: number): boolean {
  const { day, minute } = localTimeOf(window.clock, time);
  // An overnight window's small hours count for the day the window started on.
  const counted = window.hours === null ? day : shiftDayOf(window.hours, day, minute);
  return counted !== null && ((window.dayMask >> weekdayOfDay(counted)) & 1) === 1;
}

function ruleMatches(rule: CompiledRule, event: AgentEvent, resource: string | undefined, role: string | undefined): boolean {
  if (!matchesOptional(rule.actions, event.action)) return false;
  if (!matchesOptional(rule.resources, resource)) return false;
  if (rule.roles !== null && (role === undefined || !rule.roles(role))) return false;
  if (rule.agents !== null && !rule.agents(event.agent.id) && (event.agent.name === undefined || !rule.agents(event.agent.name))) return false;
  return rule.window === null || inWindow(rule.window, event.time);
}

/**
 * The first rule, in order, that matches. Only rules for any resource and
 * rules whose resource patterns match are tried (the index finds those), so
 * ten thousand rules cost a few lookups per event rather than a scan.
 */
function firstMatchingRule(c: CompiledAccessRule, event: AgentEvent, resource: string | undefined, role: string | undefined): CompiledRule | null {
  const any = c.anyResourceRules;
  const some = resource === undefined ? [] : c.rulesForResource(resource);
  // Both lists are ascending: merge them to try the candidates in rule order.
  let i = 0;
  let j = 0;
  while (i < any.length || j < some.length) {
    const fromAny = j >= some.length || (i < any.length && (any[i] as number) < (some[j] as number));
    const rule = c.rules[fromAny ? (any[i++] as number) : (some[j++] as number)] as CompiledRule;
    if (ruleMatches(rule, event, resource, role)) return rule;
  }
  return null;
}

/**
 * The built-in secret and personal-data scanners of `data_protection`: a
 * resource can be a whole command line (`curl -H "Authorization: Bearer sk-…"`),
 * so what a finding quotes is redacted first.
 */
const SECRET_SCAN = compileDataProtection(DataProtectionConfigSchema.parse({}));

function accessFinding(
  event: AgentEvent,
  c: CompiledAccessRule,
  rule: CompiledRule | null,
  rawResourceText: string | undefined,
  resourceText: string | undefined,
  roleText: string | undefined,
): Finding {
  const rawResource = rawResourceText === undefined ? undefined : redactText(rawResourceText, SECRET_SCAN);
  const resource = resourceText === undefined ? undefined : resourceText === rawResourceText ? rawResource : redactText(resourceText, SECRET_SCAN);
  const role = roleText === undefined ? undefined : redactText(roleText.slice(0, 256), SECRET_SCAN);
  const effect = rule === null ? c.defaultEffect : rule.effect;
  const verb = event.action ?? event.type;
  const shown = rawResource === undefined ? '' : ` on ${rawResource.length <= 256 ? rawResource : `${rawResource.slice(0, 255)}…`}`;
  const evidence: Evidence = {
    rule: rule === null ? 'default_effect' : rule.name,
    rule_index: rule === null ? -1 : rule.index,
    effect,
    action: verb,
  };
  if (rawResource !== undefined) evidence.resource = rawResource.slice(0, 512);
  if (resource !== undefined && resource !== rawResource) evidence.resource_normalised = resource.slice(0, 512);
  if (role !== undefined) evidence.role = role.slice(0, 256);
  let when = '';
  if (rule !== null && rule.window !== null) {
    const { day, minute } = localTimeOf(rule.window.clock, event.time);
    const localTime = formatMinuteOfDay(minute);
    const weekday = weekdayOfDay(day);
    evidence.local_time = localTime;
    evidence.weekday = Weekdays[weekday] ?? '';
    evidence.timezone = rule.window.clock.zoneName;
    evidence.rule_window = rule.window.label;
    when = ` at ${localTime} ${WEEKDAY_LABELS[weekday] ?? ''} ${rule.window.clock.zoneName}`;
  }
  const by = rule === null ? 'default_effect (no rule matched)' : `rule ${rule.name}`;
  const outcome = effect === 'deny' ? `denied by ${by}` : `which needs approval under ${by}`;
  const asRole = role === undefined ? '' : ` as ${role.slice(0, 64)}`;
  return {
    reason: `${agentLabel(event)}${asRole} tried ${verb}${shown}${when}, ${outcome}`,
    evidence,
    decision: effect === 'deny' ? 'deny' : 'require_approval',
  };
}

export const accessRulePolicy: PolicyType<AccessRuleConfig, CompiledAccessRule> = {
  type: 'access_rule',
  configSchema: AccessRuleConfigSchema,
  // AML.T0053 AI Agent Tool Invocation: an agent using its tools on resources
  // or at times its operators did not grant.
  defaultAtlas: ['AML.T0053'],

  compile(policy: ValidatedPolicy<AccessRuleConfig>, ctx): CompiledAccessRule {
    const clocks = new Map<string, ZoneClock>();
    const rules = policy.config.rules.map((rule, index): CompiledRule => {
      const name = rule.id ?? `rules[${index}]`;
      return {
        name,
        index,
        effect: rule.effect,
        resources: rule.resources.includes('*') ? null : compileGlobs(rule.resources),
        actions: rule.actions.includes('*') ? null : compileGlobs(rule.actions),
        roles: rule.roles === undefined ? null : compileGlobs(rule.roles),
        agents: rule.agents === undefined ? null : compileGlobs(rule.agents),
        window: compileWindow(rule, clocks, ctx.timezone, policy.id, name),
      };
    });
    const patterns = policy.config.rules.flatMap((rule, index) => (rule.resources.includes('*') ? [] : rule.resources.map((p) => [p, index] as const)));
    return {
      rules,
      anyResourceRules: rules.filter((r) => r.resources === null).map((r) => r.index),
      rulesForResource: compileTaggedGlobs(patterns),
      defaultEffect: policy.config.default_effect,
      roleAttribute: policy.config.role_attribute,
    };
  },

  decide(event, _results, c) {
    const rawResource = resourceOf(event);
    const resource = rawResource === undefined ? undefined : normaliseResourcePath(rawResource);
    const role = roleOf(event, c.roleAttribute);
    // First match wins, as in a firewall: order rules from specific to general.
    const rule = firstMatchingRule(c, event, resource, role);
    const effect = rule === null ? c.defaultEffect : rule.effect;
    if (effect === 'allow') return null;
    return accessFinding(event, c, rule, rawResource, resource, role);
  },
};
