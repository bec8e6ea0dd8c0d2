import { createPublicKey, randomBytes } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { AuditRecord } from '../core/records.js';
import { ExportError } from './errors.js';
import { toOcsfDetectionFinding } from '../alerting/ocsf.js';
import { ALERT_CSV_HEADER, alertCsvRows, hashFile, HashedFileWriter, ndjsonLines } from './files.js';
import {
  compareExports,
  ExportFileNames,
  MANIFEST_FILE,
  MANIFEST_FORMAT,
  manifestPeriod,
  ManifestSchema,
  serializeManifest,
  sha256Of,
  SIGNATURE_FILE,
  tenantDirName,
  type AuditChainSegment,
  type Manifest,
  type ManifestFile,
} from './manifest.js';
import type { Period } from './periods.js';
import { keyFingerprint, signManifest, type SigningKey } from './signing-key.js';
import type { ExportSource } from './source.js';

/** The logging an export needs (a pino logger fits). */
export interface ExportLogger {
  info(fields: object, message: string): void;
  warn(fields: object, message: string): void;
  error(fields: object, message: string): void;
}

/** Name of the public key file at the top of the export directory. */
export const PUBLIC_KEY_FILE = 'signing-key.pub.pem';

/** Options of {@link exportTenantPeriod} and {@link exportPeriod}. */
export interface ExportOptions {
  /** Export directory (absolute). */
  dir: string;
  source: ExportSource;
  key: SigningKey;
  /** Also export events. @default false */
  includeEvents?: boolean;
  /** Rows per read. @default 10000 */
  pageRows?: number;
  logger?: ExportLogger;
  /** Called after each page written, with the rows written so far for the tenant. */
  onRows?: (tenant: string, rowsSoFar: number) => void;
  /**
   * Called with the hidden work directory once it exists, before anything is
   * written into it. A test seam, unset in production: the disk-full test
   * links a file name there to /dev/full, so that write fails with a real
   * ENOSPC from the kernel.
   */
  onWorkDir?: (workDir: string) => void;
}

/** What one tenant's export of one period did. */
export interface TenantExportResult {
  tenant: string;
  period: Period;
  /** The export's directory. */
  path: string;
  /**
   * `written`: new; `unchanged`: an identical export was already there (kept
   * byte for byte); `repaired`: same manifest, but files on disk had been
   * damaged or removed and were rewritten; `replaced`: the data had changed.
   */
  outcome: 'written' | 'unchanged' | 'repaired' | 'replaced';
  manifestSha256: string;
  rows: Record<string, number>;
  /**
   * Exports of the same chain that sort after this one. When the outcome is
   * `written` or `replaced`, their chain link no longer matches: re-export them, in order.
   */
  laterExports: string[];
}

/**
 * Exports every tenant with rows in `period` (tenants in order). A tenant
 * that fails stops the run: the error names it, and the exports already
 * written stay (each is complete or absent).
 */
export async function exportPeriod(period: Period, options: ExportOptions & { tenants?: readonly string[] }): Promise<TenantExportResult[]> {
  const tenants = options.tenants ?? (await options.source.tenantsWithRows(period, options.includeEvents ?? false));
  const results: TenantExportResult[] = [];
  for (const tenant of tenants) results.push(await exportTenantPeriod(period, tenant, options));
  return results;
}

/**
 * Writes `<dir>/<tenant>/<period id>/`: the data files, `manifest.json` (row
 * counts, file hashes, audit chain heads, the previous export's manifest
 * hash) and `manifest.sig`. Files are written into a hidden directory and
 * renamed into place, so an export is complete or absent. Re-running a
 * period whose data did not change leaves the existing export untouched.
 *
 * @throws ExportError `AW_EXPORT_WRITE_FAILED` (retriable) when a write fails
 * (ENOSPC, EDQUOT, EIO, EROFS, ...): the hidden directory is removed, its
 * files closed, an existing export of the period is kept as it was, and the
 * error's details name the tenant, period, export path, file and errno.
 */
