/**
 * Hostile policy documents: malformed YAML, unknown types and keys, values of
 * the wrong type, alias bombs, deep nesting, huge strings and lists, and
 * regular expressions and globs chosen to backtrack. Whatever comes in, the
 * loaders either accept it — and the document compiles into an engine that
 * judges events — or refuse it with problems that name a path; they throw
 * nothing else, and they answer quickly. A refused document never replaces
 * the one in force.
 *
 * Bounds on time are generous (seconds where milliseconds are measured): they
 * catch exponential or quadratic blow-ups, not slow machines.
 */
import { readdirSync, readFileSync } from 'node:fs';
import fc from 'fast-check';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { stringify as toYaml } from 'yaml';
import { z } from 'zod';
import { EventTypes, type AgentEvent, type AgentEventInput } from '../core/event.js';
import { compileDomainPatterns, compileGlobs, compileTaggedGlobs, wildcardMatch } from '../core/glob.js';
import { parsePolicyDocument, type PolicyDocument } from '../core/policy.js';
import type { ValidationProblem } from '../core/validation.js';
import { MemoryPolicyVersionStore } from '../storage/clickhouse/policy-versions.js';
import { makeEvent } from '../test/support/events.js';
import { evaluateBatchSync, PolicyEngine } from './engine.js';
import { PolicyAdmin, PolicyAdminError } from './policy-admin.js';
import { decodePolicyYaml, parsePolicyText, PolicyValidationError } from './policy-loader.js';
import { defaultRegistry } from './registry.js';
import { MemoryStateStore } from './state/memory/memory-store.js';

/** Per document: parse, validate, compile and judge the probe events. Catches blow-ups only. */
const CASE_BOUND_MS = 2_000;

const yieldToVitest = () => new Promise<void>((resolve) => setImmediate(resolve));

const DEFAULT_YAML = readFileSync(new URL('../policies/default.yaml', import.meta.url), 'utf8');
const decoded = (text: string): Record<string, unknown> => {
  const result = decodePolicyYaml(text);
  if (!result.ok) throw new Error(`fixture does not decode: ${JSON.stringify(result.problems)}`);
  return result.value as Record<string, unknown>;
};
const DEFAULT_SOURCE = decoded(DEFAULT_YAML);
const PACK_SOURCES = readdirSync(new URL('../policies/packs/', import.meta.url))
  .filter((name) => name.endsWith('.yaml'))
  .map((name) => decoded(readFileSync(new URL(`../policies/packs/${name}`, import.meta.url), 'utf8')));
const PACK_NAMES = readdirSync(new URL('../policies/packs/', import.meta.url)).map((name) => `pack:${name.replace(/\.yaml$/, '')}`);
const TYPES = defaultRegistry.types();

// ---------------------------------------------------------------------------
// Probe events: every event type, every field some policy reads
// ---------------------------------------------------------------------------

const TUESDAY_10H = Date.UTC(2026, 10, 24, 10, 0, 0);
const SUNDAY_3H = Date.UTC(2026, 10, 22, 3, 0, 0);

function probeEvents(): AgentEvent[] {
  const rich: Partial<AgentEventInput> = {
    action: 'file_delete',
    resource: '/prod/../etc/shadow',
    source: { ip: '203.0.113.9', host: 'laptop-7', user: 'ana' },
    tool: { name: 'delete_repository', server: 'github', version: '1.2.3' },
    mcp: { server_id: 'tunnel', url: 'https://x.ngrok-free.app/mcp', trust_score: 12, tools: ['exec_shell', 'read_file'], capabilities: ['sampling'] },
    capabilities: ['shell_execute', 'file_read', 'admin:delete'],
    key: { fingerprint: 'SHA256:abc', algorithm: 'ed25519' },
    network: { domain: 'paste.exfil-drop.net', url: 'https://paste.exfil-drop.net/x', method: 'POST', ip: '175.45.176.1', port: 443 },
    outcome: 'failure',
    duration_ms: 40_000,
    content: { input: 'card 4111 1111 1111 1111, mail a@b.example, AKIAIOSFODNN7EXAMPLE', output: 'aaaa'.repeat(256) },
    attributes: { role: 'intern', tier: 3, internal: false },
  };
  const events: AgentEvent[] = [];
  for (const type of EventTypes) {
    events.push(makeEvent({ type, time: TUESDAY_10H }));
    events.push(makeEvent({ ...rich, type, time: SUNDAY_3H, agent: { id: 'agent-x', name: 'shadow-gpt' } }));
    events.push(makeEvent({ ...rich, type, time: TUESDAY_10H, tenant: 'acme', agent: { id: 'ops-1', name: 'cursor' }, tool: { name: 'query' }, source: { ip: '::ffff:10.1.2.3' } }));
  }
  return events;
}
const PROBES = probeEvents();

/** Compiles an accepted document and judges the probes on fresh state; returns what strict mode would decide per event. */
function judge(document: PolicyDocument, events: readonly AgentEvent[] = PROBES): string[] {
  const engine = new PolicyEngine(document, defaultRegistry);
  const outcome = evaluateBatchSync(engine, new MemoryStateStore(), events);
  expect(outcome.outcomes).toHaveLength(events.length);
  return outcome.outcomes.map((o) => `${o.would_decide}:${o.matched_policies.join(',')}`);
}

// ---------------------------------------------------------------------------
// Outcomes: a document, or problems that name a path
// ---------------------------------------------------------------------------

/**
 * What a problem's path looks like: the document as a whole, a YAML position,
 * the root, or a path from a top-level key (`policies[3].config.threshold`).
 */
const PROBLEM_PATH = /^(?:\(document\)|\(root\)|line \d+(?:, column \d+)?|(?:version|mode|timezone|include|policies)(?:\[\d+\]|\.[^[\]]+)*)$/;

function expectNamedProblems(problems: readonly ValidationProblem[], message: string): void {
  expect(problems.length).toBeGreaterThan(0);
  for (const p of problems) {
    expect(p.path, message).toMatch(PROBLEM_PATH);
    expect(typeof p.message).toBe('string');
    expect(p.message.length).toBeGreaterThan(0);
    expect(message).toContain(`${p.path}: `);
  }
}

type Outcome = { ok: true; document: PolicyDocument } | { ok: false; problems: ValidationProblem[]; message: string };

