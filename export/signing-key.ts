import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, sign, verify, type KeyObject } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { ExportError } from './errors.js';

/** The manifests' signing key (ed25519). */
export interface SigningKey {
  privateKey: KeyObject;
  publicKey: KeyObject;
  /** SPKI PEM of the public key, as written next to the exports. */
  publicKeyPem: string;
  /** `sha256:<hex>` of the DER SPKI public key; recorded in every manifest. */
  fingerprint: string;
}

/** Where the key came from, for the caller's log line. */
export interface LoadedSigningKey extends SigningKey {
  /** The key file did not exist and was generated now. */
  created: boolean;
  file: string;
}

/**
 * Reads the ed25519 private key (PKCS8 PEM) at `file`, or generates one there
 * (mode 0600, parent directory 0700) when the file does not exist. Creation
 * uses an exclusive open, so two processes starting at once end up with the
 * same key. The caller logs `created` clearly: a new key starts a new trust root.
 *
 * @throws ExportError `AW_EXPORT_BAD_KEY` when the file is unreadable or holds another kind of key.
 */
export function loadOrCreateSigningKey(file: string): LoadedSigningKey {
  const resolved = path.resolve(file);
  let pem: string | undefined;
  try {
    pem = readFileSync(resolved, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw badKey(resolved, error);
  }
  if (pem === undefined) {
    const { privateKey } = generateKeyPairSync('ed25519');
    const created = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
    try {
      mkdirSync(path.dirname(resolved), { recursive: true, mode: 0o700 });
      writeFileSync(resolved, created, { mode: 0o600, flag: 'wx' });
      return { ...signingKeyFromPem(created, resolved), created: true, file: resolved };
    } catch (error) {
      // Another process created it first: use theirs.
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw badKey(resolved, error);
      pem = readFileSync(resolved, 'utf8');
    }
  }
  return { ...signingKeyFromPem(pem, resolved), created: false, file: resolved };
}

function signingKeyFromPem(pem: string, file: string): SigningKey {
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey(pem);
  } catch (error) {
    throw badKey(file, error);
  }
  if (privateKey.asymmetricKeyType !== 'ed25519') {
    throw new ExportError('AW_EXPORT_BAD_KEY', `export signing key ${file} is a ${privateKey.asymmetricKeyType ?? 'non-asymmetric'} key, not ed25519`);
  }
  const publicKey = createPublicKey(privateKey);
  return { privateKey, publicKey, publicKeyPem: publicKey.export({ type: 'spki', format: 'pem' }).toString(), fingerprint: keyFingerprint(publicKey) };
}

/** `sha256:<hex>` of a public key's DER SPKI encoding. */
export function keyFingerprint(publicKey: KeyObject): string {
  return `sha256:${createHash('sha256').update(publicKey.export({ type: 'spki', format: 'der' })).digest('hex')}`;
}

/** Parses an ed25519 public key (SPKI PEM); null when the text is not one. */
export function parsePublicKey(pem: string): KeyObject | null {
  try {
    const key = createPublicKey(pem);
    return key.asymmetricKeyType === 'ed25519' ? key : null;
  } catch {
    return null;
  }
}

/** ed25519 signature (deterministic) of `bytes`, base64 with a trailing newline, as stored in `manifest.sig`. */
export function signManifest(bytes: Uint8Array, key: SigningKey): Buffer {
  return Buffer.from(`${sign(null, bytes, key.privateKey).toString('base64')}\n`, 'utf8');
}

/** Whether `signatureFile` (the bytes of `manifest.sig`) is a valid signature of `bytes` by `publicKey`. */
export function verifyManifestSignature(bytes: Uint8Array, signatureFile: Uint8Array, publicKey: KeyObject): boolean {
  const text = Buffer.from(signatureFile).toString('utf8');
  if (!/^[A-Za-z0-9+/]{86}==\n$/.test(text)) return false;
  return verify(null, bytes, publicKey, Buffer.from(text.trim(), 'base64'));
}

function badKey(file: string, cause: unknown): ExportError {
  return new ExportError('AW_EXPORT_BAD_KEY', `cannot use export signing key ${file}: ${(cause as Error).message}`, { cause });
}
