import type { KeyObject } from 'node:crypto';
import { createReadStream, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { createGunzip } from 'node:zlib';
import { auditRowHash } from '../core/audit.js';
import type { AuditRecord } from '../core/records.js';
import { countCsvRecords, hashFile } from './files.js';
import {
  compareExports,
  ExportFileNames,
  MANIFEST_FILE,
  ManifestSchema,
  sha256Of,
  SIGNATURE_FILE,
  tenantDirName,
  type AuditChainSegment,
  type Manifest,
} from './manifest.js';
import { keyFingerprint, parsePublicKey, verifyManifestSignature } from './signing-key.js';

/** One thing wrong, addressed by its path relative to the export directory. */
export interface VerifyProblem {
  path: string;
  message: string;
}

export interface VerifyReport {
  ok: boolean;
  tenants: number;
  exports: number;
  problems: VerifyProblem[];
  /** `given`: checked against `--public-key`; `directory`: against the key files stored with the exports (which whoever can write the directory could replace). */
  keySource: 'given' | 'directory';
}

export interface VerifyOptions {
  /** Trust only this public key (SPKI PEM), not the key files in the directory. */
  publicKeyPem?: string;
}

/** Row-level problems reported per file before the rest are summarised. */
const MAX_ROW_PROBLEMS = 20;
const REQUIRED_FILES = [ExportFileNames.audit, ExportFileNames.verdicts, ExportFileNames.alerts, ExportFileNames.alertsCsv, ExportFileNames.findings];

interface CheckedExport {
  rel: string;
  manifest: Manifest;
  sha256: string;
}

/**
 * Checks every export under `dir`: each manifest's signature, each file's
 * hash, byte and row count, every audit row's hash and its link to the row
 * before it in its (tenant, bus partition) chain, and, per tenant and period
 * kind, that each manifest names the export before it (by the hash of its
 * manifest) and that audit chains continue from one export to the next.
 * Reads files as streams: memory does not grow with their size.
 */
export async function verifyExportDir(dir: string, options: VerifyOptions = {}): Promise<VerifyReport> {
  const problems: VerifyProblem[] = [];
  const report = (where: string, message: string): void => {
    problems.push({ path: where, message });
  };
  const keySource = options.publicKeyPem === undefined ? 'directory' : 'given';
  let topEntries: string[];
  try {
    if (!statSync(dir).isDirectory()) throw new Error('not a directory');
    topEntries = readdirSync(dir).sort();
  } catch (error) {
    report('.', `cannot read the export directory ${dir}: ${(error as Error).message}`);
    return { ok: false, tenants: 0, exports: 0, problems, keySource };
  }

  const keys = new Map<string, KeyObject>();
  if (options.publicKeyPem !== undefined) {
    const key = parsePublicKey(options.publicKeyPem);
    if (key === null) report('--public-key', 'is not an ed25519 public key (SPKI PEM)');
    else keys.set(keyFingerprint(key), key);
  } else {
    for (const name of topEntries.filter((n) => /^signing-key(\.[0-9a-z-]+)?\.pub\.pem$/.test(n))) {
      const key = parsePublicKey(readFileSync(path.join(dir, name), 'utf8'));
      if (key === null) report(name, 'is not an ed25519 public key (SPKI PEM): altered?');
      else keys.set(keyFingerprint(key), key);
    }
    if (keys.size === 0 && !topEntries.includes('signing-key.pub.pem')) report('signing-key.pub.pem', 'is missing: no public key to check signatures with (pass --public-key)');
  }

  let tenants = 0;
  let exports = 0;
  for (const tenantName of topEntries) {
    const tenantDir = path.join(dir, tenantName);
    if (tenantName.startsWith('.') || !statSync(tenantDir).isDirectory()) continue;
    tenants++;
    const checked: CheckedExport[] = [];
    for (const exportName of readdirSync(tenantDir).sort()) {
      const exportDir = path.join(tenantDir, exportName);
      if (exportName.startsWith('.') || !statSync(exportDir).isDirectory()) continue;
      exports++;
      const result = await verifyOneExport(exportDir, `${tenantName}/${exportName}`, tenantName, exportName, keys, options.publicKeyPem !== undefined, report);
      if (result !== null) checked.push(result);
    }
    checkChains(checked, report);
  }
  if (exports === 0 && problems.length === 0) report('.', 'holds no exports');
  return { ok: problems.length === 0, tenants, exports, problems, keySource };
}

async function verifyOneExport(
  exportDir: string,
  rel: string,
  tenantName: string,
  exportName: string,
  keys: ReadonlyMap<string, KeyObject>,
  keyGiven: boolean,
  report: (where: string, message: string) => void,
): Promise<CheckedExport | null> {
  let manifestBytes: Buffer;
  try {
    manifestBytes = readFileSync(path.join(exportDir, MANIFEST_FILE));
  } catch {
    report(`${rel}/${MANIFEST_FILE}`, 'is missing');
    return null;
  }
  let manifest: Manifest;
  try {
    const parsed = ManifestSchema.safeParse(JSON.parse(manifestBytes.toString('utf8')));
    if (!parsed.success) {
      report(`${rel}/${MANIFEST_FILE}`, `is not a valid manifest: ${parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ')}`);
      return null;
    }
    manifest = parsed.data;
  } catch (error) {
    report(`${rel}/${MANIFEST_FILE}`, `is not JSON (altered?): ${(error as Error).message}`);
    return null;
  }

  // Signature.
  let signature: Buffer | null = null;
  try {
    signature = readFileSync(path.join(exportDir, SIGNATURE_FILE));
  } catch {
    report(`${rel}/${SIGNATURE_FILE}`, 'is missing: the manifest is unsigned');
  }
  if (signature !== null) {
    const key = keys.get(manifest.signing_key.fingerprint);
    if (key === undefined) {
      report(
        `${rel}/${SIGNATURE_FILE}`,
        keyGiven
          ? `signed by key ${manifest.signing_key.fingerprint}, not by the key given (${[...keys.keys()].join(', ')})`
          : `signed by key ${manifest.signing_key.fingerprint}, which is not among the public keys in the directory`,
      );
    } else if (!verifyManifestSignature(manifestBytes, signature, key)) {
      report(`${rel}/${SIGNATURE_FILE}`, 'signature does not match manifest.json: the manifest or the signature was altered');
    }
  }

  if (manifest.period.id !== exportName) report(`${rel}/${MANIFEST_FILE}`, `is for period ${manifest.period.id}, but sits in directory ${exportName}`);
  if (tenantDirName(manifest.tenant) !== tenantName) report(`${rel}/${MANIFEST_FILE}`, `is for tenant ${JSON.stringify(manifest.tenant)}, but sits in directory ${tenantName}`);

  // Files.
  const listed = new Set(manifest.files.map((f) => f.name));
  for (const required of REQUIRED_FILES) if (!listed.has(required)) report(`${rel}/${MANIFEST_FILE}`, `lists no ${required}`);
  for (const name of readdirSync(exportDir).sort()) {
    if (name !== MANIFEST_FILE && name !== SIGNATURE_FILE && !listed.has(name)) report(`${rel}/${name}`, 'is not listed in the manifest (added after the export)');
  }
  for (const file of manifest.files) {
    const where = `${rel}/${file.name}`;
    const full = path.join(exportDir, file.name);
    let stat;
    try {
      stat = statSync(full);
    } catch {
      report(where, `is listed in the manifest (${file.rows} rows) but missing`);
      continue;
    }
    const sha256 = await hashFile(full);
    if (sha256 !== file.sha256 || stat.size !== file.bytes) {
      report(where, `content differs from the manifest (sha256 ${sha256} vs ${file.sha256}, ${stat.size} vs ${file.bytes} bytes): the file was altered`);
    }
    if (file.name.endsWith('.ndjson.gz')) {
      await checkNdjson(full, where, file.rows, file.name === ExportFileNames.audit ? manifest.audit_chains : null, report);
    } else if (file.name.endsWith('.csv')) {
      const records = countCsvRecords(readFileSync(full, 'utf8'));
      if (records === null) report(where, 'is not valid CSV (a quoted field is never closed)');
      else if (records !== file.rows) report(where, `holds ${records} rows, the manifest says ${file.rows}`);
    }
  }
  return { rel, manifest, sha256: sha256Of(manifestBytes) };
}

/**
 * Reads a gzip NDJSON file line by line: each line must be a JSON object;
 * the count must match; audit rows must hash to their `hash` and link to the
 * row before them in their partition's chain, and the chain segments must
 * match the manifest's.
 */
async function checkNdjson(
  file: string,
  where: string,
  expectedRows: number,
  auditChains: readonly AuditChainSegment[] | null,
  report: (where: string, message: string) => void,
): Promise<void> {
  let rows = 0;
  let rowProblems = 0;
  const rowProblem = (message: string): void => {
    if (++rowProblems <= MAX_ROW_PROBLEMS) report(where, message);
  };
  const segments = new Map<number, AuditChainSegment>();
  let lastPartition = Number.NEGATIVE_INFINITY;
  const gunzip = createGunzip();
  const lines = createInterface({ input: createReadStream(file).pipe(gunzip), crlfDelay: Infinity });
  try {
    for await (const line of lines) {
      rows++;
      let value: unknown;
      try {
        value = JSON.parse(line);
      } catch {
        rowProblem(`line ${rows} is not JSON`);
        continue;
      }
      if (typeof value !== 'object' || value === null || Array.isArray(value)) {
        rowProblem(`line ${rows} is not a JSON object`);
        continue;
      }
      if (auditChains === null) continue;
      const row = value as AuditRecord;
      if (!isAuditRow(row)) {
        rowProblem(`line ${rows} is not an audit row`);
        continue;
      }
      if (auditRowHash(row) !== row.hash) rowProblem(`line ${rows} (partition ${row.bus_partition}, seq ${row.seq}): hash does not match the row's content: the row was altered`);
      const segment = segments.get(row.bus_partition);
      if (segment === undefined) {
        if (row.bus_partition < lastPartition) rowProblem(`line ${rows}: partition ${row.bus_partition} after partition ${lastPartition}: rows out of order`);
        lastPartition = row.bus_partition;
        segments.set(row.bus_partition, { bus_partition: row.bus_partition, rows: 1, first_seq: row.seq, first_prev_hash: row.prev_hash, last_seq: row.seq, last_hash: row.hash });
        continue;
      }
      if (row.bus_partition !== lastPartition) rowProblem(`line ${rows}: partition ${row.bus_partition} rows are not contiguous: rows out of order`);
      if (row.seq <= segment.last_seq) rowProblem(`line ${rows} (partition ${row.bus_partition}): seq ${row.seq} does not follow seq ${segment.last_seq}: rows out of order or duplicated`);
      if (row.prev_hash !== segment.last_hash) {
        rowProblem(`line ${rows} (partition ${row.bus_partition}, seq ${row.seq}): prev_hash does not match the hash of the row before it (seq ${segment.last_seq}): a row between them was removed or altered`);
      }
      segment.rows++;
      segment.last_seq = row.seq;
      segment.last_hash = row.hash;
    }
  } catch (error) {
    report(where, `cannot be decompressed after ${rows} rows (truncated or altered): ${(error as Error).message}`);
    return;
  }
  if (rowProblems > MAX_ROW_PROBLEMS) report(where, `… and ${rowProblems - MAX_ROW_PROBLEMS} more row problems`);
  if (rows !== expectedRows) report(where, `holds ${rows} rows, the manifest says ${expectedRows}${rows < expectedRows ? ': rows were removed' : ': rows were added'}`);
  if (auditChains === null) return;
  const expected = new Map(auditChains.map((c) => [c.bus_partition, c]));
  for (const [partition, found] of segments) {
    const listed = expected.get(partition);
    if (listed === undefined) report(where, `holds a chain segment for partition ${partition} the manifest does not list`);
    else if (!sameSegment(listed, found)) {
      report(where, `chain segment of partition ${partition} (${describeSegment(found)}) differs from the manifest's (${describeSegment(listed)})`);
    }
  }
  for (const partition of expected.keys()) if (!segments.has(partition)) report(where, `holds no rows for partition ${partition}, which the manifest lists`);
}

function isAuditRow(row: AuditRecord): boolean {
  return (
    typeof row.bus_partition === 'number' &&
    typeof row.seq === 'number' &&
    typeof row.hash === 'string' &&
    typeof row.prev_hash === 'string' &&
    Array.isArray(row.matched_policies) &&
    Array.isArray(row.verdict_ids)
  );
}

function sameSegment(a: AuditChainSegment, b: AuditChainSegment): boolean {
  return a.rows === b.rows && a.first_seq === b.first_seq && a.first_prev_hash === b.first_prev_hash && a.last_seq === b.last_seq && a.last_hash === b.last_hash;
}

function describeSegment(s: AuditChainSegment): string {
  return `${s.rows} rows, seq ${s.first_seq}..${s.last_seq}`;
}

/**
 * Per period kind, in chain order: each manifest must name the export just
 * before it by its manifest hash, and each audit chain must continue where
 * the previous export of the chain left it.
 */
function checkChains(exports: readonly CheckedExport[], report: (where: string, message: string) => void): void {
  const kinds = new Map<string, CheckedExport[]>();
  for (const e of exports) kinds.set(e.manifest.period.kind, [...(kinds.get(e.manifest.period.kind) ?? []), e]);
  for (const [kind, chain] of kinds) {
    chain.sort((a, b) => compareExports(a.manifest.period, b.manifest.period));
    const byId = new Map(chain.map((e) => [e.manifest.period.id, e]));
    const heads = new Map<number, { hash: string; seq: number; id: string }>();
    chain.forEach((current, i) => {
      const before = chain[i - 1];
      const named = current.manifest.previous;
      const where = `${current.rel}/${MANIFEST_FILE}`;
      if (named === null) {
        if (before !== undefined) report(where, `is marked as the first ${kind} export, but ${before.manifest.period.id} comes before it (exported later, out of order?)`);
      } else if (before === undefined || before.manifest.period.id !== named.period_id) {
        const present = byId.get(named.period_id);
        report(
          where,
          present === undefined
            ? `names previous export ${named.period_id}, which is missing (removed?)${before === undefined ? '' : `; the export before it is ${before.manifest.period.id}`}`
            : `names previous export ${named.period_id}, but the export before it is ${before?.manifest.period.id ?? 'none'}: an export was inserted out of order`,
        );
      } else if (before.sha256 !== named.manifest_sha256) {
        report(where, `records sha256 ${named.manifest_sha256} for the manifest of previous export ${named.period_id}, which hashes to ${before.sha256}: ${named.period_id} was altered or re-exported after this one`);
      }
      // Audit chains continue across periods (a period with no rows for a
      // chain has no segment, so the link skips it). Overlapping custom
      // ranges only link when they are contiguous.
      if (kind === 'custom' && before !== undefined && before.manifest.period.to_ms !== current.manifest.period.from_ms) heads.clear();
      for (const segment of current.manifest.audit_chains) {
        const head = heads.get(segment.bus_partition);
        if (head !== undefined && head.hash !== segment.first_prev_hash) {
          report(
            where,
            `audit chain of partition ${segment.bus_partition} breaks between ${head.id} and ${current.manifest.period.id}: its first row (seq ${segment.first_seq}) links to ${segment.first_prev_hash.slice(0, 16)}…, but ${head.id} ended the chain at seq ${head.seq} with ${head.hash.slice(0, 16)}…`,
          );
        }
        heads.set(segment.bus_partition, { hash: segment.last_hash, seq: segment.last_seq, id: current.manifest.period.id });
      }
    });
  }
}
