import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { isMap, isScalar, isSeq, parseDocument } from 'yaml';
import { AgentwatchError } from '../core/errors.js';
import {
  mergeIncludedPolicies,
  parsePolicyFile,
  type IncludedPolicies,
  type PolicyDocument,
  type ValidatedPolicy,
} from '../core/policy.js';
import type { ValidationProblem } from '../core/validation.js';
import { defaultRegistry, type PolicyTypeRegistry } from './registry.js';

export const DetectorErrorCodes = ['AW_DETECTORS_POLICY_INVALID', 'AW_DETECTORS_POLICY_UNREADABLE'] as const;

/** A policy document that failed validation; `problems` name each path (prefixed with the file for included packs). */
export class PolicyValidationError extends AgentwatchError {
  constructor(
    readonly source: string,
    readonly problems: ValidationProblem[],
  ) {
    super('AW_DETECTORS_POLICY_INVALID', `invalid policy document ${source}: ${problems.map((p) => `${p.path}: ${p.message}`).join('; ')}`, {
      details: problems,
    });
    this.name = 'PolicyValidationError';
  }
}

/** A validated document and every file it was assembled from. */
export interface LoadedPolicies {
  document: PolicyDocument;
  /** Absolute paths of the document and every file it includes (directly or not), in reading order; watch these to hot-reload. */
  files: string[];
}

/** Options of {@link parsePolicyText}. */
export interface PolicyTextOptions {
  /**
   * Folder relative `include` paths are resolved against (the document's own
   * folder). Without it only `pack:<name>` includes are allowed, so text from
   * an untrusted source (an API request) cannot make the process read files.
   * @default none
   */
  baseDir?: string;
  /**
   * Folder of the built-in packs `pack:<name>` names.
   * @default `<package root>/policies/packs`
   */
  packsDir?: string;
}

/** `pack:strict` → `<packs dir>/strict.yaml`; names are plain so they cannot climb out of the folder. */
const PACK_SHORTHAND = /^pack:([A-Za-z0-9_-]+)$/;

/** The built-in packs of this installation: `<package root>/policies/packs`. */
export function builtinPacksDir(): string {
  for (let dir = path.dirname(fileURLToPath(import.meta.url)); ; dir = path.dirname(dir)) {
    if (existsSync(path.join(dir, 'package.json'))) return path.join(dir, 'policies', 'packs');
    if (path.dirname(dir) === dir) return path.resolve('policies', 'packs');
  }
}

/**
 * Parses YAML or JSON text into a validated policy document. YAML syntax errors
 * are reported with line and column; schema errors with their path. `include`
 * entries are resolved as described in {@link loadPolicyBundle}.
 */
export function parsePolicyText(
  text: string,
  source = 'policy document',
  registry: PolicyTypeRegistry = defaultRegistry,
  options: PolicyTextOptions = {},
): PolicyDocument {
  const resolver = new IncludeResolver(registry, options.baseDir, options.packsDir ?? builtinPacksDir());
  return resolver.resolveTop(text, source, undefined);
}

/** Reads and validates a policy file, with its includes. */
export function loadPolicyFile(file: string, registry: PolicyTypeRegistry = defaultRegistry): PolicyDocument {
  return loadPolicyBundle(file, registry).document;
}

/**
 * Reads and validates a policy file and the packs it includes.
 *
 * `include` grammar: `pack:<name>` names a built-in pack
 * (`policies/packs/<name>.yaml` of the installation); anything else is a file
 * path, relative to the including file's folder. Included files are merged
 * first, in order, then the document's own policies (see
 * `mergeIncludedPolicies`). Nested includes are followed; a cycle is an error;
 * a file reached twice (two packs including a common one) is read once and its
 * policies are not counted twice. `mode` and `timezone` come from the top
 * document only: an included file setting them is an error, so nobody expects
 * a pack to switch enforcement on. Problems in an included file are prefixed
 * with its name: `packs/hipaa.yaml: policies[3].config.window_minutes: …`.
 *
 * @throws AgentwatchError `AW_DETECTORS_POLICY_UNREADABLE` when the top file cannot be read
 * @throws PolicyValidationError for every other problem, including unreadable included files
 */