/** The file/hot-reload/worker path: text in, a document or a PolicyValidationError out. */
function loadText(text: string): Outcome {
  try {
    return { ok: true, document: parsePolicyText(text, 'hostile') };
  } catch (error) {
    if (!(error instanceof PolicyValidationError)) throw new Error(`parsePolicyText threw ${String(error)}`, { cause: error });
    return { ok: false, problems: error.problems, message: error.message };
  }
}

const admin = new PolicyAdmin({
  store: new MemoryPolicyVersionStore(),
  registry: defaultRegistry,
  publish: async () => undefined,
  logger: pino({ level: 'silent' }),
});

/** The API path: an object or YAML/JSON text in, a document or an `invalid` PolicyAdminError out. */
function loadByAdmin(candidate: unknown): Outcome {
  try {
    return { ok: true, document: admin.parse(candidate).document };
  } catch (error) {
    if (!(error instanceof PolicyAdminError) || error.code !== 'invalid') throw new Error(`PolicyAdmin.parse threw ${String(error)}`, { cause: error });
    // The API answers with the problems, each with its path; the message is a summary.
    return { ok: false, problems: error.problems, message: error.problems.map((p) => `${p.path}: ${p.message}`).join('; ') };
  }
}

/** The property every loader answer must have. */
function expectSoundOutcome(outcome: Outcome): void {
  if (outcome.ok) judge(outcome.document);
  else expectNamedProblems(outcome.problems, outcome.message);
}

function timed<T>(run: () => T): T {
  const started = performance.now();
  const result = run();
  expect(performance.now() - started).toBeLessThan(CASE_BOUND_MS);
  return result;
}

/** Text through the loader and the admin. */
async function checkText(text: string): Promise<void> {
  await yieldToVitest();
  timed(() => expectSoundOutcome(loadText(text)));
  timed(() => expectSoundOutcome(loadByAdmin(text)));
}

function jsonable(value: unknown): string | undefined {
  try {
    return JSON.stringify(value);
  } catch {
    return undefined;
  }
}

/** A decoded value through the core validator, the admin, and (as JSON and as YAML) the text loader. */
async function checkValue(value: unknown): Promise<void> {
  await yieldToVitest();
  timed(() => {
    const core = parsePolicyDocument(value, defaultRegistry);
    if (core.ok) judge(core.document);
    else expectNamedProblems(core.problems, core.problems.map((p) => `${p.path}: ${p.message}`).join('; '));
  });
  timed(() => expectSoundOutcome(loadByAdmin(value)));
  const json = jsonable(value);
  if (json === undefined) return;
  timed(() => expectSoundOutcome(loadText(json)));
  timed(() => expectSoundOutcome(loadText(toYaml(JSON.parse(json) as unknown))));
}

// ---------------------------------------------------------------------------
// Arbitraries
// ---------------------------------------------------------------------------

const YAML_TOKENS = [
  'version: 1', 'version: 2', 'mode: strict', 'mode: panic', 'timezone: Europe/Berlin', 'timezone: Mars/Olympus',
  'policies:', 'include: [pack:strict]', 'include: [/etc/passwd]', 'include: [pack:../x]', '- ', 'id: p1', 'id: "p 1"',
  'type: rate_spike', 'type: data_protection', 'type: teleport', 'type:', 'config:', 'config: {}', 'match:', 'agents: ["*"]',
  'threshold: -1', 'threshold: 1e400', 'window_minutes: .nan', 'regex: "(a+)+$"', 'patterns: [{id: x, regex: "(a|a)*b"}]',
  'allowed_domains: ["*.a*a*a*a*b"]', 'exceptions: [{agents: ["*"], reason: r, approved_by: me}]',
  '&a ', '*a', '<<: *a', '!!str ', '!!binary ', '!!js/function ', '!!set ', '? ', ': ', ',', '{', '}', '[', ']', '"', "'",
  '# x', '|', '>-', '---', '...', '%YAML 1.2', '~', 'null', '-.inf', '0x1F', '0o17', '1_000', '__proto__: {}', 'constructor:',
  '\t', '\\u0000', '\u0000', '\ufeff', '\u2028', 'é', '😀',
];
const YAML_GAPS = ['', ' ', '\n', '\n  ', '\n    ', '\n      ', '\n- ', '\n  - '];
const yamlish = fc
  .array(fc.tuple(fc.constantFrom(...YAML_GAPS), fc.constantFrom(...YAML_TOKENS)), { maxLength: 40 })
  .map((parts) => parts.map(([gap, token]) => gap + token).join(''));

const GLOBISH = ['*', '**', '?', '*a*a*a*a*a*a*a*a*a*a*b', '*.example.com', 'cursor', 'CLAUDE-*', 'ops-?', '/prod/*', 'x'.repeat(300), ''];
const HOSTILE_SCALARS: unknown[] = [
  0, -1, 1, 0.5, -0, 1e9, 2 ** 53, 1e-9, 100_000, true, false, null, '', ' ', '*', '**', '(a+)+$', '(a|a)*b', '10.0.0.0/8',
  '::1/129', '10.*.1.*', '*.example.com', 'mcp://srv/tool@^1', 'mcp://*/*@>=1 <2', '24:00', '00:00', '25:61', '2026-02-30',
  'Europe/Berlin', 'Nowhere/City', 'mon', 'sun', 'deny', 'allow', 'tool:exec_*', 'capability:sampling', 'DE', 'EU', 'x'.repeat(5000),
];
const hostileValue: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom(...HOSTILE_SCALARS) },
  { weight: 2, arbitrary: fc.array(fc.constantFrom(...HOSTILE_SCALARS, ...GLOBISH), { maxLength: 5 }) },
  { weight: 2, arbitrary: fc.jsonValue({ maxDepth: 3 }) },
  { weight: 1, arbitrary: fc.dictionary(fc.string({ maxLength: 8 }), fc.constantFrom(...HOSTILE_SCALARS), { maxKeys: 3 }) },
);

/** Values each config key takes in the shipped documents and packs, and its default: plausible, often valid. */
const SAMPLES = new Map<string, unknown[]>();
function addSample(type: string, key: string, value: unknown): void {
  const list = SAMPLES.get(`${type}.${key}`) ?? [];
  list.push(value);
  SAMPLES.set(`${type}.${key}`, list);
}
for (const source of [DEFAULT_SOURCE, ...PACK_SOURCES]) {
  for (const policy of (source.policies as Record<string, unknown>[] | undefined) ?? []) {
    if (typeof policy.type !== 'string' || policy.config === undefined) continue;
    for (const [key, value] of Object.entries(policy.config as Record<string, unknown>)) addSample(policy.type, key, value);
  }
}
const configKeys = new Map<string, string[]>();
for (const type of TYPES) {
  const schema = defaultRegistry.get(type);
  configKeys.set(type, schema instanceof z.ZodObject ? Object.keys(schema.shape) : []);
  const defaults = schema?.safeParse({});
  if (defaults?.success === true) for (const [key, value] of Object.entries(defaults.data as Record<string, unknown>)) addSample(type, key, value);
}

