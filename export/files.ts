import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream, type WriteStream } from 'node:fs';
import { once } from 'node:events';
import { Transform, type Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import type { Alert } from '../core/records.js';

/** What a written file hashes to. */
export interface WrittenFile {
  bytes: number;
  sha256: string;
}

/**
 * Streams text into a file, optionally through gzip, hashing the bytes that
 * reach the disk. Node's gzip header carries no file name and mtime 0, so the
 * same input gives the same bytes (on the same zlib build: a Node upgrade
 * may change the compressed bytes, never the content).
 */
export class HashedFileWriter {
  /** The file written. */
  readonly file: string;
  readonly #input: Writable;
  readonly #out: WriteStream;
  readonly #done: Promise<void>;
  readonly #hash = createHash('sha256');
  #bytes = 0;
  #failure: unknown = undefined;

  /**
   * Opens `file` for writing, replacing it: the exporter writes only into a
   * directory it has just created, so there is nothing to protect with
   * O_EXCL (and a name linked to /dev/full there is followed, which is how
   * the disk-full test gets a real ENOSPC).
   */
  constructor(file: string, options: { gzip: boolean }) {
    this.file = file;
    const tap = new Transform({
      transform: (chunk: Buffer, _encoding, callback) => {
        this.#hash.update(chunk);
        this.#bytes += chunk.length;
        callback(null, chunk);
      },
    });
    const out = createWriteStream(file, { flags: 'w', mode: 0o644 });
    this.#out = out;
    if (options.gzip) {
      const gzip = createGzip({ level: 6 });
      this.#input = gzip;
      this.#done = pipeline(gzip, tap, out);
    } else {
      this.#input = tap;
      this.#done = pipeline(tap, out);
    }
    // Surfaced by write() or close(); not an unhandled rejection meanwhile.
    this.#done.catch((error: unknown) => {
      this.#failure = error;
    });
  }

  /** The error that stopped the file (ENOSPC, EIO, ...), once it has; undefined while it has not. */
  get failure(): unknown {
    return this.#failure;
  }

  /** Writes text, waiting while the stream is full. */
  async write(text: string): Promise<void> {
    if (text === '') return;
    if (!this.#input.write(text)) await Promise.race([once(this.#input, 'drain'), this.#done]);
  }

  async close(): Promise<WrittenFile> {
    this.#input.end();
    await this.#done;
    return { bytes: this.#bytes, sha256: this.#hash.digest('hex') };
  }

  /**
   * Stops writing after a failure (its own or elsewhere) and closes the
   * file descriptor; the caller removes the file. Until the descriptor is
   * closed a removed file still holds its blocks, which matters most when
   * the disk is full.
   */
  async abort(): Promise<void> {
    this.#input.destroy();
    await this.#done.catch(() => undefined);
    // The pipeline settles on the first error, while the file stream may still
    // be closing its descriptor (a close on the thread pool): wait for it.
    if (!this.#out.closed) await new Promise<void>((resolve) => this.#out.once('close', () => resolve()));
  }
}

/** sha256 (hex) of a file, read as a stream. */
export function hashFile(file: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const hash = createHash('sha256');
    createReadStream(file)
      .on('data', (chunk) => hash.update(chunk))
      .on('error', reject)
      .on('end', () => resolve(hash.digest('hex')));
  });
}

/** One NDJSON line per record (JSON.stringify keeps the record's key order, which the mappers fix). */
export function ndjsonLines(records: readonly unknown[]): string {
  let out = '';
  for (const record of records) out += `${JSON.stringify(record)}\n`;
  return out;
}

/** Columns of `alerts.csv`, in order. */
export const ALERT_CSV_COLUMNS = [
  'alert_id', 'tenant', 'policy_id', 'policy_type', 'agent_id', 'severity', 'status', 'count', 'first_seen', 'last_seen',
  'title', 'reason', 'acknowledged_by', 'resolved_at', 'silenced_by', 'comment', 'verdict_ids', 'atlas', 'evidence',
] as const;

export const ALERT_CSV_HEADER = `${ALERT_CSV_COLUMNS.join(',')}\r\n`;

/**
 * Alerts as CSV rows (RFC 4180: CRLF, fields quoted when needed). Times are
 * ISO 8601 UTC ('' for a zero `resolved_at`); lists are `;`-separated;
 * evidence is its JSON. Text that a spreadsheet would run as a formula
 * (starting with `=`, `+`, `-`, `@`, tab or CR) gets a leading `'`: titles and
 * reasons carry agent-controlled text. The NDJSON file is the exact copy.
 */
export function alertCsvRows(alerts: readonly Alert[]): string {
  let out = '';
  for (const a of alerts) {
    const cells: Record<(typeof ALERT_CSV_COLUMNS)[number], string> = {
      alert_id: a.alert_id,
      tenant: a.tenant,
      policy_id: a.policy_id,
      policy_type: a.policy_type,
      agent_id: a.agent_id,
      severity: a.severity,
      status: a.status,
      count: String(a.count),
      first_seen: new Date(a.first_seen).toISOString(),
      last_seen: new Date(a.last_seen).toISOString(),
      title: a.title,
      reason: a.reason,
      acknowledged_by: a.acknowledged_by,
      resolved_at: a.resolved_at > 0 ? new Date(a.resolved_at).toISOString() : '',
      silenced_by: a.silenced_by,
      comment: a.comment,
      verdict_ids: a.verdict_ids.join(';'),
      atlas: a.atlas.join(';'),
      evidence: JSON.stringify(a.evidence),
    };
    out += `${ALERT_CSV_COLUMNS.map((column) => csvCell(cells[column])).join(',')}\r\n`;
  }
  return out;
}

export function csvCell(value: string): string {
  const text = /^[=+\-@\t\r]/.test(value) ? `'${value}` : value;
  return /[",\r\n]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
}

/**
 * Counts the records of a CSV text (RFC 4180: quoted fields may hold line
 * breaks), header excluded; null when a quote is left open.
 */
export function countCsvRecords(text: string): number | null {
  let records = 0;
  let quoted = false;
  let fieldStart = true;
  let content = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (quoted) {
      if (ch === '"') {
        if (text[i + 1] === '"') i++;
        else quoted = false;
      }
      continue;
    }
    if (ch === '"' && fieldStart) {
      quoted = true;
      content = true;
      fieldStart = false;
    } else if (ch === '\n') {
      if (content) records++;
      content = false;
      fieldStart = true;
    } else if (ch === ',') {
      fieldStart = true;
      content = true;
    } else if (ch !== '\r') {
      fieldStart = false;
      content = true;
    }
  }
  if (quoted) return null;
  if (content) records++;
  return Math.max(0, records - 1);
}