export async function exportTenantPeriod(period: Period, tenant: string, options: ExportOptions): Promise<TenantExportResult> {
  const { dir, source, key, logger } = options;
  const pageRows = options.pageRows ?? 10_000;
  const tenantDir = path.join(dir, tenantDirName(tenant));
  const finalDir = path.join(tenantDir, period.id);
  const workDir = path.join(tenantDir, `.partial-${period.id}-${randomBytes(4).toString('hex')}`);
  // For the error: the writers still open, and the file written outside of one.
  const openWriters = new Set<HashedFileWriter>();
  let writing: string | undefined;
  try {
    mkdirSync(tenantDir, { recursive: true });
    removeAbandonedWorkDirs(tenantDir, logger);
    // Not recursive: an existing directory is an error, so this one is new and no other export writes to it.
    mkdirSync(workDir);
    writing = path.join(dir, PUBLIC_KEY_FILE);
    writePublicKey(dir, key);
    writing = undefined;
    options.onWorkDir?.(workDir);

    const chain = readChain(tenantDir, period, logger);
    let rowsSoFar = 0;
    const counted = (n: number): void => {
      rowsSoFar += n;
      options.onRows?.(tenant, rowsSoFar);
    };
    const files: ManifestFile[] = [];
    const rows: Record<string, number> = {};
    const open = (name: string, gzip: boolean): HashedFileWriter => {
      const writer = new HashedFileWriter(path.join(workDir, name), { gzip });
      openWriters.add(writer);
      return writer;
    };
    const finish = async (name: string, writer: HashedFileWriter, count: number): Promise<void> => {
      const written = await writer.close();
      openWriters.delete(writer);
      files.push({ name, rows: count, bytes: written.bytes, sha256: written.sha256 });
      rows[name] = count;
    };

    const audit = open(ExportFileNames.audit, true);
    const segments = new Map<number, AuditChainSegment>();
    let auditRows = 0;
    for await (const page of source.auditRows(tenant, period, pageRows)) {
      for (const row of page) trackSegment(segments, row);
      await audit.write(ndjsonLines(page));
      auditRows += page.length;
      counted(page.length);
    }
    await finish(ExportFileNames.audit, audit, auditRows);

    const verdicts = open(ExportFileNames.verdicts, true);
    let verdictRows = 0;
    for await (const page of source.verdicts(tenant, period, pageRows)) {
      await verdicts.write(ndjsonLines(page));
      verdictRows += page.length;
      counted(page.length);
    }
    await finish(ExportFileNames.verdicts, verdicts, verdictRows);

    // One read feeds both alert files, so they hold the same versions.
    const alerts = open(ExportFileNames.alerts, true);
    const alertsCsv = open(ExportFileNames.alertsCsv, false);
    const findings = open(ExportFileNames.findings, true);
    await alertsCsv.write(ALERT_CSV_HEADER);
    let alertRows = 0;
    for await (const page of source.alerts(tenant, period, pageRows)) {
      await alerts.write(ndjsonLines(page));
      await alertsCsv.write(alertCsvRows(page));
      await findings.write(ndjsonLines(page.map((alert) => toOcsfDetectionFinding(alert))));
      alertRows += page.length;
      counted(page.length);
    }
    await finish(ExportFileNames.alerts, alerts, alertRows);
    await finish(ExportFileNames.alertsCsv, alertsCsv, alertRows);
    await finish(ExportFileNames.findings, findings, alertRows);

    if (options.includeEvents === true) {
      const events = open(ExportFileNames.events, true);
      let eventRows = 0;
      for await (const page of source.events(tenant, period, pageRows)) {
        await events.write(ndjsonLines(page));
        eventRows += page.length;
        counted(page.length);
      }
      await finish(ExportFileNames.events, events, eventRows);
    }

    const manifest: Manifest = {
      format: MANIFEST_FORMAT,
      tenant,
      period: manifestPeriod(period),
      files,
      audit_chains: [...segments.values()],
      previous: chain.previous === null ? null : { period_id: chain.previous.id, manifest_sha256: chain.previous.sha256 },
      signing_key: { algorithm: 'ed25519', fingerprint: key.fingerprint },
    };
    const manifestBytes = serializeManifest(manifest);
    const signature = signManifest(manifestBytes, key);
    // No O_EXCL: the directory is new (and the disk-full test links these names to /dev/full).
    writing = MANIFEST_FILE;
    writeFileSync(path.join(workDir, MANIFEST_FILE), manifestBytes);
    writing = SIGNATURE_FILE;
    writeFileSync(path.join(workDir, SIGNATURE_FILE), signature);
    writing = undefined;

    const outcome = await place(workDir, finalDir, manifest, manifestBytes, signature);
    const result: TenantExportResult = { tenant, period, path: finalDir, outcome, manifestSha256: sha256Of(manifestBytes), rows, laterExports: chain.later };
    if ((outcome === 'written' || outcome === 'replaced') && chain.later.length > 0) {
      logger?.warn(
        { tenant, period: period.id, later_exports: chain.later },
        outcome === 'replaced'
          ? 'export replaced with different data: the later exports of this chain no longer link to it; re-export them in order'
          : 'export written before later exports of its chain: they no longer link to it; re-export them in order',
      );
    }
    logger?.info({ tenant, period: period.id, outcome, rows, path: finalDir }, 'export done');
    return result;
  } catch (error) {
    // The file that failed first; the other writers stop with "premature close" once aborted.
    const failedFile = [...openWriters].find((writer) => writer.failure !== undefined)?.file ?? writing;
    // Close every descriptor before removing: a deleted file still open keeps its blocks.
    await Promise.all([...openWriters].map((writer) => writer.abort()));
    removeWorkDir(workDir, logger);
    if (error instanceof ExportError) throw error;
    const file = failedFile === undefined ? undefined : path.dirname(failedFile) === workDir ? path.basename(failedFile) : failedFile;
    throw exportWriteFailed({ tenant, period: period.id, path: finalDir, ...(file === undefined ? {} : { file }) }, error);
  }
}