function configFor(type: string): fc.Arbitrary<Record<string, unknown>> {
  const keys = configKeys.get(type) ?? [];
  const fields = Object.fromEntries(
    keys.map((key) => {
      const samples = SAMPLES.get(`${type}.${key}`) ?? [];
      const value = samples.length === 0 ? hostileValue : fc.oneof({ weight: 4, arbitrary: fc.constantFrom(...samples) }, { weight: 1, arbitrary: hostileValue });
      return [key, value];
    }),
  );
  return fc.tuple(fc.record(fields, { requiredKeys: [] }), fc.option(fc.tuple(fc.string({ maxLength: 12 }), hostileValue), { freq: 6 })).map(([config, extra]) =>
    extra === null ? config : { ...config, [extra[0]]: extra[1] },
  );
}

const policyArb: fc.Arbitrary<Record<string, unknown>> = fc
  .constantFrom(...TYPES, 'teleport', '', 'RATE_SPIKE', '__proto__', 'x'.repeat(200))
  .chain((type) =>
    fc.record(
      {
        id: fc.oneof(fc.constantFrom('p1', 'p2', 'a.b', 'sensitive-data', 'x'.repeat(129), ''), fc.string({ maxLength: 10 })),
        type: fc.constant(type),
        enabled: fc.oneof(fc.boolean(), hostileValue),
        severity: fc.constantFrom('low', 'medium', 'high', 'critical', 'apocalyptic'),
        action: fc.constantFrom('alert', 'block', 'require_approval', 'throttle', 'explode'),
        match: fc.record(
          {
            agents: fc.array(fc.constantFrom(...GLOBISH), { maxLength: 4 }),
            event_types: fc.array(fc.constantFrom(...EventTypes, 'teleport'), { maxLength: 3 }),
            tenants: fc.array(fc.constantFrom('acme', 'glob*', ''), { maxLength: 2 }),
          },
          { requiredKeys: [] },
        ),
        config: TYPES.includes(type) ? configFor(type) : hostileValue,
        atlas: fc.array(fc.constantFrom('AML.T0034', 'AML.T0053.000', 'T1059'), { maxLength: 2 }),
        exceptions: fc.array(
          fc.record(
            {
              agents: fc.array(fc.constantFrom(...GLOBISH), { maxLength: 3 }),
              reason: fc.constantFrom('backfill', ''),
              approved_by: fc.constantFrom('ciso', ' '),
              expires: fc.constantFrom('2026-12-31T23:59:59Z', '2026-02-30T00:00:00Z', 'tomorrow'),
              resources: fc.array(fc.constantFrom(...GLOBISH), { maxLength: 2 }),
            },
            { requiredKeys: ['agents', 'reason', 'approved_by'] },
          ),
          { maxLength: 2 },
        ),
      },
      { requiredKeys: ['id', 'type'] },
    ),
  );

const documentArb: fc.Arbitrary<Record<string, unknown>> = fc.record(
  {
    version: fc.constantFrom<unknown>(1, 1, 1, 2, '1'),
    mode: fc.constantFrom('monitoring', 'strict', 'panic'),
    timezone: fc.constantFrom('UTC', 'Europe/Berlin', 'Mars/Olympus'),
    include: fc.array(fc.constantFrom(...PACK_NAMES, 'pack:nope', 'pack:../../etc/passwd', '/etc/passwd', './x.yaml'), { maxLength: 2 }),
    policies: fc.array(policyArb, { maxLength: 5 }),
  },
  { requiredKeys: ['version', 'policies'] },
);

/** Every path to a value inside `root`, as keys and indexes. */
function pathsOf(root: unknown, prefix: (string | number)[] = [], out: (string | number)[][] = []): (string | number)[][] {
  out.push(prefix);
  if (Array.isArray(root)) root.forEach((v, i) => pathsOf(v, [...prefix, i], out));
  else if (root !== null && typeof root === 'object') for (const [k, v] of Object.entries(root)) pathsOf(v, [...prefix, k], out);
  return out;
}
const DEFAULT_PATHS = pathsOf(DEFAULT_SOURCE).filter((p) => p.length > 0);

type Mutation = { at: number; kind: 'delete' | 'replace' | 'retype' | 'unknown_key' | 'retype_policy' | 'duplicate_policy'; key: string; value: unknown; type: string };
const mutationArb: fc.Arbitrary<Mutation> = fc.record({
  at: fc.nat(),
  kind: fc.constantFrom('delete', 'replace', 'retype', 'unknown_key', 'retype_policy', 'duplicate_policy'),
  key: fc.oneof(fc.constantFrom('extra', '__proto__', 'constructor', 'version'), fc.string({ maxLength: 10 })),
  value: hostileValue,
  type: fc.constantFrom(...TYPES, 'teleport'),
});

/** A value of another JSON type holding (some of) the same data. */
function retyped(value: unknown): unknown {
  if (typeof value === 'number') return String(value);
  if (typeof value === 'string') return Number(value) || [value];
  if (typeof value === 'boolean') return value ? 'yes' : 0;
  if (Array.isArray(value)) return value[0] ?? {};
  if (value !== null && typeof value === 'object') return Object.values(value);
  return {};
}