export function loadPolicyBundle(file: string, registry: PolicyTypeRegistry = defaultRegistry, packsDir = builtinPacksDir()): LoadedPolicies {
  const absolute = path.resolve(file);
  let text: string;
  try {
    text = readFileSync(absolute, 'utf8');
  } catch (cause) {
    throw new AgentwatchError('AW_DETECTORS_POLICY_UNREADABLE', `cannot read policy file ${file}: ${(cause as Error).message}`, { cause });
  }
  const resolver = new IncludeResolver(registry, path.dirname(absolute), packsDir);
  const document = resolver.resolveTop(text, file, absolute);
  return { document, files: resolver.files };
}

/** Result of one included file: its merged policies, or the problems (already prefixed with its label). */
type Resolved = { ok: true; policies: ValidatedPolicy[] } | { ok: false; problems: ValidationProblem[] };

class IncludeResolver {
  readonly files: string[] = [];
  /** Merged policies per absolute file: a file reached twice yields the same objects, which the merge recognises. */
  private readonly done = new Map<string, Resolved>();
  /** Files being resolved, outermost first: for cycle detection. */
  private readonly stack: string[] = [];

  constructor(
    private readonly registry: PolicyTypeRegistry,
    /** The top document's folder: labels of included files are relative to it. */
    private readonly topDir: string | undefined,
    private readonly packsDir: string,
  ) {}

  resolveTop(text: string, source: string, absolute: string | undefined): PolicyDocument {
    if (absolute !== undefined) {
      this.files.push(absolute);
      this.stack.push(absolute);
    }
    const decoded = decodePolicyYaml(text);
    if (!decoded.ok) throw new PolicyValidationError(source, decoded.problems);
    const parsed = parsePolicyFile(decoded.value, this.registry);
    if (!parsed.ok) throw new PolicyValidationError(source, parsed.problems);
    const { file } = parsed;
    const included = this.resolveIncludes(file.include, this.topDir, '');
    if (!included.ok) throw new PolicyValidationError(source, included.problems);
    const merged = mergeIncludedPolicies(included.sources, file);
    if (!merged.ok) throw new PolicyValidationError(source, merged.problems);
    return { version: 1, mode: file.mode, timezone: file.timezone, policies: merged.policies };
  }

  private resolveIncludes(
    specs: readonly string[],
    dir: string | undefined,
    prefix: string,
  ): { ok: true; sources: IncludedPolicies[] } | { ok: false; problems: ValidationProblem[] } {
    const problems: ValidationProblem[] = [];
    const sources: IncludedPolicies[] = [];
    specs.forEach((spec, i) => {
      const at = `${prefix}include[${i}]`;
      const target = this.locate(spec, dir);
      if (typeof target !== 'string') {
        problems.push({ path: at, message: target.problem });
        return;
      }
      const label = this.label(target);
      if (this.stack.includes(target)) {
        const cycle = [...this.stack.slice(this.stack.indexOf(target)), target].map((f) => this.label(f)).join(' → ');
        problems.push({ path: at, message: `include cycle: ${cycle}` });
        return;
      }
      const resolved = this.resolveFile(target, label, at);
      if (!resolved.ok) problems.push(...resolved.problems);
      else sources.push({ label, policies: resolved.policies });
    });
    return problems.length > 0 ? { ok: false, problems } : { ok: true, sources };
  }

  private resolveFile(absolute: string, label: string, at: string): Resolved {
    const known = this.done.get(absolute);
    if (known !== undefined) return known;
    const prefixed = (problems: readonly ValidationProblem[]): Resolved => ({
      ok: false,
      problems: problems.map((p) => (p.path.includes(': ') ? p : { path: `${label}: ${p.path}`, message: p.message })),
    });
    let text: string;
    try {
      text = readFileSync(absolute, 'utf8');
    } catch (cause) {
      return { ok: false, problems: [{ path: at, message: `cannot read ${label}: ${(cause as Error).message}` }] };
    }
    this.files.push(absolute);
    this.stack.push(absolute);
    try {
      const decoded = decodePolicyYaml(text);
      if (!decoded.ok) return prefixed(decoded.problems);
      const parsed = parsePolicyFile(decoded.value, this.registry);
      if (!parsed.ok) return prefixed(parsed.problems);
      const { file } = parsed;
      const settings: ValidationProblem[] = [];
      if (file.explicit.mode) settings.push({ path: 'mode', message: 'only the top document sets mode; remove it from the included file' });
      if (file.explicit.timezone) settings.push({ path: 'timezone', message: 'only the top document sets timezone; set config.timezone on a policy instead' });
      if (settings.length > 0) return prefixed(settings);
      const included = this.resolveIncludes(file.include, path.dirname(absolute), '');
      if (!included.ok) return prefixed(included.problems);
      const merged = mergeIncludedPolicies(included.sources, file);
      const result: Resolved = merged.ok ? merged : prefixed(merged.problems);
      this.done.set(absolute, result);
      return result;
    } finally {
      this.stack.pop();
    }
  }

