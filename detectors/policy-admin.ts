import { createHash } from 'node:crypto';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';
import type { Logger } from 'pino';
import type { PolicyDocument, ValidatedPolicy } from '../core/policy.js';
import type { PublishedPolicyVersion } from '../core/topics.js';
import type { ValidationProblem } from '../core/validation.js';
import type { PolicyVersionRecord, PolicyVersionStore } from '../storage/clickhouse/policy-versions.js';
import { decodePolicyYaml, parsePolicyText, PolicyValidationError, type LoadedPolicies } from './policy-loader.js';
import type { PolicyTypeRegistry } from './registry.js';

/** A policy document as written (JSON object): `include` of packs kept, patches kept. */
export interface PolicySource {
  version: 1;
  mode?: 'monitoring' | 'strict';
  timezone?: string;
  include?: string[];
  policies?: Record<string, unknown>[];
  [key: string]: unknown;
}


/** A policy as the API shows it: the resolved definition and where it comes from. */
export type PolicyView = ValidatedPolicy & { origin: 'document' | 'include' };

export type PolicyAdminErrorCode = 'not_found' | 'conflict' | 'invalid' | 'stale';

/** A refused change; the running document stays in force. */
export class PolicyAdminError extends Error {
  constructor(
    readonly code: PolicyAdminErrorCode,
    message: string,
    readonly problems: ValidationProblem[] = [],
  ) {
    super(message);
    this.name = 'PolicyAdminError';
  }
}

export interface PolicyAdminDeps {
  store: PolicyVersionStore;
  registry: PolicyTypeRegistry;
  /** Hands a new version to the workers (the policies topic). */
  publish: (version: PublishedPolicyVersion) => Promise<void>;
  logger: Logger;
  clock?: () => number;
}

/** Who makes a change and why; `expected_version` makes it conditional on the version the caller saw. */
export interface ChangeContext {
  author: string;
  comment?: string;
  expected_version?: number;
}

interface Current {
  record: PolicyVersionRecord;
  source: PolicySource;
  document: PolicyDocument;
}

const sha256 = (text: string): string => createHash('sha256').update(text).digest('hex');

function stableJson(value: unknown): string {
  return JSON.stringify(value);
}

/** Ids whose resolved definition differs between two documents (added, removed or changed), sorted. */
export function changedPolicyIds(before: PolicyDocument | null, after: PolicyDocument): string[] {
  const old = new Map((before?.policies ?? []).map((p) => [p.id, stableJson(p)]));
  const now = new Map(after.policies.map((p) => [p.id, stableJson(p)]));
  const ids = new Set<string>();
  for (const [id, json] of now) if (old.get(id) !== json) ids.add(id);
  for (const id of old.keys()) if (!now.has(id)) ids.add(id);
  return [...ids].sort();
}

/**
 * The policy document's control plane: every change is validated as a whole
 * document, stored as a new version (history, rollback) and published to the
 * workers. Changes are applied one at a time; a refused change leaves the
 * running version in force.
 */
export class PolicyAdmin {
  private current: Current | undefined;
  private queue: Promise<unknown> = Promise.resolve();
  private readonly clock: () => number;

  constructor(private readonly deps: PolicyAdminDeps) {
    this.clock = deps.clock ?? Date.now;
  }

  /** Parses and validates a candidate document (object, or YAML/JSON text). Only `pack:` includes are allowed. */
  parse(candidate: unknown, source = 'policy document'): { source: PolicySource; document: PolicyDocument } {
    let value = candidate;
    if (typeof candidate === 'string') {
      let decoded: ReturnType<typeof decodePolicyYaml>;
      try {
        decoded = decodePolicyYaml(candidate);
      } catch (error) {
        throw new PolicyAdminError('invalid', `${source}: ${(error as Error).message}`, [{ path: '(document)', message: (error as Error).message }]);
      }
      if (!decoded.ok) throw new PolicyAdminError('invalid', `${source}: ${decoded.problems.map((p) => `${p.path}: ${p.message}`).join('; ')}`, decoded.problems);
      value = decoded.value;
    }
    if (value === null || typeof value !== 'object' || Array.isArray(value)) {
      throw new PolicyAdminError('invalid', `${source} must be a mapping`, [{ path: '(document)', message: 'must be a mapping' }]);
    }
    let json: string;
    try {
      json = JSON.stringify(value);
    } catch (error) {
      // YAML aliases can build a cycle (`x: &a [ *a ]`).
      throw new PolicyAdminError('invalid', `${source} cannot be represented as JSON: ${(error as Error).message}`, [{ path: '(document)', message: (error as Error).message }]);
    }
    try {
      const document = parsePolicyText(json, source, this.deps.registry);
      return { source: JSON.parse(json) as PolicySource, document };
    } catch (error) {
      if (error instanceof PolicyValidationError) throw new PolicyAdminError('invalid', error.message, error.problems);
      if (error instanceof RangeError) throw new PolicyAdminError('invalid', `${source} is nested too deeply`, [{ path: '(document)', message: error.message }]);
      throw error;
    }
  }