function mutate(source: Record<string, unknown>, mutations: readonly Mutation[]): Record<string, unknown> {
  const doc = structuredClone(source);
  for (const m of mutations) {
    const path = DEFAULT_PATHS[m.at % DEFAULT_PATHS.length] as (string | number)[];
    let parent: unknown = doc;
    for (const step of path.slice(0, -1)) parent = parent === null || typeof parent !== 'object' ? undefined : (parent as Record<string | number, unknown>)[step];
    if (parent === null || typeof parent !== 'object') continue;
    const container = parent as Record<string | number, unknown>;
    const last = path[path.length - 1] as string | number;
    const policies = Array.isArray(doc.policies) ? (doc.policies as unknown[]).filter((x): x is Record<string, unknown> => x !== null && typeof x === 'object') : [];
    switch (m.kind) {
      case 'delete':
        if (Array.isArray(container) && typeof last === 'number') container.splice(last, 1);
        else delete container[last];
        break;
      case 'replace':
        container[last] = m.value;
        break;
      case 'retype':
        container[last] = retyped(container[last]);
        break;
      case 'unknown_key': {
        const target = container[last];
        if (target !== null && typeof target === 'object' && !Array.isArray(target)) (target as Record<string, unknown>)[m.key] = m.value;
        else container[m.key] = m.value;
        break;
      }
      case 'retype_policy': {
        const policy = policies[m.at % Math.max(policies.length, 1)];
        if (policy !== undefined) policy.type = m.type;
        break;
      }
      case 'duplicate_policy': {
        const policy = policies[m.at % Math.max(policies.length, 1)];
        if (policy !== undefined) (doc.policies as unknown[]).push(structuredClone(policy));
        break;
      }
    }
  }
  return doc;
}

type LineEdit = { line: number; kind: 'duplicate' | 'delete' | 'insert' | 'indent' | 'dedent' | 'value'; token: string };
const lineEditArb: fc.Arbitrary<LineEdit> = fc.record({
  line: fc.nat(),
  kind: fc.constantFrom('duplicate', 'delete', 'insert', 'indent', 'dedent', 'value'),
  token: fc.constantFrom(...YAML_TOKENS),
});

/** Edits of the YAML text itself: repeated keys and lines, broken indentation, stray tokens. */
function editLines(text: string, edits: readonly LineEdit[]): string {
  const lines = text.split('\n');
  for (const e of edits) {
    const i = e.line % lines.length;
    const line = lines[i] as string;
    if (e.kind === 'duplicate') lines.splice(i, 0, line);
    else if (e.kind === 'delete') lines.splice(i, 1);
    else if (e.kind === 'insert') lines.splice(i, 0, `${/^\s*/.exec(line)?.[0] ?? ''}${e.token}`);
    else if (e.kind === 'indent') lines[i] = `  ${line}`;
    else if (e.kind === 'dedent') lines[i] = line.replace(/^ {1,2}/, '');
    else lines[i] = line.includes(':') ? `${line.slice(0, line.indexOf(':') + 1)} ${e.token}` : `${line} ${e.token}`;
  }
  return lines.join('\n');
}

// ---------------------------------------------------------------------------
// 1. Random and mutated documents
// ---------------------------------------------------------------------------

describe('hostile documents: accepted and judging, or refused with named paths', () => {
  it('arbitrary text', async () => {
    await fc.assert(fc.asyncProperty(fc.string({ maxLength: 300 }), checkText), { numRuns: 200 });
    await fc.assert(fc.asyncProperty(fc.string({ unit: 'binary', maxLength: 300 }), checkText), { numRuns: 100 });
  });

  it('YAML-ish token soup', async () => {
    await fc.assert(fc.asyncProperty(yamlish, checkText), { numRuns: 400 });
    await fc.assert(fc.asyncProperty(fc.stringMatching(/^[-:{}[\],&*!|>'"#?%~ \n\ta-z0-9_.]{0,200}$/), checkText), { numRuns: 200 });
  });

  it('arbitrary JSON and JavaScript values', async () => {
    await fc.assert(fc.asyncProperty(fc.jsonValue({ maxDepth: 5 }), checkValue), { numRuns: 200 });
    const weird = fc.anything({
      maxDepth: 4,
      withBigInt: true,
      withBoxedValues: true,
      withDate: true,
      withMap: true,
      withSet: true,
      withNullPrototype: true,
      withSparseArray: true,
      withTypedArray: true,
      withObjectString: true,
    });
    await fc.assert(fc.asyncProperty(weird, checkValue), { numRuns: 200 });
    await fc.assert(fc.asyncProperty(fc.record({ version: fc.constant(1), policies: fc.array(weird, { maxLength: 3 }) }), checkValue), { numRuns: 200 });
  });

  it('generated documents of every policy type, plausible and hostile values mixed', async () => {
    await fc.assert(fc.asyncProperty(documentArb, checkValue), { numRuns: 300 });
  });

  it('mutations of policies/default.yaml: deleted keys, changed types, unknown keys and types, duplicated policies', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(mutationArb, { minLength: 1, maxLength: 4 }), async (mutations) => {
        await checkValue(mutate(DEFAULT_SOURCE, mutations));
      }),
      { numRuns: 250 },
    );
  });

  it('line edits of policies/default.yaml: repeated keys, broken indentation, stray anchors and tags', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(lineEditArb, { minLength: 1, maxLength: 3 }), async (edits) => {
        await checkText(editLines(DEFAULT_YAML, edits));
      }),
      { numRuns: 250 },
    );
  });

  it('the shipped document and packs are accepted and judge the probes', () => {
    expect(timed(() => loadText(DEFAULT_YAML)).ok).toBe(true);
    for (const pack of PACK_NAMES) expectSoundOutcome(loadText(`version: 1\ninclude: [${pack}]\n`));
  });
});

