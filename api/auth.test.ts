import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { AgentwatchError } from '../core/errors.js';
import { ADMIN_KEY_FILE, ApiKeyRing, GENERATED_KEYS_FILE, admits, generateApiKey, hashApiKey, resolveApiKeys } from './auth.js';

const dirs: string[] = [];
const tempDir = () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'aw-auth-'));
  dirs.push(dir);
  return dir;
};
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

describe('API keys', () => {
  it('generates distinct 256-bit keys with a recognisable prefix and hashes them', () => {
    const a = generateApiKey();
    const b = generateApiKey();
    expect(a).toMatch(/^awk_[A-Za-z0-9_-]{43}$/);
    expect(a).not.toBe(b);
    expect(hashApiKey(a)).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(hashApiKey(a)).not.toContain(a);
  });

  it('authenticates bearer keys by hash and yields the key id, role and tenant', () => {
    const admin = generateApiKey();
    const acme = generateApiKey();
    const ring = new ApiKeyRing([
      { id: 'ops', role: 'admin', hash: hashApiKey(admin) },
      { id: 'acme-reader', role: 'analyst', tenant: 'acme', hash: hashApiKey(acme) },
    ]);
    expect(ring.authenticate(`Bearer ${admin}`)).toEqual({ key_id: 'ops', role: 'admin', tenant: null });
    expect(ring.authenticate(`bearer   ${acme}`)).toEqual({ key_id: 'acme-reader', role: 'analyst', tenant: 'acme' });
    for (const header of [undefined, '', admin, `Basic ${admin}`, `Bearer ${admin}x`, `Bearer ${hashApiKey(admin)}`, 'Bearer', `Bearer ${admin} extra`]) {
      expect(ring.authenticate(header), String(header)).toBeNull();
    }
  });

  it('refuses duplicate ids and duplicate keys', () => {
    const key = generateApiKey();
    expect(() => new ApiKeyRing([
      { id: 'a', role: 'admin', hash: hashApiKey(key) },
      { id: 'a', role: 'analyst', hash: hashApiKey(generateApiKey()) },
    ])).toThrow(/used twice/);
    expect(() => new ApiKeyRing([
      { id: 'a', role: 'admin', hash: hashApiKey(key) },
      { id: 'b', role: 'analyst', hash: hashApiKey(key) },
    ])).toThrow(/same key/);
  });

  it('admits roles by access level', () => {
    expect(admits('admin', 'admin')).toBe(true);
    expect(admits('admin', 'analyst')).toBe(false);
    expect(admits('read', 'analyst')).toBe(true);
    expect(admits('read', 'ingest')).toBe(false);
    expect(admits('ingest', 'ingest')).toBe(true);
    expect(admits('ingest', 'analyst')).toBe(false);
    expect(admits('analyst', 'ingest')).toBe(false);
  });
});

describe('first-start admin key', () => {
  it('creates one admin key, keeps only its hash, writes the key to a 0600 file, and reuses it later', () => {
    const dir = tempDir();
    const first = resolveApiKeys([], dir);
    expect(first.createdAdminKey).toBeDefined();
    const key = first.createdAdminKey!.key;
    const keyFile = path.join(dir, ADMIN_KEY_FILE);
    expect(first.createdAdminKey!.file).toBe(keyFile);
    expect(readFileSync(keyFile, 'utf8').trim()).toBe(key);
    expect(statSync(keyFile).mode & 0o777).toBe(0o600);
    const stored = readFileSync(path.join(dir, GENERATED_KEYS_FILE), 'utf8');
    expect(stored).not.toContain(key);
    expect(stored).toContain(hashApiKey(key));
    expect(statSync(path.join(dir, GENERATED_KEYS_FILE)).mode & 0o777).toBe(0o600);
    expect(new ApiKeyRing(first.keys).authenticate(`Bearer ${key}`)).toMatchObject({ role: 'admin', tenant: null });

    const second = resolveApiKeys([], dir);
    expect(second.createdAdminKey).toBeUndefined();
    expect(second.keys).toEqual(first.keys);
  });

  it('configured keys win and nothing is created', () => {
    const dir = tempDir();
    const configured = [{ id: 'ops', role: 'admin' as const, hash: hashApiKey(generateApiKey()) }];
    expect(resolveApiKeys(configured, dir)).toEqual({ keys: configured, source: 'config' });
    expect(() => statSync(path.join(dir, ADMIN_KEY_FILE))).toThrow();
  });

  it('a damaged key file is an error naming the file, not a silently open API', () => {
    const dir = tempDir();
    writeFileSync(path.join(dir, GENERATED_KEYS_FILE), '{"keys":[{"id":"x","role":"root","hash":"nope"}]}');
    expect(() => resolveApiKeys([], dir)).toThrow(AgentwatchError);
    expect(() => resolveApiKeys([], dir)).toThrow(/api-keys\.json: keys\[0\]\.role/);
    writeFileSync(path.join(dir, GENERATED_KEYS_FILE), '{not json');
    expect(() => resolveApiKeys([], dir)).toThrow(/cannot read/);
  });
});
