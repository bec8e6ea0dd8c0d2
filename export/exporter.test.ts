import { generateKeyPairSync } from 'node:crypto';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Alert, AuditRecord, Verdict } from '../core/records.js';
import { AuditChain } from '../detectors/audit-chain.js';
import { openTestStore, type TestStore } from '../test/support/clickhouse.js';
import { makeEvent } from '../test/support/events.js';
import { ClickHouseExportSource } from './clickhouse/source.js';
import { resolveExportConfig } from './config.js';
import { exportPeriod, exportTenantPeriod, type TenantExportResult } from './exporter.js';
import { ManifestSchema, type Manifest } from './manifest.js';
import { periodContaining, type Period } from './periods.js';
import { SCHEDULE_STATE_FILE } from './scheduler.js';
import { createExportScheduler } from './service.js';
import { loadOrCreateSigningKey, type SigningKey } from './signing-key.js';
import { verifyExportDir, type VerifyReport } from './verify.js';

const DAY = 86_400_000;
const D22 = Date.parse('2026-11-22T00:00:00Z');
const days = (): Period[] => [0, 1, 2].map((i) => periodContaining(D22 + i * DAY, 'daily', 'UTC'));
const ODD_TENANT = 'team/α';

let t: TestStore;
let source: ClickHouseExportSource;
let work: string;
let key: SigningKey;
let exportDir: string;
let firstRun: TenantExportResult[];

/**
 * Three UTC days of two tenants' rows (and a third with a name that is no
 * plain directory name): audit chains on two partitions per tenant, built by
 * the real AuditChain, one row evaluated a day after its event (late), verdicts,
 * alerts and events.
 */
async function seed(): Promise<void> {
  const chain = new AuditChain(async () => new Map());
  const audit: AuditRecord[] = [];
  const verdicts: Verdict[] = [];
  const alerts: Alert[] = [];
  const events = [];
  let seq = 0;
  for (const tenant of ['acme', 'globex', ODD_TENANT]) {
    for (let i = 0; i < 36; i++) {
      const time = D22 + i * 2 * 3_600_000 + 17;
      const partition = i % 2;
      const event = makeEvent({ event_id: `${tenant}-e${i}`, tenant, time, agent: { id: `agent-${i % 3}`, name: 'coder' }, type: 'tool_call', tool: { name: 'shell' } });
      events.push(event);
      const matched = i % 4 === 0 ? ['p-shell'] : [];
      const verdictIds = matched.map((p) => `${tenant}-v${i}-${p}`);
      await chain.prepare(partition, seq, [tenant]);
      // Row 5 is evaluated a day late: it belongs to the chain where its seq puts it, not to its event's day.
      const evaluatedAt = i === 5 ? time + DAY : time + 250;
      audit.push(chain.append({ event, decision: matched.length > 0 ? 'deny' : 'allow', would_decide: matched.length > 0 ? 'deny' : 'allow', matched_policies: matched, verdict_ids: verdictIds }, partition, seq++, 'sha256:policy', 'strict', evaluatedAt));
      for (const verdict_id of verdictIds) {
        verdicts.push({
          verdict_id, event_id: event.event_id, time, tenant, agent_id: event.agent.id, agent_name: 'coder', event_type: 'tool_call', policy_id: 'p-shell',
          policy_type: 'unauthorized_api', severity: 'high', action: 'block', decision: 'deny', would_decide: 'deny', mode: 'strict',
          reason: 'tool "shell" is not allowed', evidence: { tool: 'shell', n: i }, atlas: ['AML.T0051'], late: false, exception: '',
        });
      }
    }
    for (let d = 0; d < 3; d++) {
      alerts.push({
        alert_id: `${tenant}-a${d}`, tenant, policy_id: 'p-shell', policy_type: 'unauthorized_api', agent_id: 'agent-0', severity: 'high',
        status: d === 0 ? 'resolved' : 'open', count: 2 + d, first_seen: D22 + d * DAY + 1000, last_seen: D22 + d * DAY + 5000,
        title: '=HYPERLINK("x") shell, "quoted"', reason: 'line one\nline two', verdict_ids: [`${tenant}-v${d}`], evidence: { tool: 'shell' },
        atlas: ['AML.T0051'], updated_at: D22 + d * DAY + 6000, acknowledged_by: '', resolved_at: d === 0 ? D22 + 7000 : 0,
        source_partition: 0, source_offset: d, silenced_by: '', comment: '',
      });
    }
  }
  await t.store.insertAudit(audit);
  await t.store.insertVerdicts(verdicts);
  await t.store.upsertAlerts(alerts);
  await t.store.insertEvents(events);
}