describe('hostile documents: targeted cases', () => {
  const refused = (text: string): { problems: ValidationProblem[]; message: string } => {
    const outcome = timed(() => loadText(text));
    expect(outcome.ok).toBe(false);
    if (outcome.ok) throw new Error('accepted');
    expectNamedProblems(outcome.problems, outcome.message);
    const byAdmin = timed(() => loadByAdmin(text));
    expect(byAdmin.ok).toBe(false);
    return outcome;
  };

  it('an alias bomb ("billion laughs") is refused as a problem of the document, not thrown', () => {
    const laughs = ['version: 1', 'a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]'];
    for (let i = 1; i < 10; i++) laughs.push(`a${i}: &a${i} [${Array(10).fill(`*a${i - 1}`).join(', ')}]`);
    const { problems } = refused(laughs.join('\n'));
    expect(problems).toEqual([{ path: '(document)', message: expect.stringMatching(/alias/i) }]);
    // Inside a policy, where the aliases would expand into an allow-list.
    const inConfig = ['version: 1', 'x0: &x0 [a, b, c, d, e, f, g, h, i, j]'];
    for (let i = 1; i < 8; i++) inConfig.push(`x${i}: &x${i} [${Array(10).fill(`*x${i - 1}`).join(', ')}]`);
    inConfig.push('policies:', '  - { id: p, type: unknown_agent, config: { allowed_agents: *x7 } }');
    expect(refused(inConfig.join('\n')).problems[0]?.path).toBe('(document)');
  });

  it('cyclic aliases, deep nesting and multiple documents are refused with a position', () => {
    expect(refused('version: 1\npolicies: &p [ *p ]\n').problems[0]?.path).toBe('policies[0]');
    for (const depth of [1_000, 10_000]) {
      const { problems } = refused(`version: 1\npolicies: ${'['.repeat(depth)}${']'.repeat(depth)}\n`);
      expect(problems[0]?.path).toMatch(/^(line \d+, column \d+|policies\[0\])$/);
      refused(`version: 1\npolicies:\n  - config: ${'{a: '.repeat(depth)}1${'}'.repeat(depth)}\n`);
    }
    expect(refused('version: 1\n---\nversion: 1\n').problems[0]?.path).toBe('line 2, column 1');
  });

  it('repeated keys are refused with their line, in a mapping of any size', () => {
    const { problems } = refused('version: 1\npolicies:\n  - id: a\n    type: rate_spike\n    type: off_hours\n');
    expect(problems).toEqual([{ path: 'line 5', message: 'Map keys must be unique: "type" appears twice' }]);
    const stuffed = `version: 1\n${Array.from({ length: 50_000 }, (_, i) => `k${i}: 1`).join('\n')}\nk7: 2\n`;
    expect(refused(stuffed).problems[0]?.path).toBe('line 50002');
  });

  it('unknown types and keys are refused with the path and what is known', () => {
    const { problems } = refused('version: 1\npolicies:\n  - { id: a, type: teleport }\n');
    expect(problems[0]).toEqual({ path: 'policies[0].type', message: expect.stringMatching(/^unknown policy type "teleport" \(known: access_rule, .*unknown_agent\)$/) });
    expect(refused('version: 1\npolicies:\n  - { id: a, type: rate_spike, config: { treshold: 5 } }\n').problems[0]).toEqual({
      path: 'policies[0].config',
      message: 'Unrecognized key: "treshold"',
    });
    expect(refused('version: 1\npolicies: []\nextra: 1\n').problems[0]?.path).toBe('(root)');
  });

  it('huge strings are refused with the path, without echoing them', () => {
    const huge = 'z'.repeat(200_000);
    for (const [text, path] of [
      [`version: 1\npolicies:\n  - { id: a, type: ${huge} }\n`, 'policies[0].type'],
      [`version: 1\npolicies:\n  - { id: ${huge}, type: rate_spike }\n`, 'policies[0].id'],
      [`version: 1\npolicies:\n  - { id: a, type: off_hours, description: ${huge} }\n`, 'policies[0].description'],
      [`version: 1\npolicies:\n  - { id: a, type: rate_spike, match: { agents: [${huge}] } }\n`, 'policies[0].match.agents[0]'],
      [`version: 1\npolicies:\n  - { id: a, type: rate_spike, match: { tenants: [${huge}] } }\n`, 'policies[0].match.tenants[0]'],
      [`version: 1\ninclude: [${huge}]\n`, 'include[0]'],
    ] as const) {
      const { problems, message } = refused(text);
      expect(problems.map((p) => p.path)).toContain(path);
      expect(message.length, path).toBeLessThan(2_000);
    }
  });
});

// ---------------------------------------------------------------------------
// 2. Regular expressions and globs
// ---------------------------------------------------------------------------

/** Patterns known to backtrack catastrophically (or without a useful bound) in a backtracking engine. */
const CATASTROPHIC = [
  '(a+)+$',
  '(a|a)*b',
  '(.*a){20}',
  '(a|aa)+$',
  '^(\\w+\\s?)*$',
  '(x+x+)+y',
  '([a-zA-Z]+)*$',
  '(a{1,10}){1,10}',
  '(?:a|a){1,30}b',
  '([a-z]{1,64}){1,64}',
  '(.{1,32}){1,32}x',
  '(\\d)\\1',
  '(?<=a)b',
  'a{1,100000}',
  '.*.*.*=.*',
];

const regexArb = fc.letrec<{ regex: string; atom: string; seq: string; alt: string; quantified: string }>((tie) => ({
  regex: fc.oneof({ depthSize: 'small', withCrossShrink: true }, tie('atom'), tie('seq'), tie('alt'), tie('quantified')),
  atom: fc.constantFrom('a', 'b', 'x', '\\d', '\\w', '\\s', '.', '[ab]', '[^a]', '\\.', '-', '@'),
  seq: fc.array(tie('regex'), { minLength: 2, maxLength: 4 }).map((xs) => xs.join('')),
  alt: fc.array(tie('regex'), { minLength: 2, maxLength: 3 }).map((xs) => `(${xs.join('|')})`),
  quantified: fc
    .tuple(tie('regex'), fc.constantFrom('*', '+', '?', '{1,3}', '{2}', '{0,8}', '{1,64}', '{1,}', '+?', '{2,5}?'))
    .map(([r, q]) => `(?:${r})${q}`),
})).regex;

describe('regular expressions: every field that takes one', () => {
  // data_protection.patterns[].regex is the only field compiled to a RegExp from
  // policy text; every other pattern field is a glob (core/glob.ts), a domain
  // pattern, a CIDR/IP entry or a semver range (tool_allowlist), none of which
  // becomes a regular expression.
  const withPattern = (regex: string, flags?: string) => ({
    version: 1,
    policies: [{ id: 'dlp', type: 'data_protection', config: { detect: [], patterns: [{ id: 'custom', regex, ...(flags === undefined ? {} : { flags }) }] } }],
  });

  it.each(CATASTROPHIC)('refuses %s with the path of the pattern', (regex) => {
    for (const outcome of [timed(() => loadText(JSON.stringify(withPattern(regex)))), timed(() => loadByAdmin(withPattern(regex)))]) {
      expect(outcome.ok).toBe(false);
      if (outcome.ok) continue;
      expect(outcome.problems).toEqual([{ path: 'policies[0].config.patterns[0].regex', message: expect.any(String) }]);
      expectNamedProblems(outcome.problems, outcome.message);
    }
  });

  it('a generated pattern is refused with its path, or scans adversarial content in bounded time', async () => {
    await fc.assert(
      fc.asyncProperty(regexArb, fc.constantFrom('', 'i', 'u', 'is'), async (regex, flags) => {
        await yieldToVitest();
        const outcome = timed(() => loadByAdmin(withPattern(regex, flags)));
        if (!outcome.ok) {
          expect(outcome.problems.map((p) => p.path)).toEqual(['policies[0].config.patterns[0].regex']);
          return;
        }
        // Content made of the pattern's own characters, which keeps a backtracking engine busiest.
        const alphabet = regex.replace(/[^a-z@.\-\d ]/g, '') || 'a';
        const unit = `${alphabet}${alphabet.slice(0, 1).repeat(30)}`;
        const input = unit.repeat(Math.ceil(8_192 / unit.length)).slice(0, 8_192);
        timed(() => judge(outcome.document, [makeEvent({ type: 'tool_call', content: { input, output: `${input}!` } })]));
      }),
      { numRuns: 300 },
    );
  });
});