  /**
   * Loads the newest stored version, or seeds version 1 from the policy file.
   * A file whose content changed since the lineage last took it in (edited
   * while the process was down) becomes a new version. Publishes the version in force.
   */
  async init(file: { path: string; text: string; loaded: LoadedPolicies }): Promise<PolicyVersionRecord> {
    const latest = await this.deps.store.latest();
    const fileSha = sha256(file.text);
    if (latest !== null) {
      const parsed = this.parse(latest.document, `policy version ${latest.version}`);
      this.current = { record: latest, ...parsed };
      if (latest.file_sha256 === fileSha) {
        await this.publishCurrent();
        return latest;
      }
    }
    return this.enqueue(() => this.commit(this.sourceOfFile(file), file.loaded.document, { author: latest === null ? 'seed' : 'file', comment: `from ${path.basename(file.path)}` }, latest === null ? 'seed' : 'file', fileSha, latest));
  }

  /** The policy file changed on disk: it becomes the next version. */
  fromFile(file: { path: string; text: string; loaded: LoadedPolicies }): Promise<PolicyVersionRecord> {
    return this.enqueue(async () => {
      await this.refresh();
      const fileSha = sha256(file.text);
      const current = this.require();
      if (current.record.file_sha256 === fileSha) return current.record;
      this.deps.logger.warn({ file: file.path, replaces: current.record.version }, 'policy file changed: it becomes the next version, replacing changes made through the API since');
      return this.commit(this.sourceOfFile(file), file.loaded.document, { author: 'file', comment: `from ${path.basename(file.path)}` }, 'file', fileSha, current.record);
    });
  }

  /** Republishes the version in force (workers that start later read it from the topic). */
  async publishCurrent(): Promise<void> {
    const { record } = this.require();
    await this.deps.publish({ version: record.version, sha256: record.sha256, document: record.document, created_at: record.created_at });
  }

  get version(): PolicyVersionRecord {
    return this.require().record;
  }

  get document(): PolicyDocument {
    return this.require().document;
  }

  get source(): PolicySource {
    return structuredClone(this.require().source);
  }

  listPolicies(): PolicyView[] {
    const { source, document } = this.require();
    const own = new Set((source.policies ?? []).filter((p) => p.type !== undefined).map((p) => String(p.id)));
    return document.policies.map((p) => ({ ...p, origin: own.has(p.id) ? 'document' : 'include' }));
  }

  getPolicy(id: string): PolicyView | undefined {
    return this.listPolicies().find((p) => p.id === id);
  }

  create(policy: Record<string, unknown>, ctx: ChangeContext): Promise<PolicyVersionRecord> {
    return this.change(ctx, 'create', (source, document) => {
      const id = String(policy.id ?? '');
      if (document.policies.some((p) => p.id === id)) throw new PolicyAdminError('conflict', `a policy with id ${id} exists`);
      (source.policies ??= []).push(policy);
    });
  }

  /** Replaces a policy's definition; a policy from an included pack gets an override of the same id. */
  update(id: string, policy: Record<string, unknown>, ctx: ChangeContext): Promise<PolicyVersionRecord> {
    return this.change(ctx, 'update', (source, document) => {
      if (!document.policies.some((p) => p.id === id)) throw new PolicyAdminError('not_found', `no policy ${id}`);
      const next = { ...policy, id };
      const list = source.policies ?? [];
      // The complete definition replaces the document's own entries for the id (a patch of a pack policy included).
      const index = list.findIndex((p) => p.id === id);
      const kept = list.filter((p) => p.id !== id);
      kept.splice(index >= 0 ? index : kept.length, 0, next);
      source.policies = kept;
    });
  }