async function exportDays(dir: string): Promise<TenantExportResult[]> {
  const results: TenantExportResult[] = [];
  // A small page size so pagination is exercised.
  for (const period of days()) results.push(...(await exportPeriod(period, { dir, source, key, includeEvents: true, pageRows: 5 })));
  return results;
}

/** A copy of the good export to damage. */
function copyOfExport(): string {
  const copy = mkdtempSync(path.join(work, 'tampered-'));
  cpSync(exportDir, copy, { recursive: true });
  return copy;
}

function messages(report: VerifyReport): string[] {
  return report.problems.map((p) => `${p.path}: ${p.message}`);
}

function manifestOf(dir: string, tenant: string, period: string): Manifest {
  return ManifestSchema.parse(JSON.parse(readFileSync(path.join(dir, tenant, period, 'manifest.json'), 'utf8')));
}

beforeAll(async () => {
  t = await openTestStore();
  source = new ClickHouseExportSource(t.client, t.database);
  work = mkdtempSync(path.join(tmpdir(), 'aw-export-'));
  key = loadOrCreateSigningKey(path.join(work, 'keys', 'export-signing-key.pem'));
  exportDir = path.join(work, 'exports');
  await seed();
  firstRun = await exportDays(exportDir);
}, 120_000);

afterAll(async () => {
  await t?.close();
  if (work !== undefined) rmSync(work, { recursive: true, force: true });
});