/** Reference glob semantics by dynamic programming: obviously right, quadratic, for short strings only. */
function referenceGlob(pattern: string, value: string): boolean {
  const p = pattern.toLowerCase();
  const v = value.toLowerCase();
  let row = new Array<boolean>(v.length + 1).fill(false);
  row[0] = true;
  for (const c of p) {
    const next = new Array<boolean>(v.length + 1).fill(false);
    next[0] = c === '*' && (row[0] as boolean);
    for (let j = 1; j <= v.length; j++) {
      if (c === '*') next[j] = (row[j] as boolean) || (next[j - 1] as boolean);
      else next[j] = (row[j - 1] as boolean) && (c === '?' || c === v[j - 1]);
    }
    row = next;
  }
  return row[v.length] as boolean;
}

describe('globs (core/glob.ts)', () => {
  const small = (chars: string[], maxLength: number) => fc.array(fc.constantFrom(...chars), { maxLength }).map((cs) => cs.join(''));

  it('match exactly as the reference semantics, one pattern or a list', async () => {
    const pattern = small(['a', 'b', 'A', '.', '*', '?'], 10);
    const value = small(['a', 'b', 'B', '.'], 14);
    await fc.assert(
      fc.asyncProperty(pattern, value, async (p, v) => {
        await yieldToVitest();
        expect(wildcardMatch(p.toLowerCase(), v.toLowerCase())).toBe(referenceGlob(p, v));
        expect(compileGlobs([p])(v)).toBe(referenceGlob(p, v));
      }),
      { numRuns: 500 },
    );
    await fc.assert(
      fc.asyncProperty(fc.array(pattern, { maxLength: 12 }), fc.array(value, { minLength: 1, maxLength: 5 }), async (patterns, values) => {
        await yieldToVitest();
        const matcher = compileGlobs(patterns);
        for (const v of values) expect(matcher(v), `${JSON.stringify(patterns)} vs ${v}`).toBe(patterns.some((p) => referenceGlob(p, v)));
      }),
      { numRuns: 300 },
    );
  });

  it('tagged lists give every matching tag, ascending; access_rule tries its rules in order through them', async () => {
    const pattern = small(['a', 'b', '.', '*', '?'], 6);
    const value = small(['a', 'b', '.'], 8);
    await fc.assert(
      fc.asyncProperty(fc.array(fc.tuple(pattern, fc.nat(20)), { maxLength: 15 }), value, async (entries, v) => {
        await yieldToVitest();
        const expected = [...new Set(entries.filter(([p]) => referenceGlob(p, v)).map(([, tag]) => tag))].sort((a, b) => a - b);
        expect(compileTaggedGlobs(entries)(v)).toEqual(expected);
      }),
      { numRuns: 300 },
    );
    const rule = fc.record({
      resources: fc.oneof(fc.constant(['*']), fc.array(pattern, { minLength: 1, maxLength: 3 })),
      actions: fc.oneof(fc.constant(['*']), fc.array(fc.constantFrom('read', 'write', 'wr*', '?ead'), { minLength: 1, maxLength: 2 })),
      effect: fc.constantFrom('allow', 'deny', 'require_approval'),
    });
    await fc.assert(
      fc.asyncProperty(fc.array(rule, { minLength: 1, maxLength: 12 }), fc.option(value), fc.constantFrom('read', 'write'), async (rules, resource, action) => {
        await yieldToVitest();
        const named = rules.map((r, i) => ({ ...r, id: `r${i}` }));
        const parsed = parsePolicyDocument({ version: 1, policies: [{ id: 'rules', type: 'access_rule', config: { rules: named } }] }, defaultRegistry);
        if (!parsed.ok) return; // a pattern with a blank end or bracket: refused, not the point here
        const event = makeEvent({ type: 'resource_access', action, ...(resource === null || resource === '' ? {} : { resource }) });
        const verdicts = evaluateBatchSync(new PolicyEngine(parsed.document, defaultRegistry), new MemoryStateStore(), [event]).verdicts;
        const covers = (list: readonly string[], v: string | undefined) => list.includes('*') || (v !== undefined && list.some((p) => referenceGlob(p, v)));
        const first = named.find((r) => covers(r.actions, event.action) && covers(r.resources, event.resource));
        expect(verdicts.map((x) => x.evidence.rule)).toEqual(first === undefined || first.effect === 'allow' ? [] : [first.id]);
      }),
      { numRuns: 300 },
    );
  });

  it('adversarial patterns on 100 KB values finish in well under a second each', () => {
    const as = 'a'.repeat(100_000);
    const cases: [string, string, boolean][] = [
      ['*a*a*a*a*a*a*a*a*a*a*b', as, false],
      ['*a*a*a*a*a*a*a*a*a*a*', as, true],
      [`*${'a'.repeat(1023)}b*`, as, false],
      [`*${'a'.repeat(1023)}b`, as, false],
      [`${'*a'.repeat(500)}*b`, as, false],
      [`*${'a?'.repeat(100)}b*`, as, false],
      [`${'?'.repeat(1000)}*b`, as, false],
      ['*/*/*.pem', '/'.repeat(100_000), false],
      ['a*b*c*d*e*f', 'ab'.repeat(50_000), false],
    ];
    for (const [pattern, value, expected] of cases) {
      const started = performance.now();
      expect(compileGlobs([pattern])(value), pattern.slice(0, 40)).toBe(expected);
      expect(performance.now() - started, pattern.slice(0, 40)).toBeLessThan(1_000);
    }
  });

  it('domain patterns: a huge list of wildcards answers quickly and exactly', () => {
    const allowed = compileDomainPatterns(Array.from({ length: 10_000 }, (_, i) => (i % 2 === 0 ? `*.d${i}.example.com` : `api${i}.example.com`)));
    const started = performance.now();
    for (let i = 0; i < 20_000; i++) {
      expect(allowed(`x.d${i}.example.com`)).toBe(i < 10_000 && i % 2 === 0);
      expect(allowed(`api${i}.example.com.`)).toBe(i < 10_000 && i % 2 === 1);
    }
    expect(allowed('d0.example.com')).toBe(false);
    expect(performance.now() - started).toBeLessThan(2_000);
  });
});