  private locate(spec: string, dir: string | undefined): string | { problem: string } {
    if (spec.startsWith('pack:')) {
      const m = PACK_SHORTHAND.exec(spec);
      if (m === null) return { problem: `"${spec}" is not a pack name: use pack:<name> with letters, digits, _ and -` };
      return path.join(this.packsDir, `${m[1] as string}.yaml`);
    }
    // A document without a location (sent to the API) may only include built-in packs: it must never make the process open a path.
    if (dir === undefined) return { problem: `"${spec}": a document that is not read from a file may only include built-in packs (pack:<name>)` };
    if (path.isAbsolute(spec)) return path.normalize(spec);
    return path.resolve(dir, spec);
  }

  /** How problems name a file: `pack:<name>` for built-in packs, else relative to the top document, else absolute. */
  private label(absolute: string): string {
    const inPacks = path.relative(this.packsDir, absolute);
    if (!inPacks.startsWith('..') && !path.isAbsolute(inPacks) && inPacks.endsWith('.yaml') && !inPacks.includes(path.sep)) {
      return `pack:${inPacks.slice(0, -'.yaml'.length)}`;
    }
    if (this.topDir !== undefined) {
      const relative = path.relative(this.topDir, absolute);
      if (!relative.startsWith('..') && !path.isAbsolute(relative)) return relative.split(path.sep).join('/');
    }
    return absolute;
  }
}

/** The first key repeated within one mapping, walking every mapping and sequence once. */
function firstDuplicateKey(root: unknown, text: string): { key: string; line: number | undefined } | undefined {
  const stack: unknown[] = [root];
  while (stack.length > 0) {
    const node = stack.pop();
    if (isMap(node)) {
      const seen = new Set<string>();
      for (const pair of node.items) {
        const key = isScalar(pair.key) ? String(pair.key.value) : String(pair.key);
        if (seen.has(key)) {
          const offset = isScalar(pair.key) ? pair.key.range?.[0] : undefined;
          return { key, line: offset === undefined ? undefined : text.slice(0, offset).split('\n').length };
        }
        seen.add(key);
        stack.push(pair.value);
      }
    } else if (isSeq(node)) {
      for (const item of node.items) stack.push(item);
    }
  }
  return undefined;
}

/** YAML (a superset of JSON) to a plain value; syntax errors and repeated keys name the line. Linear in the text. */
export function decodePolicyYaml(text: string): { ok: true; value: unknown } | { ok: false; problems: ValidationProblem[] } {
  // The yaml library's own duplicate-key check is quadratic in the keys of a
  // mapping (a 400 KB document took 80 s): check with a Set per mapping instead.
  // logLevel "error": the library's warnings (a mapping key that is itself a
  // collection) would go to process.emitWarning; such keys fail validation anyway.
  const doc = parseDocument(text, { prettyErrors: true, uniqueKeys: false, logLevel: 'error' });
  if (doc.errors.length === 0) {
    const duplicate = firstDuplicateKey(doc.contents, text);
    if (duplicate !== undefined) {
      return { ok: false, problems: [{ path: duplicate.line === undefined ? '(document)' : `line ${duplicate.line}`, message: `Map keys must be unique: "${duplicate.key}" appears twice` }] };
    }
  }
  if (doc.errors.length > 0) {
    return {
      ok: false,
      problems: doc.errors.map((e) => ({
        path: e.linePos?.[0] === undefined ? '(document)' : `line ${e.linePos[0].line}, column ${e.linePos[0].col}`,
        message: e.message.split('\n')[0] ?? e.message,
      })),
    };
  }
  try {
    return { ok: true, value: doc.toJS({ maxAliasCount: 100 }) };
  } catch (error) {
    // Building the value refuses aliases that expand beyond maxAliasCount ("billion laughs")
    // and aliases of anchors never set (`*a` alone), by throwing.
    return { ok: false, problems: [{ path: '(document)', message: (error as Error).message }] };
  }
}