  /** Merges top-level fields into a policy (`config` one level deep). */
  patch(id: string, fields: Record<string, unknown>, ctx: ChangeContext): Promise<PolicyVersionRecord> {
    const existing = this.getPolicy(id);
    if (existing === undefined) return Promise.reject(new PolicyAdminError('not_found', `no policy ${id}`));
    const { origin: _origin, ...definition } = existing;
    const merged: Record<string, unknown> = { ...definition, ...fields, id };
    if (isRecord(fields.config)) merged.config = { ...(definition.config as Record<string, unknown>), ...fields.config };
    return this.update(id, merged, ctx);
  }

  toggle(id: string, enabled: boolean, ctx: ChangeContext): Promise<PolicyVersionRecord> {
    return this.change(ctx, 'toggle', (source, document) => {
      if (!document.policies.some((p) => p.id === id)) throw new PolicyAdminError('not_found', `no policy ${id}`);
      const list = (source.policies ??= []);
      const own = list.filter((p) => p.id === id);
      if (own.length === 0) list.push({ id, enabled });
      for (const entry of own) entry.enabled = enabled;
    });
  }

  remove(id: string, ctx: ChangeContext): Promise<PolicyVersionRecord> {
    return this.change(ctx, 'delete', (source, document) => {
      if (!document.policies.some((p) => p.id === id)) throw new PolicyAdminError('not_found', `no policy ${id}`);
      const list = source.policies ?? [];
      if (!list.some((p) => p.id === id && p.type !== undefined)) {
        throw new PolicyAdminError('conflict', `policy ${id} comes from an included pack; disable it (PATCH /v1/policies/${id}/toggle) instead`);
      }
      source.policies = list.filter((p) => p.id !== id);
    });
  }

  setMode(mode: 'monitoring' | 'strict', ctx: ChangeContext): Promise<PolicyVersionRecord> {
    return this.change(ctx, 'mode', (source) => {
      source.mode = mode;
    });
  }

  replace(candidate: unknown, ctx: ChangeContext): Promise<PolicyVersionRecord> {
    return this.enqueue(async () => {
      await this.refresh();
      const current = this.checkExpected(ctx);
      const parsed = this.parse(candidate);
      return this.commit(parsed.source, parsed.document, ctx, 'replace', current.record.file_sha256, current.record);
    });
  }

  /** A new version whose document is that of `version`. */
  rollback(version: number, ctx: ChangeContext): Promise<PolicyVersionRecord> {
    return this.enqueue(async () => {
      await this.refresh();
      const current = this.checkExpected(ctx);
      const target = await this.deps.store.get(version);
      if (target === null) throw new PolicyAdminError('not_found', `no policy version ${version}`);
      const parsed = this.parse(target.document, `policy version ${version}`);
      return this.commit(parsed.source, parsed.document, { ...ctx, comment: ctx.comment ?? `rollback to version ${version}` }, 'rollback', current.record.file_sha256, current.record);
    });
  }

  /** One policy back to its definition at `version` (removed if it did not exist then). */
  rollbackPolicy(id: string, version: number, ctx: ChangeContext): Promise<PolicyVersionRecord> {
    return this.enqueue(async () => {
      await this.refresh();
      const current = this.checkExpected(ctx);
      const target = await this.deps.store.get(version);
      if (target === null) throw new PolicyAdminError('not_found', `no policy version ${version}`);
      const old = this.parse(target.document, `policy version ${version}`).source;
      const source = structuredClone(current.source);
      const oldEntries = (old.policies ?? []).filter((p) => p.id === id);
      const list = (source.policies ?? []).filter((p) => p.id !== id);
      list.push(...oldEntries);
      source.policies = list;
      const parsed = this.parse(source);
      return this.commit(parsed.source, parsed.document, { ...ctx, comment: ctx.comment ?? `policy ${id} rolled back to version ${version}` }, 'rollback', current.record.file_sha256, current.record);
    });
  }