// ---------------------------------------------------------------------------
// 3. Huge lists
// ---------------------------------------------------------------------------

/** One list field of a policy: its path, its limit, and a realistic entry per index. */
interface ListField {
  type: string;
  /** Path within the policy (the document path is `policies[0].<path>`). */
  path: (string | number)[];
  limit: number;
  entry: (i: number) => unknown;
  /** Other config the policy needs to be valid. */
  base?: Record<string, unknown>;
}

const ip4 = (i: number) => `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`;
const LIST_FIELDS: ListField[] = [
  { type: 'unknown_agent', path: ['config', 'allowed_agents'], limit: 10_000, entry: (i) => (i % 3 === 0 ? `team-${i}-*` : `agent-${i}`) },
  { type: 'unauthorized_api', path: ['config', 'allowed_domains'], limit: 10_000, entry: (i) => (i % 2 === 0 ? `*.d${i}.example.com` : `api${i}.example.com`) },
  { type: 'mcp_domains', path: ['config', 'trusted'], limit: 10_000, entry: (i) => (i % 2 === 0 ? `*.mcp${i}.example.com` : `${ip4(i)}/32`) },
  { type: 'mcp_domains', path: ['config', 'blocked'], limit: 10_000, entry: (i) => `*.tunnel${i}.example.net` },
  { type: 'ip_access', path: ['config', 'allow'], limit: 10_000, entry: (i) => `${ip4(i * 256)}/24` },
  { type: 'ip_access', path: ['config', 'deny'], limit: 10_000, entry: (i) => (i % 2 === 0 ? ip4(i) : `2001:db8:${i.toString(16)}::/48`) },
  { type: 'tool_allowlist', path: ['config', 'allowlist'], limit: 10_000, entry: (i) => (i % 4 === 0 ? `mcp://srv-${i}-*/*` : `mcp://srv-${i}/tool-*@^1.${i % 50}.0`) },
  { type: 'new_mcp_server', path: ['config', 'ignore'], limit: 10_000, entry: (i) => `server-${i}*` },
  { type: 'capability_drift', path: ['config', 'extra_dangerous'], limit: 1_000, entry: (i) => `cap_${i}:*` },
  { type: 'mcp_capabilities', path: ['config', 'forbidden'], limit: 1_000, entry: (i) => `tool:danger_${i}_*` },
  { type: 'off_hours', path: ['config', 'holidays'], limit: 10_000, entry: (i) => new Date(Date.UTC(2000, 0, 1 + i)).toISOString().slice(0, 10) },
  { type: 'access_rule', path: ['config', 'rules'], limit: 10_000, entry: (i) => ({ id: `r${i}`, resources: [`/data/${i}/*`], actions: ['file_delete'], effect: 'deny' }) },
  {
    type: 'access_rule',
    path: ['config', 'rules', 0, 'resources'],
    limit: 1_000,
    entry: (i) => `/srv/${i}/*.db`,
    base: { rules: [{ resources: [], actions: ['*'], effect: 'deny' }] },
  },
  { type: 'rate_spike', path: ['match', 'agents'], limit: 10_000, entry: (i) => `bot-${i}-*` },
  { type: 'rate_spike', path: ['match', 'tenants'], limit: 10_000, entry: (i) => `tenant-${i}` },
  {
    type: 'unknown_agent',
    path: ['exceptions', 0, 'agents'],
    limit: 10_000,
    entry: (i) => `legacy-${i}-*`,
    base: {},
  },
];

/** The policy with `count` entries in the field's list. */
function policyWithList(field: ListField, count: number): Record<string, unknown> {
  const policy: Record<string, unknown> = { id: 'big', type: field.type, config: structuredClone(field.base ?? {}) };
  if (field.path[0] === 'exceptions') policy.exceptions = [{ agents: [], reason: 'legacy fleet', approved_by: 'ciso' }];
  if (field.type === 'unknown_agent') (policy.config as Record<string, unknown>).allowed_agents ??= ['cursor'];
  let at: Record<string | number, unknown> = policy;
  for (const step of field.path.slice(0, -1)) {
    at[step] ??= {};
    at = at[step] as Record<string | number, unknown>;
  }
  at[field.path[field.path.length - 1] as string | number] = Array.from({ length: count }, (_, i) => field.entry(i));
  return policy;
}

const formatFieldPath = (path: readonly (string | number)[]) =>
  `policies[0]${path.map((step) => (typeof step === 'number' ? `[${step}]` : `.${step}`)).join('')}`;

/** Events that walk the lists: a miss for each, and some hits. */
let listEventsMade: AgentEvent[] | undefined;
const listEvents = (): AgentEvent[] => (listEventsMade ??= makeListEvents(2_000));
function makeListEvents(count: number): AgentEvent[] {
  return Array.from({ length: count }, (_, i) =>
    makeEvent({
      type: (['api_call', 'tool_call', 'mcp_connect', 'resource_access', 'network_egress'] as const)[i % 5],
      time: i % 2 === 0 ? TUESDAY_10H : SUNDAY_3H,
      agent: { id: `agent-${i * 7}`, name: i % 3 === 0 ? `team-${i}-bot` : 'shadow' },
      tenant: `tenant-${i * 3}`,
      action: 'file_delete',
      resource: `/data/${i * 13}/x.db`,
      source: { ip: ip4(i * 977) },
      tool: { name: `tool-${i}`, server: `srv-${i * 4}`, version: '1.2.0' },
      mcp: { server_id: `server-${i}`, url: `https://a.mcp${i * 2}.example.com/x`, trust_score: 90, tools: [`danger_${i}_x`] },
      capabilities: [`cap_${i}:write`],
      network: { domain: i % 2 === 0 ? `x.d${i * 2}.example.com` : 'evil.example.org', ip: ip4(i) },
    }),
  );
}