/**
 * A hidden work directory with nothing written in it for this long was left by
 * an export that never finished (its process was killed, the machine lost
 * power): the next export of the tenant removes it.
 */
export const ABANDONED_WORK_DIR_MS = 3_600_000;

/** Removes the tenant's work directories abandoned by killed exports; one still being written (anything in it recent) stays. */
function removeAbandonedWorkDirs(tenantDir: string, logger: ExportLogger | undefined, now = Date.now()): void {
  for (const entry of readdirSync(tenantDir, { withFileTypes: true })) {
    if (!entry.isDirectory() || !entry.name.startsWith('.partial-')) continue;
    const dir = path.join(tenantDir, entry.name);
    try {
      const newest = Math.max(statSync(dir).mtimeMs, ...readdirSync(dir).map((name) => statSync(path.join(dir, name)).mtimeMs));
      if (now - newest < ABANDONED_WORK_DIR_MS) continue;
      rmSync(dir, { recursive: true, force: true });
      logger?.warn({ path: dir, last_written: new Date(newest).toISOString() }, 'removed the work directory of an export that never finished (its process stopped mid-export)');
    } catch (error) {
      // Gone meanwhile, or not removable: it is hidden, and verify and exports skip it.
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') logger?.warn({ path: dir, err: error }, 'cannot remove the work directory of an export that never finished; remove it by hand');
    }
  }
}

/**
 * Removes the hidden work directory of a failed export. When even that fails
 * (a file system remounted read-only) the directory stays: hidden, so
 * verification and later exports skip it, and named in a warning.
 */
function removeWorkDir(workDir: string, logger: ExportLogger | undefined): void {
  try {
    rmSync(workDir, { recursive: true, force: true });
  } catch (error) {
    logger?.warn({ path: workDir, err: error }, 'cannot remove the work directory of a failed export; it is hidden (verify and later exports skip it), remove it by hand');
  }
}

function trackSegment(segments: Map<number, AuditChainSegment>, row: AuditRecord): void {
  const segment = segments.get(row.bus_partition);
  if (segment === undefined) {
    segments.set(row.bus_partition, { bus_partition: row.bus_partition, rows: 1, first_seq: row.seq, first_prev_hash: row.prev_hash, last_seq: row.seq, last_hash: row.hash });
    return;
  }
  segment.rows++;
  segment.last_seq = row.seq;
  segment.last_hash = row.hash;
}

interface ChainPosition {
  previous: { id: string; sha256: string } | null;
  later: string[];
}

/**
 * The export before `period` in the tenant's chain of its kind (the newest
 * one that sorts before it) and the ones after it. An unreadable manifest is
 * left out with a warning (verify reports it).
 */
function readChain(tenantDir: string, period: Period, logger: ExportLogger | undefined): ChainPosition {
  const here = { id: period.id, from_ms: period.from, to_ms: period.to };
  let previous: { period: Manifest['period']; sha256: string } | null = null;
  const later: Manifest['period'][] = [];
  for (const entry of readdirSync(tenantDir, { withFileTypes: true })) {
    if (!entry.isDirectory() || entry.name.startsWith('.') || entry.name === period.id) continue;
    let bytes: Buffer;
    let manifest: Manifest;
    try {
      bytes = readFileSync(path.join(tenantDir, entry.name, MANIFEST_FILE));
      manifest = ManifestSchema.parse(JSON.parse(bytes.toString('utf8')));
    } catch (error) {
      logger?.warn({ export: path.join(tenantDir, entry.name), err: error }, 'skipping an export whose manifest cannot be read; verify reports it');
      continue;
    }
    if (manifest.period.kind !== period.kind) continue;
    const order = compareExports(manifest.period, here);
    if (order < 0 && (previous === null || compareExports(manifest.period, previous.period) > 0)) previous = { period: manifest.period, sha256: sha256Of(bytes) };
    if (order > 0) later.push(manifest.period);
  }
  return {
    previous: previous === null ? null : { id: previous.period.id, sha256: previous.sha256 },
    later: later.sort(compareExports).map((p) => p.id),
  };
}