  listVersions(limit: number, before?: number): Promise<PolicyVersionRecord[]> {
    return this.deps.store.list({ limit, ...(before === undefined ? {} : { before }) });
  }

  getVersion(version: number): Promise<PolicyVersionRecord | null> {
    return this.deps.store.get(version);
  }

  /** Versions that changed one policy, newest first, with its definition at each (null where it was removed). */
  async policyHistory(id: string, limit: number): Promise<{ version: PolicyVersionRecord; policy: ValidatedPolicy | null }[]> {
    const out: { version: PolicyVersionRecord; policy: ValidatedPolicy | null }[] = [];
    let before: number | undefined;
    for (;;) {
      const page = await this.deps.store.list({ limit: 200, withDocuments: true, ...(before === undefined ? {} : { before }) });
      for (const record of page) {
        if (!record.changed.includes(id)) continue;
        const document = this.parse(record.document, `policy version ${record.version}`).document;
        const { document: _doc, ...meta } = record;
        out.push({ version: { ...meta, document: '' }, policy: document.policies.find((p) => p.id === id) ?? null });
        if (out.length >= limit) return out;
      }
      if (page.length < 200) return out;
      before = page.at(-1)?.version;
    }
  }

  private sourceOfFile(file: { text: string; loaded: LoadedPolicies }): PolicySource {
    const raw = parseYaml(file.text, { maxAliasCount: 100 }) as PolicySource;
    const includes = raw.include ?? [];
    // Files a relative include names cannot be read from an API document: take their policies in.
    if (includes.every((entry) => /^pack:/.test(entry))) return raw;
    const { mode, timezone, policies } = file.loaded.document;
    return { version: 1, mode, timezone, policies: policies as unknown as Record<string, unknown>[] };
  }

  private require(): Current {
    if (this.current === undefined) throw new Error('PolicyAdmin.init() has not run');
    return this.current;
  }

  /**
   * Adopts a newer version another API process stored (a shared ClickHouse
   * server), so version numbers never fork. Runs inside the queue.
   */
  private async refresh(): Promise<void> {
    const latest = await this.deps.store.latest();
    const current = this.require();
    if (latest === null || latest.version <= current.record.version) return;
    this.current = { record: latest, ...this.parse(latest.document, `policy version ${latest.version}`) };
  }

  private checkExpected(ctx: ChangeContext): Current {
    const current = this.require();
    if (ctx.expected_version !== undefined && ctx.expected_version !== current.record.version) {
      throw new PolicyAdminError('stale', `the document is at version ${current.record.version}, not ${ctx.expected_version}; reload and retry`);
    }
    return current;
  }

  private change(ctx: ChangeContext, action: string, edit: (source: PolicySource, document: PolicyDocument) => void): Promise<PolicyVersionRecord> {
    return this.enqueue(async () => {
      await this.refresh();
      const current = this.checkExpected(ctx);
      const source = structuredClone(current.source);
      edit(source, current.document);
      const parsed = this.parse(source);
      return this.commit(parsed.source, parsed.document, ctx, action, current.record.file_sha256, current.record);
    });
  }

  private async commit(
    source: PolicySource,
    document: PolicyDocument,
    ctx: ChangeContext,
    action: string,
    fileSha: string,
    previous: PolicyVersionRecord | null,
  ): Promise<PolicyVersionRecord> {
    const text = JSON.stringify(source);
    const record: PolicyVersionRecord = {
      version: (previous?.version ?? 0) + 1,
      created_at: this.clock(),
      author: ctx.author,
      action,
      comment: ctx.comment ?? '',
      changed: changedPolicyIds(this.current?.document ?? null, document),
      mode: document.mode,
      document: text,
      sha256: sha256(text),
      file_sha256: fileSha,
    };
    await this.deps.store.append(record);
    this.current = { record, source, document };
    this.deps.logger.info({ version: record.version, action, author: ctx.author, changed: record.changed, mode: record.mode }, 'policy version stored');
    await this.publishCurrent();
    return record;
  }

  private enqueue<T>(task: () => Promise<T>): Promise<T> {
    const run = this.queue.then(task, task);
    this.queue = run.catch(() => undefined);
    return run;
  }
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}