describe('huge lists', () => {
  it.each(LIST_FIELDS.map((f) => [formatFieldPath(f.path), f.type, f] as const))('%s of %s: over the limit is refused with the path and the limit', (path, _type, field) => {
    const document = { version: 1, policies: [policyWithList(field, 100_000)] };
    const core = timed(() => parsePolicyDocument(document, defaultRegistry));
    expect(core.ok).toBe(false);
    if (core.ok) return;
    expect(core.problems).toContainEqual({ path, message: `Too big: expected array to have <=${field.limit} items` });
  });

  it.each(LIST_FIELDS.map((f) => [formatFieldPath(f.path), f.type, f] as const))('%s of %s: at the limit is accepted and judging stays fast', async (_path, _type, field) => {
    const parsed = parsePolicyDocument({ version: 1, policies: [policyWithList(field, field.limit)] }, defaultRegistry);
    expect(parsed.ok, JSON.stringify(parsed.ok ? null : parsed.problems.slice(0, 3))).toBe(true);
    if (!parsed.ok) return;
    const engine = new PolicyEngine(parsed.document, defaultRegistry);
    const events = listEvents();
    await yieldToVitest();
    const started = performance.now();
    const outcome = evaluateBatchSync(engine, new MemoryStateStore(), events);
    // ~1 ms for 2,000 events once indexed; a scan of every entry per event took seconds.
    expect(performance.now() - started).toBeLessThan(CASE_BOUND_MS);
    expect(outcome.outcomes).toHaveLength(events.length);
  });

  it('a document of 10,001 policies is refused at `policies`', () => {
    const policies = Array.from({ length: 10_001 }, (_, i) => ({ id: `p${i}`, type: 'key_rotation' }));
    const result = timed(() => parsePolicyDocument({ version: 1, policies }, defaultRegistry));
    expect(result).toEqual({ ok: false, problems: [{ path: 'policies', message: 'Too big: expected array to have <=10000 items' }] });
  });
});

// ---------------------------------------------------------------------------
// 4. The policy in force stays in force
// ---------------------------------------------------------------------------

/** Documents and changes that must each be refused. */
const HOSTILE_CHANGES: { label: string; apply: (a: PolicyAdmin) => Promise<unknown> }[] = [
  { label: 'YAML syntax error', apply: (a) => a.replace('version: 1\npolicies: [', { author: 'x' }) },
  { label: 'alias bomb', apply: (a) => a.replace(`version: 1\na: &a [x, x, x, x, x, x, x, x, x, x]\n${Array.from({ length: 9 }, (_, i) => `b${i}: &b${i} [${Array(10).fill(i === 0 ? '*a' : `*b${i - 1}`).join(', ')}]`).join('\n')}\n`, { author: 'x' }) },
  { label: 'deep nesting', apply: (a) => a.replace(`version: 1\npolicies: ${'['.repeat(50_000)}${']'.repeat(50_000)}\n`, { author: 'x' }) },
  { label: 'repeated key', apply: (a) => a.replace('version: 1\nmode: strict\nmode: monitoring\n', { author: 'x' }) },
  { label: 'unknown type', apply: (a) => a.create({ id: 'warp', type: 'teleport' }, { author: 'x' }) },
  { label: 'catastrophic regex', apply: (a) => a.patch('sensitive-data', { config: { patterns: [{ id: 'evil', regex: '(a+)+$' }] } }, { author: 'x' }) },
  { label: 'huge allow-list', apply: (a) => a.patch('approved-egress', { config: { allowed_domains: Array.from({ length: 10_001 }, (_, i) => `d${i}.example.com`) } }, { author: 'x' }) },
  { label: 'value of the wrong type', apply: (a) => a.patch('api-rate-spike', { config: { threshold: 'lots' } }, { author: 'x' }) },
  { label: 'unknown key', apply: (a) => a.update('approved-agents', { type: 'unknown_agent', config: { allowed_agents: ['cursor'], allow_everyone: true } }, { author: 'x' }) },
  { label: 'file include from the API', apply: (a) => a.replace({ version: 1, include: ['/etc/passwd'] }, { author: 'x' }) },
  { label: 'a value that is not JSON', apply: (a) => a.replace({ version: 1, policies: [{ id: 'p', type: 'rate_spike', config: { threshold: 10n } }] }, { author: 'x' }) },
];

describe('the policy in force stays in force', () => {
  async function seeded() {
    const published: number[] = [];
    const a = new PolicyAdmin({
      store: new MemoryPolicyVersionStore(),
      registry: defaultRegistry,
      publish: async (v) => {
        published.push(v.version);
      },
      logger: pino({ level: 'silent' }),
      clock: () => TUESDAY_10H,
    });
    await a.init({ path: 'default.yaml', text: DEFAULT_YAML, loaded: { document: parsePolicyText(DEFAULT_YAML, 'default.yaml'), files: [] } });
    return { admin: a, published };
  }

  it.each(HOSTILE_CHANGES.map((c) => [c.label, c] as const))('%s: refused; version, publications and decisions unchanged', async (_label, change) => {
    const { admin: a, published } = await seeded();
    const before = judge(a.document);
    const error = await change.apply(a).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(PolicyAdminError);
    expect((error as PolicyAdminError).code).toBe('invalid');
    const { problems } = error as PolicyAdminError;
    expectNamedProblems(problems, problems.map((p) => `${p.path}: ${p.message}`).join('; '));
    expect(a.version.version).toBe(1);
    expect(published).toEqual([1]);
    expect(judge(a.document)).toEqual(before);
  });

  it('a stream of random hostile documents never changes the version in force or its decisions', async () => {
    const { admin: a, published } = await seeded();
    const before = judge(a.document);
    // Random documents with one refused ingredient each, so every replace must fail.
    const poisoned = fc.tuple(fc.array(mutationArb, { maxLength: 3 }), fc.constantFrom(...CATASTROPHIC), fc.nat()).map(([mutations, regex, at]) => {
      const doc = mutate(DEFAULT_SOURCE, mutations);
      const policies = Array.isArray(doc.policies) ? doc.policies : (doc.policies = []);
      policies.splice(at % (policies.length + 1), 0, { id: 'poison', type: 'data_protection', config: { patterns: [{ id: 'p', regex }] } });
      return doc;
    });
    await fc.assert(
      fc.asyncProperty(fc.oneof(poisoned, yamlish.map((t) => `version: 2\n${t}`)), async (candidate) => {
        await yieldToVitest();
        await expect(a.replace(candidate, { author: 'fuzz' })).rejects.toBeInstanceOf(PolicyAdminError);
      }),
      { numRuns: 200 },
    );
    expect(a.version.version).toBe(1);
    expect(published).toEqual([1]);
    expect(judge(a.document)).toEqual(before);
    // A valid change still goes through afterwards.
    expect((await a.setMode('strict', { author: 'admin' })).version).toBe(2);
  });
});