/** Moves the finished export into place; keeps an identical existing one untouched. */
async function place(workDir: string, finalDir: string, manifest: Manifest, manifestBytes: Buffer, signature: Buffer): Promise<TenantExportResult['outcome']> {
  let existing: Buffer | null = null;
  let existingSignature: Buffer | null = null;
  try {
    existing = readFileSync(path.join(finalDir, MANIFEST_FILE));
    existingSignature = readFileSync(path.join(finalDir, SIGNATURE_FILE));
  } catch {
    // Absent or incomplete: replaced below.
  }
  // Same manifest bytes mean the same file hashes; the files on disk are
  // checked against them too, so re-running repairs a damaged copy.
  const sameManifest = existing !== null && existingSignature !== null && existing.equals(manifestBytes) && existingSignature.equals(signature);
  if (sameManifest && (await filesMatch(finalDir, manifest))) {
    rmSync(workDir, { recursive: true, force: true });
    return 'unchanged';
  }
  let outcome: TenantExportResult['outcome'] = 'written';
  let oldDir: string | null = null;
  try {
    oldDir = `${path.join(path.dirname(finalDir), `.replaced-${path.basename(finalDir)}`)}-${randomBytes(4).toString('hex')}`;
    renameSync(finalDir, oldDir);
    outcome = 'replaced';
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    oldDir = null;
  }
  try {
    renameSync(workDir, finalDir);
  } catch (error) {
    // Put the export that was there back: a failed re-run must leave it as it was.
    if (oldDir !== null) renameSync(oldDir, finalDir);
    throw error;
  }
  if (oldDir !== null) rmSync(oldDir, { recursive: true, force: true });
  return sameManifest ? 'repaired' : outcome;
}

/** Whether `dir` holds exactly the manifest's files (plus manifest and signature), with its hashes. */
async function filesMatch(dir: string, manifest: Manifest): Promise<boolean> {
  const expected = [...manifest.files.map((f) => f.name), MANIFEST_FILE, SIGNATURE_FILE].sort();
  if (readdirSync(dir).sort().join('\n') !== expected.join('\n')) return false;
  for (const file of manifest.files) if ((await hashFile(path.join(dir, file.name))) !== file.sha256) return false;
  return true;
}

/**
 * Writes the public key next to the exports. A different key already there
 * (the signing key was replaced) is kept as `signing-key.<fingerprint prefix>.pub.pem`,
 * so older exports still verify.
 */
export function writePublicKey(dir: string, key: SigningKey): void {
  mkdirSync(dir, { recursive: true });
  const file = path.join(dir, PUBLIC_KEY_FILE);
  let current: string | null = null;
  try {
    current = readFileSync(file, 'utf8');
  } catch {
    current = null;
  }
  if (current === key.publicKeyPem) return;
  // Written under a hidden name and renamed: a full disk must not leave a
  // truncated key, or no key at all, next to exports that need it.
  const temp = path.join(dir, `.${PUBLIC_KEY_FILE}.${randomBytes(4).toString('hex')}.tmp`);
  try {
    writeFileSync(temp, key.publicKeyPem, { mode: 0o644, flag: 'wx' });
    if (current !== null) {
      let fingerprint: string;
      try {
        fingerprint = keyFingerprint(createPublicKey(current));
      } catch {
        fingerprint = `unreadable-${randomBytes(4).toString('hex')}`;
      }
      renameSync(file, path.join(dir, `signing-key.${fingerprint.replace(/^sha256:/, '').slice(0, 16)}.pub.pem`));
    }
    renameSync(temp, file);
  } catch (error) {
    rmSync(temp, { force: true });
    throw error;
  }
}

/** Where a failed export was going; the details of its `AW_EXPORT_WRITE_FAILED`. */
export interface ExportWriteFailure {
  tenant: string;
  period: string;
  /** The export's directory (an export already there is kept as it was). */
  path: string;
  /** The file being written: a name in the export, or the public key's path. */
  file?: string;
  /** The system error code: ENOSPC, EDQUOT, EIO, EROFS, ... */
  errno?: string;
}

/**
 * A failed write as a retriable `AW_EXPORT_WRITE_FAILED`: a full disk, a
 * quota or a read-only remount is fixed outside the process, and the next
 * attempt writes the export from scratch.
 */
function exportWriteFailed(where: Omit<ExportWriteFailure, 'errno'>, cause: unknown): ExportError {
  const errno = (cause as NodeJS.ErrnoException | null)?.code;
  const details: ExportWriteFailure = { ...where, ...(typeof errno === 'string' ? { errno } : {}) };
  const writing = where.file === undefined ? '' : ` writing ${where.file}`;
  return new ExportError('AW_EXPORT_WRITE_FAILED', `export of ${where.tenant} ${where.period} to ${where.path} failed${writing}: ${(cause as Error).message}`, { cause, retriable: true, details });
}
