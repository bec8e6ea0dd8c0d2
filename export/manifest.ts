import { createHash } from 'node:crypto';
import { z } from 'zod';
import type { Period } from './periods.js';

/**
 * The manifest of one export and its canonical bytes. Pure: no IO.
 *
 * The manifest holds no wall-clock time (no `created_at`): re-running an
 * export of unchanged data must give the same bytes, hence the same
 * signature and an intact chain. When an export was written is the file's
 * mtime; what it covers is `period`.
 */

export const MANIFEST_FORMAT = 'agentwatch-export/1';

export const ExportFileNames = {
  audit: 'audit_log.ndjson.gz',
  verdicts: 'verdicts.ndjson.gz',
  alerts: 'alerts.ndjson.gz',
  alertsCsv: 'alerts.csv',
  /** The alerts as OCSF Detection Findings (class_uid 2004), for SIEMs that ingest OCSF. */
  findings: 'findings_ocsf.ndjson.gz',
  events: 'events.ndjson.gz',
} as const;
export const MANIFEST_FILE = 'manifest.json';
export const SIGNATURE_FILE = 'manifest.sig';

const Sha256 = z.string().regex(/^[0-9a-f]{64}$/);
const Ms = z.number().int().min(0);

const ManifestFileSchema = z.strictObject({
  name: z.string().regex(/^[a-z_]+\.(ndjson\.gz|csv)$/),
  rows: z.number().int().min(0),
  bytes: z.number().int().min(0),
  sha256: Sha256,
});
export type ManifestFile = z.output<typeof ManifestFileSchema>;

/** One (tenant, bus partition) audit chain's segment in the export. */
const AuditChainSegmentSchema = z.strictObject({
  bus_partition: z.number().int(),
  rows: z.number().int().min(1),
  first_seq: z.number().int().min(0),
  /** Taken as given when verifying this export alone; the previous export's `last_hash` when the chain continues. */
  first_prev_hash: Sha256,
  last_seq: z.number().int().min(0),
  /** The chain head at the end of the period: the next export's `first_prev_hash` for this partition. */
  last_hash: Sha256,
});
export type AuditChainSegment = z.output<typeof AuditChainSegmentSchema>;

export const ManifestSchema = z.strictObject({
  format: z.literal(MANIFEST_FORMAT),
  tenant: z.string().min(1),
  period: z.strictObject({
    id: z.string().regex(/^[0-9A-Za-z_-]+$/),
    kind: z.enum(['daily', 'weekly', 'monthly', 'custom']),
    timezone: z.string().min(1),
    from: z.string(),
    to: z.string(),
    from_ms: Ms,
    to_ms: Ms,
  }),
  /** Sorted by name. */
  files: z.array(ManifestFileSchema),
  /** Sorted by bus partition. */
  audit_chains: z.array(AuditChainSegmentSchema),
  /** The export before this one in the tenant's chain of this period kind; null for the first. */
  previous: z.strictObject({ period_id: z.string(), manifest_sha256: Sha256 }).nullable(),
  signing_key: z.strictObject({ algorithm: z.literal('ed25519'), fingerprint: z.string().regex(/^sha256:[0-9a-f]{64}$/) }),
});
export type Manifest = z.output<typeof ManifestSchema>;

/** The manifest's `period` for a {@link Period}. */
export function manifestPeriod(period: Period): Manifest['period'] {
  return {
    id: period.id,
    kind: period.kind,
    timezone: period.timezone,
    from: new Date(period.from).toISOString(),
    to: new Date(period.to).toISOString(),
    from_ms: period.from,
    to_ms: period.to,
  };
}

/**
 * Canonical bytes: keys in schema order (objects are built in that order),
 * two-space indent, one trailing newline. Signatures and the chain cover
 * exactly these bytes.
 */
export function serializeManifest(manifest: Manifest): Buffer {
  const ordered: Manifest = {
    format: manifest.format,
    tenant: manifest.tenant,
    period: manifestPeriod({ id: manifest.period.id, kind: manifest.period.kind, timezone: manifest.period.timezone, from: manifest.period.from_ms, to: manifest.period.to_ms }),
    files: [...manifest.files].sort((a, b) => compareText(a.name, b.name)).map((f) => ({ name: f.name, rows: f.rows, bytes: f.bytes, sha256: f.sha256 })),
    audit_chains: [...manifest.audit_chains]
      .sort((a, b) => a.bus_partition - b.bus_partition)
      .map((c) => ({ bus_partition: c.bus_partition, rows: c.rows, first_seq: c.first_seq, first_prev_hash: c.first_prev_hash, last_seq: c.last_seq, last_hash: c.last_hash })),
    previous: manifest.previous === null ? null : { period_id: manifest.previous.period_id, manifest_sha256: manifest.previous.manifest_sha256 },
    signing_key: { algorithm: 'ed25519', fingerprint: manifest.signing_key.fingerprint },
  };
  return Buffer.from(`${JSON.stringify(ordered, null, 2)}\n`, 'utf8');
}

export function sha256Of(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/**
 * Directory name of a tenant: the tenant itself when it is a plain name,
 * otherwise percent-encoded (every byte outside `[A-Za-z0-9_-]`, and a
 * leading `.`), so no tenant can name `..`, a hidden or a nested directory.
 */
export function tenantDirName(tenant: string): string {
  if (/^[A-Za-z0-9_-][A-Za-z0-9._-]*$/.test(tenant)) return tenant;
  return [...Buffer.from(tenant, 'utf8')]
    .map((byte) => (/[A-Za-z0-9_-]/.test(String.fromCharCode(byte)) ? String.fromCharCode(byte) : `%${byte.toString(16).toUpperCase().padStart(2, '0')}`))
    .join('');
}

/**
 * Order of exports within one (tenant, period kind) chain: by start, then
 * end, then id. Each period kind has its own chain: a monthly export overlaps
 * the daily ones and is written after them, so one chain across kinds would
 * have exports inserted into its middle.
 */
export function compareExports(a: Pick<Manifest['period'], 'from_ms' | 'to_ms' | 'id'>, b: Pick<Manifest['period'], 'from_ms' | 'to_ms' | 'id'>): number {
  return a.from_ms - b.from_ms || a.to_ms - b.to_ms || compareText(a.id, b.id);
}

/** Code-unit order, independent of locale. */
export function compareText(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
