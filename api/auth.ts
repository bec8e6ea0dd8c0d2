import { createHash, randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { AgentwatchError } from '../core/errors.js';
import { problemsFromZod } from '../core/validation.js';

/**
 * Roles of API keys. `admin` may do everything; `analyst` reads, acknowledges
 * and resolves alerts, dry-runs and queries; `ingest` may only post events.
 */
export const Roles = ['admin', 'analyst', 'ingest'] as const;
export type Role = (typeof Roles)[number];

/** What a route requires: a role set, or nothing (`public`). */
export type Access = 'public' | 'ingest' | 'read' | 'analyst' | 'admin';

/** Roles each access level admits. `read` and `analyst` are the same set; the names say what the route does. */
const ADMITTED: Record<Exclude<Access, 'public'>, readonly Role[]> = {
  ingest: ['ingest', 'admin'],
  read: ['analyst', 'admin'],
  analyst: ['analyst', 'admin'],
  admin: ['admin'],
};

export function admits(access: Exclude<Access, 'public'>, role: Role): boolean {
  return ADMITTED[access].includes(role);
}

/** The caller of a request, once its key checked out. */
export interface Principal {
  /** The key's id (never the key): recorded as the author of changes. */
  key_id: string;
  role: Role;
  /** A tenant-bound key sees and changes only this tenant's data; null: every tenant. */
  tenant: string | null;
}

const HASH = /^sha256:[0-9a-f]{64}$/;

/** One configured key: its id, role, optional tenant and the sha256 of the key (never the key itself). */
export const ApiKeySchema = z.strictObject({
  id: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/, 'must be 1–64 letters, digits, . _ - (starting with a letter or digit)'),
  role: z.enum(Roles),
  tenant: z.string().min(1).max(128).optional(),
  hash: z.string().regex(HASH, 'must be sha256:<64 lowercase hex digits> (see `agentwatch keys create`)'),
});
export type ApiKeyConfig = z.output<typeof ApiKeySchema>;

/** API keys start with this, so a leaked one is recognisable (secret scanners, log greps). */
export const KEY_PREFIX = 'awk_';

/** A fresh key: `awk_` + 32 random bytes, base64url. */
export function generateApiKey(): string {
  return `${KEY_PREFIX}${randomBytes(32).toString('base64url')}`;
}

/**
 * `sha256:<hex>` of a key. Keys are 256-bit random, so a plain hash cannot be
 * brute-forced and a slow KDF would only cost every request time.
 */
export function hashApiKey(key: string): string {
  return `sha256:${createHash('sha256').update(key, 'utf8').digest('hex')}`;
}

/** Checks bearer keys against the configured hashes. */
export class ApiKeyRing {
  private readonly byHash = new Map<string, Principal>();

  constructor(keys: readonly ApiKeyConfig[]) {
    const ids = new Set<string>();
    for (const key of keys) {
      if (ids.has(key.id)) throw new AgentwatchError('AW_CORE_INVALID_CONFIG', `api.keys: the id ${key.id} is used twice`);
      if (this.byHash.has(key.hash)) throw new AgentwatchError('AW_CORE_INVALID_CONFIG', `api.keys: ${key.id} has the same key as another entry`);
      ids.add(key.id);
      this.byHash.set(key.hash, { key_id: key.id, role: key.role, tenant: key.tenant ?? null });
    }
  }

  get size(): number {
    return this.byHash.size;
  }

  /**
   * The principal of an `Authorization` header value, or null. The lookup is
   * by the key's hash, so the time it takes reveals nothing about stored keys.
   */
  authenticate(header: string | undefined): Principal | null {
    if (header === undefined) return null;
    const match = /^Bearer[ \t]+(\S{1,512})[ \t]*$/i.exec(header);
    if (match === null) return null;
    return this.byHash.get(hashApiKey(match[1] as string)) ?? null;
  }
}

/** File (in the data directory) holding the hashes of keys agentwatch created itself. */
export const GENERATED_KEYS_FILE = 'api-keys.json';
/** File (in the data directory, mode 0600) holding the first-start admin key for the operator to pick up. */
export const ADMIN_KEY_FILE = 'admin-api-key';

const GeneratedKeysSchema = z.strictObject({ keys: z.array(ApiKeySchema) });

/** What {@link resolveApiKeys} found or did. */
export interface ResolvedKeys {
  keys: ApiKeyConfig[];
  /** Where the keys came from. */
  source: 'config' | 'data-dir';
  /** Set only when this call created the first admin key: shown to the operator once, never logged. */
  createdAdminKey?: { key: string; file: string };
}

function writePrivate(file: string, text: string): void {
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, text, { mode: 0o600 });
  chmodSync(tmp, 0o600);
  renameSync(tmp, file);
}

/**
 * The keys the API accepts. Configured keys win. Without any, the keys
 * agentwatch created earlier in `<dataDir>/api-keys.json`; on the very first
 * start, a new admin key: only its hash is kept in that file, and the key is
 * written to `<dataDir>/admin-api-key` (mode 0600) and returned for the caller
 * to print once. Nothing is open by default.
 */
export function resolveApiKeys(configured: readonly ApiKeyConfig[], dataDir: string): ResolvedKeys {
  if (configured.length > 0) return { keys: [...configured], source: 'config' };
  const store = path.join(dataDir, GENERATED_KEYS_FILE);
  if (existsSync(store)) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(readFileSync(store, 'utf8'));
    } catch (cause) {
      throw new AgentwatchError('AW_CORE_INVALID_CONFIG', `cannot read ${store}: ${(cause as Error).message}`, { cause });
    }
    const result = GeneratedKeysSchema.safeParse(parsed);
    if (!result.success) {
      const problems = problemsFromZod(result.error);
      throw new AgentwatchError('AW_CORE_INVALID_CONFIG', `${store}: ${problems.map((p) => `${p.path}: ${p.message}`).join('; ')}`);
    }
    if (result.data.keys.length > 0) return { keys: result.data.keys, source: 'data-dir' };
  }
  mkdirSync(dataDir, { recursive: true });
  const key = generateApiKey();
  const entry: ApiKeyConfig = { id: 'bootstrap-admin', role: 'admin', hash: hashApiKey(key) };
  const keyFile = path.join(dataDir, ADMIN_KEY_FILE);
  writePrivate(keyFile, `${key}\n`);
  writePrivate(store, `${JSON.stringify({ keys: [entry] }, null, 2)}\n`);
  return { keys: [entry], source: 'data-dir', createdAdminKey: { key, file: keyFile } };
}