describe('export', () => {
  it('writes one signed export per tenant and day, with the layout, counts and chain heads', () => {
    expect(firstRun.map((r) => `${r.tenant}/${r.period.id}/${r.outcome}`)).toEqual([
      'acme/2026-11-22/written', 'globex/2026-11-22/written', `${ODD_TENANT}/2026-11-22/written`,
      'acme/2026-11-23/written', 'globex/2026-11-23/written', `${ODD_TENANT}/2026-11-23/written`,
      'acme/2026-11-24/written', 'globex/2026-11-24/written', `${ODD_TENANT}/2026-11-24/written`,
    ]);
    expect(readdirSync(exportDir).sort()).toEqual(['acme', 'globex', 'signing-key.pub.pem', 'team%2F%CE%B1']);
    expect(readdirSync(path.join(exportDir, 'acme', '2026-11-23')).sort()).toEqual([
      'alerts.csv', 'alerts.ndjson.gz', 'audit_log.ndjson.gz', 'events.ndjson.gz', 'findings_ocsf.ndjson.gz', 'manifest.json', 'manifest.sig', 'verdicts.ndjson.gz',
    ]);
    expect(statSync(path.join(work, 'keys', 'export-signing-key.pem')).mode & 0o777).toBe(0o600);

    const m22 = manifestOf(exportDir, 'acme', '2026-11-22');
    const m23 = manifestOf(exportDir, 'acme', '2026-11-23');
    const rows = (m: Manifest) => Object.fromEntries(m.files.map((f) => [f.name, f.rows]));
    // 12 events a day; row 5 (evaluated a day late) stays in the 22nd's audit segment: chains are cut at positions, not row by row.
    expect(rows(m22)).toEqual({ 'alerts.csv': 1, 'alerts.ndjson.gz': 1, 'audit_log.ndjson.gz': 12, 'events.ndjson.gz': 12, 'findings_ocsf.ndjson.gz': 1, 'verdicts.ndjson.gz': 3 });
    // The alerts again as OCSF Detection Findings, ATLAS techniques in finding_info.attacks.
    const [finding] = gunzipSync(readFileSync(path.join(exportDir, 'acme', '2026-11-22', 'findings_ocsf.ndjson.gz'))).toString('utf8').trim().split('\n').map((l) => JSON.parse(l) as { class_uid: number; finding_info: { attacks?: unknown[] } });
    expect(finding?.class_uid).toBe(2004);
    expect(m22.previous).toBeNull();
    expect(m23.previous?.period_id).toBe('2026-11-22');
    expect(m22.signing_key.fingerprint).toBe(key.fingerprint);
    // The 23rd's chains continue where the 22nd's ended.
    for (const segment of m23.audit_chains) {
      expect(segment.first_prev_hash).toBe(m22.audit_chains.find((c) => c.bus_partition === segment.bus_partition)?.last_hash);
    }
    // Rows in a total order: audit by (partition, seq).
    const auditRows = gunzipSync(readFileSync(path.join(exportDir, 'acme', '2026-11-22', 'audit_log.ndjson.gz'))).toString('utf8').trim().split('\n').map((l) => JSON.parse(l) as AuditRecord);
    expect(auditRows.map((r) => [r.bus_partition, r.seq])).toEqual([...auditRows.map((r) => [r.bus_partition, r.seq])].sort((a, b) => (a[0] as number) - (b[0] as number) || (a[1] as number) - (b[1] as number)));
    // The CSV neutralises formulas and quotes text with commas, quotes and line breaks.
    const csv = readFileSync(path.join(exportDir, 'acme', '2026-11-22', 'alerts.csv'), 'utf8');
    expect(csv).toContain(`"'=HYPERLINK(""x"") shell, ""quoted"""`);
    expect(csv).toContain('"line one\nline two"');
  });

  it('verifies', async () => {
    const report = await verifyExportDir(exportDir);
    expect(messages(report)).toEqual([]);
    expect(report).toMatchObject({ ok: true, tenants: 3, exports: 9, keySource: 'directory' });
    expect((await verifyExportDir(exportDir, { publicKeyPem: key.publicKeyPem })).ok).toBe(true);
  });

  it('re-running a period keeps the export byte for byte; a fresh directory gets identical files', async () => {
    const before = readFileSync(path.join(exportDir, 'acme', '2026-11-23', 'manifest.json'));
    const mtime = statSync(path.join(exportDir, 'acme', '2026-11-23', 'audit_log.ndjson.gz')).mtimeMs;
    const again = await exportPeriod(days()[1] as Period, { dir: exportDir, source, key, includeEvents: true, pageRows: 7 });
    expect(again.map((r) => r.outcome)).toEqual(['unchanged', 'unchanged', 'unchanged']);
    expect(readFileSync(path.join(exportDir, 'acme', '2026-11-23', 'manifest.json')).equals(before)).toBe(true);
    expect(statSync(path.join(exportDir, 'acme', '2026-11-23', 'audit_log.ndjson.gz')).mtimeMs).toBe(mtime);
    expect(readdirSync(path.join(exportDir, 'acme')).filter((n) => n.startsWith('.'))).toEqual([]);

    const fresh = path.join(work, 'fresh');
    await exportDays(fresh);
    for (const tenant of ['acme', 'globex']) {
      for (const day of ['2026-11-22', '2026-11-23', '2026-11-24']) {
        for (const file of readdirSync(path.join(exportDir, tenant, day))) {
          expect(readFileSync(path.join(fresh, tenant, day, file)).equals(readFileSync(path.join(exportDir, tenant, day, file))), `${tenant}/${day}/${file}`).toBe(true);
        }
      }
    }
    // gzip with no name and mtime 0 in its header.
    const gz = readFileSync(path.join(exportDir, 'acme', '2026-11-23', 'verdicts.ndjson.gz'));
    expect([...gz.subarray(0, 8)]).toEqual([0x1f, 0x8b, 8, 0, 0, 0, 0, 0]);
  });

  it('re-running a period repairs a damaged copy with the same manifest, keeping the chain', async () => {
    const copy = copyOfExport();
    const file = path.join(copy, 'acme', '2026-11-23', 'verdicts.ndjson.gz');
    const bytes = readFileSync(file);
    bytes[20] = (bytes[20] as number) ^ 0xff;
    writeFileSync(file, bytes);
    expect((await verifyExportDir(copy)).ok).toBe(false);
    const again = await exportPeriod(days()[1] as Period, { dir: copy, source, key, includeEvents: true, tenants: ['acme'] });
    expect(again.map((r) => [r.outcome, r.laterExports])).toEqual([['repaired', ['2026-11-24']]]);
    expect(messages(await verifyExportDir(copy))).toEqual([]);
  });

  it('fails verify with a specific message when any byte of any file of an export flips', async () => {
    const files = [...readdirSync(path.join(exportDir, 'acme', '2026-11-23')).map((f) => path.join('acme', '2026-11-23', f)), 'signing-key.pub.pem'];
    for (const rel of files) {
      const copy = copyOfExport();
      const file = path.join(copy, rel);
      const bytes = readFileSync(file);
      const at = Math.floor(bytes.length / 2);
      bytes[at] = (bytes[at] as number) ^ 0x01;
      writeFileSync(file, bytes);
      const report = await verifyExportDir(copy);
      expect(report.ok, rel).toBe(false);
      const text = messages(report).join('\n');
      if (rel.endsWith('manifest.json')) expect(text).toMatch(/acme\/2026-11-23\/manifest\.(json|sig): .*(altered|not JSON|not a valid manifest)/);
      else if (rel.endsWith('manifest.sig')) expect(text).toContain('acme/2026-11-23/manifest.sig: signature does not match manifest.json');
      else if (rel === 'signing-key.pub.pem') expect(text).toMatch(/signing-key\.pub\.pem: is not an ed25519 public key|not among the public keys in the directory/);
      else expect(text).toContain(`${rel}: content differs from the manifest`);
      rmSync(copy, { recursive: true, force: true });
    }
  });

  it('fails verify when an audit row is deleted, naming the broken link and the count', async () => {
    const copy = copyOfExport();
    const file = path.join(copy, 'acme', '2026-11-23', 'audit_log.ndjson.gz');
    const lines = gunzipSync(readFileSync(file)).toString('utf8').split('\n');
    lines.splice(2, 1);
    writeFileSync(file, gzipSync(lines.join('\n')));
    const text = messages(await verifyExportDir(copy)).join('\n');
    expect(text).toContain('acme/2026-11-23/audit_log.ndjson.gz: content differs from the manifest');
    expect(text).toMatch(/audit_log\.ndjson\.gz: line 3 \(partition 0, seq \d+\): prev_hash does not match the hash of the row before it \(seq \d+\): a row between them was removed or altered/);
    expect(text).toContain('audit_log.ndjson.gz: holds 11 rows, the manifest says 12: rows were removed');
  });

  it('fails verify when an audit row is altered, even with a consistent file (not exported from the real chain)', async () => {
    const copy = copyOfExport();
    const file = path.join(copy, 'acme', '2026-11-24', 'audit_log.ndjson.gz');
    const lines = gunzipSync(readFileSync(file)).toString('utf8').split('\n');
    lines[0] = (lines[0] as string).replace('"decision":"deny"', '"decision":"allow"');
    writeFileSync(file, gzipSync(lines.join('\n')));
    expect(messages(await verifyExportDir(copy)).join('\n')).toMatch(/line 1 \(partition 0, seq \d+\): hash does not match the row's content/);
  });

  it('removes work directories left by an export that was killed, and keeps one still being written', async () => {
    const dir = copyOfExport();
    const tenantDir = path.join(dir, 'acme');
    const abandoned = path.join(tenantDir, '.partial-2026-11-22-0badcafe');
    const live = path.join(tenantDir, '.partial-2026-11-22-00c0ffee');
    for (const d of [abandoned, live]) {
      mkdirSync(d);
      writeFileSync(path.join(d, 'audit_log.ndjson.gz'), 'half a file');
    }
    const twoHoursAgo = new Date(Date.now() - 2 * 3_600_000);
    for (const p of [path.join(abandoned, 'audit_log.ndjson.gz'), abandoned]) utimesSync(p, twoHoursAgo, twoHoursAgo);
    const [period] = days();
    const result = await exportTenantPeriod(period!, 'acme', { dir, source, key, includeEvents: true });
    expect(result.outcome).toBe('unchanged');
    expect(existsSync(abandoned)).toBe(false);
    expect(existsSync(live)).toBe(true);
    rmSync(live, { recursive: true });
    expect((await verifyExportDir(dir, { publicKeyPem: key.publicKeyPem })).ok).toBe(true);
  });

  it('fails verify when a file is removed', async () => {
    const copy = copyOfExport();
    rmSync(path.join(copy, 'globex', '2026-11-22', 'alerts.csv'));
    expect(messages(await verifyExportDir(copy))).toEqual(['globex/2026-11-22/alerts.csv: is listed in the manifest (1 rows) but missing']);
  });

  it('fails verify when an intermediate export is removed, naming the gap in both chains', async () => {
    const copy = copyOfExport();
    rmSync(path.join(copy, 'acme', '2026-11-23'), { recursive: true });
    const text = messages(await verifyExportDir(copy));
    expect(text).toContain('acme/2026-11-24/manifest.json: names previous export 2026-11-23, which is missing (removed?); the export before it is 2026-11-22');
    expect(text.some((m) => /acme\/2026-11-24\/manifest\.json: audit chain of partition \d breaks between 2026-11-22 and 2026-11-24/.test(m))).toBe(true);
  });

  it('fails verify against another public key', async () => {
    const other = generateKeyPairSync('ed25519').publicKey.export({ type: 'spki', format: 'pem' }).toString();
    const report = await verifyExportDir(exportDir, { publicKeyPem: other });
    expect(report.problems).toHaveLength(9);
    expect(messages(report)[0]).toMatch(/manifest\.sig: signed by key sha256:[0-9a-f]{64}, not by the key given/);
  });

  it('the configured scheduler catches up the missed days into a verifiable directory', async () => {
    const dataDir = path.join(work, 'data');
    const config = resolveExportConfig({ data_dir: dataDir, export: { schedules: [{ name: 'daily', period: 'daily' }] } });
    // The state says the 21st was the last day done; it is now the 25th, 01:00 UTC.
    mkdirSync(config.dir, { recursive: true });
    writeFileSync(
      path.join(config.dir, SCHEDULE_STATE_FILE),
      JSON.stringify({ version: 1, schedules: { daily: { period: 'daily', timezone: 'UTC', last_completed: { id: '2026-11-21', from: D22 - DAY, to: D22 }, tenants: {} } } }),
    );
    const now = Date.parse('2026-11-25T01:00:00Z');
    const scheduler = createExportScheduler(config, { source, clock: { now: () => now, setTimeout: () => 0, clearTimeout: () => undefined } });
    const runs = (await scheduler?.runDue()) ?? [];
    expect(runs.map((r) => `${r.period.id}:${r.tenants.length}`)).toEqual(['2026-11-22:3', '2026-11-23:3', '2026-11-24:3']);
    expect(existsSync(config.keyFile)).toBe(true);
    expect((await verifyExportDir(config.dir)).problems).toEqual([]);
  });
});
