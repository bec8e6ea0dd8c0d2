import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createMetrics } from '../api/metrics.js';
import type { Alert, AuditRecord, Verdict } from '../core/records.js';
import { AuditChain } from '../detectors/audit-chain.js';
import { openTestStore, type TestStore } from '../test/support/clickhouse.js';
import { makeEvent } from '../test/support/events.js';
import { FakeClock } from '../test/support/fake-clock.js';
import { ClickHouseExportSource } from './clickhouse/source.js';
import { resolveExportConfig } from './config.js';
import { ExportError } from './errors.js';
import { exportTenantPeriod, type ExportLogger } from './exporter.js';
import { ExportFileNames, MANIFEST_FILE, ManifestSchema, SIGNATURE_FILE } from './manifest.js';
import { periodContaining, type Period } from './periods.js';
import { ExportScheduler, SCHEDULE_STATE_FILE } from './scheduler.js';
import { createExportScheduler } from './service.js';
import { loadOrCreateSigningKey, type SigningKey } from './signing-key.js';
import { verifyExportDir } from './verify.js';

// Disk full is produced by the kernel, not by a mocked fs: a file name in the
// exporter's work directory (or the state file's temp name) is a symlink to
// /dev/full, whose writes fail with ENOSPC. Linux only, no root needed; the
// suite fails (never skips) where /dev/full does not behave so.
const DEV_FULL = '/dev/full';
const DAY = 86_400_000;
const D22 = Date.parse('2026-11-22T00:00:00Z');
const day22 = periodContaining(D22, 'daily', 'UTC');
const day23 = periodContaining(D22 + DAY, 'daily', 'UTC');

let t: TestStore;
let source: ClickHouseExportSource;
let work: string;
let key: SigningKey;

/** Two UTC days of two tenants: audit chains built by the real AuditChain, verdicts and an alert a day. */
async function seed(): Promise<void> {
  const chain = new AuditChain(async () => new Map());
  const audit: AuditRecord[] = [];
  const verdicts: Verdict[] = [];
  const alerts: Alert[] = [];
  const events = [];
  let seq = 0;
  for (const tenant of ['acme', 'globex']) {
    for (let i = 0; i < 12; i++) {
      const time = D22 + i * 4 * 3_600_000 + 17;
      const event = makeEvent({ event_id: `${tenant}-e${i}`, tenant, time, agent: { id: 'agent-0', name: 'coder' }, type: 'tool_call', tool: { name: 'shell' } });
      events.push(event);
      const verdictIds = i % 3 === 0 ? [`${tenant}-v${i}`] : [];
      await chain.prepare(0, seq, [tenant]);
      audit.push(chain.append({ event, decision: verdictIds.length > 0 ? 'deny' : 'allow', would_decide: verdictIds.length > 0 ? 'deny' : 'allow', matched_policies: verdictIds.length > 0 ? ['p-shell'] : [], verdict_ids: verdictIds }, 0, seq++, 'sha256:policy', 'strict', time + 250));
      for (const verdict_id of verdictIds) {
        verdicts.push({
          verdict_id, event_id: event.event_id, time, tenant, agent_id: 'agent-0', agent_name: 'coder', event_type: 'tool_call', policy_id: 'p-shell',
          policy_type: 'unauthorized_api', severity: 'high', action: 'block', decision: 'deny', would_decide: 'deny', mode: 'strict',
          reason: 'tool "shell" is not allowed', evidence: { tool: 'shell', n: i }, atlas: ['AML.T0051'], late: false, exception: '',
        });
      }
    }
    for (let d = 0; d < 2; d++) {
      alerts.push({
        alert_id: `${tenant}-a${d}`, tenant, policy_id: 'p-shell', policy_type: 'unauthorized_api', agent_id: 'agent-0', severity: 'high',
        status: 'open', count: 2, first_seen: D22 + d * DAY + 1000, last_seen: D22 + d * DAY + 5000, title: 'shell', reason: 'not allowed',
        verdict_ids: [`${tenant}-v${d * 6}`], evidence: { tool: 'shell' }, atlas: ['AML.T0051'], updated_at: D22 + d * DAY + 6000,
        acknowledged_by: '', resolved_at: 0, source_partition: 0, source_offset: d, silenced_by: '', comment: '',
      });
    }
  }
  await t.store.insertAudit(audit);
  await t.store.insertVerdicts(verdicts);
  await t.store.upsertAlerts(alerts);
  await t.store.insertEvents(events);
}

/** Every entry under `dir` (hidden ones too), files with their sha256: what a failed export must not change. */
function snapshot(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (rel: string): void => {
    for (const name of readdirSync(path.join(dir, rel)).sort()) {
      const entry = path.join(rel, name);
      const full = path.join(dir, entry);
      if (statSync(full).isDirectory()) {
        out[`${entry}/`] = 'dir';
        walk(entry);
      } else {
        out[entry] = createHash('sha256').update(readFileSync(full)).digest('hex');
      }
    }
  };
  walk('');
  return out;
}

/** Files under `dir` this process still holds open (a failed export must close what it opened). */
function openFilesUnder(dir: string): string[] {
  const held: string[] = [];
  for (const fd of readdirSync('/proc/self/fd')) {
    try {
      const target = readlinkSync(path.join('/proc/self/fd', fd));
      if (target.startsWith(dir)) held.push(target);
    } catch {
      // Closed between the listing and the readlink.
    }
  }
  return held;
}

interface LogLine {
  level: 'info' | 'warn' | 'error';
  fields: Record<string, unknown>;
  message: string;
}

function capturingLogger(lines: LogLine[]): ExportLogger {
  const at = (level: LogLine['level']) => (fields: object, message: string) => lines.push({ level, fields: fields as Record<string, unknown>, message });
  return { info: at('info'), warn: at('warn'), error: at('error') };
}

function stateOf(dir: string): { schedules: Record<string, { last_completed: { id: string } | null; tenants: Record<string, { id: string }> }> } {
  return JSON.parse(readFileSync(path.join(dir, SCHEDULE_STATE_FILE), 'utf8')) as ReturnType<typeof stateOf>;
}

beforeAll(async () => {
  // A machine without a /dev/full that fails writes with ENOSPC cannot run this suite: say so.
  let probe: unknown = null;
  try {
    writeFileSync(DEV_FULL, 'x');
  } catch (error) {
    probe = error;
  }
  if ((probe as NodeJS.ErrnoException | null)?.code !== 'ENOSPC') throw new Error(`the disk-full tests need ${DEV_FULL} failing writes with ENOSPC (Linux); got ${String(probe)}`);

  t = await openTestStore();
  source = new ClickHouseExportSource(t.client, t.database);
  work = mkdtempSync(path.join(tmpdir(), 'aw-export-full-'));
  key = loadOrCreateSigningKey(path.join(work, 'keys', 'export-signing-key.pem'));
  await seed();
}, 120_000);

afterAll(async () => {
  await t?.close();
  if (work !== undefined) rmSync(work, { recursive: true, force: true });
});

describe('export on a full disk', () => {
  it('fails with ENOSPC on any of its files and leaves the directory as it was: no partial files, no manifest, old export kept', async () => {
    const dir = path.join(work, 'each-file');
    const acme22 = await exportTenantPeriod(day22, 'acme', { dir, source, key, includeEvents: true });
    expect(acme22.outcome).toBe('written');
    const before = snapshot(dir);
    expect(Object.keys(before)).toContain('acme/2026-11-22/manifest.json');

    const names = [ExportFileNames.audit, ExportFileNames.verdicts, ExportFileNames.alerts, ExportFileNames.alertsCsv, ExportFileNames.findings, ExportFileNames.events, MANIFEST_FILE, SIGNATURE_FILE];
    // The 22nd already exported (re-run, would be kept) and the 23rd new (would be written after it).
    for (const period of [day22, day23]) {
      for (const name of names) {
        const finalDir = path.join(dir, 'acme', period.id);
        const failure = await exportTenantPeriod(period, 'acme', {
          dir, source, key, includeEvents: true, pageRows: 5,
          onWorkDir: (workDir) => symlinkSync(DEV_FULL, path.join(workDir, name)),
        }).then(
          () => null,
          (error: unknown) => error,
        );
        expect(failure, `${period.id} ${name}`).toBeInstanceOf(ExportError);
        const error = failure as ExportError;
        expect(error.code).toBe('AW_EXPORT_WRITE_FAILED');
        expect(error.retriable).toBe(true);
        expect(error.details).toEqual({ tenant: 'acme', period: period.id, path: finalDir, file: name, errno: 'ENOSPC' });
        expect(error.message).toContain(`export of acme ${period.id} to ${finalDir} failed writing ${name}: ENOSPC`);
        // Nothing new, nothing changed, nothing hidden left behind, no file held open.
        expect(snapshot(dir), `${period.id} ${name}`).toEqual(before);
        expect(openFilesUnder(dir), `${period.id} ${name}`).toEqual([]);
        await new Promise(setImmediate);
      }
    }
    expect((await verifyExportDir(dir)).problems).toEqual([]);

    // Space returns: the same call completes, and the chain links.
    const acme23 = await exportTenantPeriod(day23, 'acme', { dir, source, key, includeEvents: true });
    expect(acme23.outcome).toBe('written');
    const manifest23 = ManifestSchema.parse(JSON.parse(readFileSync(path.join(dir, 'acme', '2026-11-23', MANIFEST_FILE), 'utf8')));
    expect(manifest23.previous).toEqual({ period_id: '2026-11-22', manifest_sha256: acme22.manifestSha256 });
    expect(await verifyExportDir(dir)).toMatchObject({ ok: true, exports: 2, problems: [] });
  });

  it('the scheduler retries the failed period with doubling backoff, holds the next day back, and completes the chain in order when space returns', async () => {
    const dir = path.join(work, 'scheduled');
    const config = resolveExportConfig({ data_dir: path.join(work, 'unused'), export: { destination: dir, schedules: [{ name: 'daily', period: 'daily' }] } });
    expect([config.retry_delay_ms, config.max_retry_delay_ms]).toEqual([30_000, 900_000]);
    // The 21st was the last day done.
    mkdirSync(dir, { recursive: true });
    const stateFile = path.join(dir, SCHEDULE_STATE_FILE);
    writeFileSync(stateFile, JSON.stringify({ version: 1, schedules: { daily: { period: 'daily', timezone: 'UTC', last_completed: { id: '2026-11-21', from: D22 - DAY, to: D22 }, tenants: {} } } }));

    const lines: LogLine[] = [];
    const logger = capturingLogger(lines);
    // globex's exports hit a full disk (acme's, written first, still fit).
    let diskFull = true;
    const onWorkDir = (workDir: string): void => {
      if (diskFull && path.basename(path.dirname(workDir)) === 'globex') symlinkSync(DEV_FULL, path.join(workDir, ExportFileNames.verdicts));
    };
    const t0 = Date.parse('2026-11-23T23:50:00Z');
    const clock = new FakeClock(t0);
    const scheduler = new ExportScheduler({
      schedules: config.schedules,
      stateFile,
      retryDelayMs: config.retry_delay_ms,
      maxRetryDelayMs: config.max_retry_delay_ms,
      listTenants: (period: Period) => source.tenantsWithRows(period, false),
      exportTenant: async (period, tenant) => {
        await exportTenantPeriod(period, tenant, { dir, source, key, logger, onWorkDir });
      },
      logger,
      clock,
    });
    const settle = (): Promise<void> => scheduler.idle();
    // What /metrics shows of the scheduler (the pipeline wires it the same way).
    const registry = createMetrics({
      ingest: () => ({ received: 0, accepted: 0, rejected: 0, requests: 0 }),
      worker: () => undefined,
      openAlerts: () => null,
      policyVersion: () => null,
      exports: () => ({ failedAttempts: scheduler.failedAttempts(), failing: scheduler.failures() }),
    });
    const exportMetrics = async (): Promise<string[]> => (await registry.metrics()).split('\n').filter((l) => l.startsWith('agentwatch_export_'));
    const exportsOnDisk = (): string[] => ['acme', 'globex'].flatMap((tenant) => (existsSync(path.join(dir, tenant)) ? readdirSync(path.join(dir, tenant)).map((e) => `${tenant}/${e}`) : []));

    scheduler.start();
    await clock.fireNext(settle);
    // acme's 22nd is complete; globex's left nothing, not even a hidden work directory.
    expect(exportsOnDisk()).toEqual(['acme/2026-11-22']);
    expect(stateOf(dir).schedules.daily?.last_completed?.id).toBe('2026-11-21');
    expect(stateOf(dir).schedules.daily?.tenants).toEqual({ acme: { id: '2026-11-22', to: D22 + DAY } });
    const errors = (): LogLine[] => lines.filter((l) => l.level === 'error');
    expect(errors()).toHaveLength(1);
    expect(errors()[0]?.fields).toMatchObject({ schedule: 'daily', period: '2026-11-22', tenant: 'globex', path: path.join(dir, 'globex', '2026-11-22'), code: 'AW_EXPORT_WRITE_FAILED', errno: 'ENOSPC', attempt: 1, retry_in_ms: 30_000 });
    expect(errors()[0]?.message).toMatch(/scheduled export failed/);
    expect(scheduler.failures()).toEqual([{ schedule: 'daily', period: '2026-11-22', tenant: 'globex', attempts: 1, since: t0, retryAt: t0 + 30_000, code: 'AW_EXPORT_WRITE_FAILED', errno: 'ENOSPC', message: expect.stringContaining('ENOSPC') as unknown }]);
    expect(await exportMetrics()).toEqual([
      'agentwatch_export_failures_total 1',
      'agentwatch_export_schedule_failing_attempts{schedule="daily"} 1',
      `agentwatch_export_schedule_retry_timestamp_seconds{schedule="daily"} ${(t0 + 30_000) / 1000}`,
    ]);

    // Still full: 30 s doubling to the 15 min cap. The 23rd comes due at
    // 00:15 meanwhile and waits behind the 22nd.
    const gaps: number[] = [];
    let last = t0;
    for (let attempt = 2; attempt <= 7; attempt++) {
      const at = await clock.fireNext(settle);
      gaps.push((at - last) / 1000);
      last = at;
      expect(scheduler.failures()[0]?.attempts).toBe(attempt);
    }
    expect(gaps).toEqual([30, 60, 120, 240, 480, 900]);
    expect(last).toBeGreaterThan(Date.parse('2026-11-24T00:15:00Z'));
    expect(clock.nextTimerAt()).toBe(last + 900_000);
    expect(exportsOnDisk()).toEqual(['acme/2026-11-22']);
    expect(errors()).toHaveLength(1);
    expect(lines.filter((l) => l.level === 'warn' && /still failing/.test(l.message))).toHaveLength(6);
    expect(await exportMetrics()).toEqual(
      expect.arrayContaining(['agentwatch_export_failures_total 7', 'agentwatch_export_schedule_failing_attempts{schedule="daily"} 7']),
    );
    expect(stateOf(dir).schedules.daily?.last_completed?.id).toBe('2026-11-21');
    expect(stateOf(dir).schedules.daily?.tenants.globex).toBeUndefined();

    // Space returns: the next retry exports the 22nd, then the 23rd.
    diskFull = false;
    const recoveredAt = await clock.fireNext(settle);
    expect(recoveredAt - t0).toBe((30 + 60 + 120 + 240 + 480 + 900 + 900) * 1000);
    const done = lines.filter((l) => l.message === 'export done').map((l) => `${String(l.fields.tenant)}/${String(l.fields.period)}`);
    expect(done).toEqual(['acme/2026-11-22', 'globex/2026-11-22', 'acme/2026-11-23', 'globex/2026-11-23']);
    expect(lines.filter((l) => l.level === 'info' && /recovered/.test(l.message)).map((l) => l.fields)).toEqual([
      expect.objectContaining({ schedule: 'daily', period: '2026-11-22', attempts: 8, failing_for_ms: recoveredAt - t0 }),
    ]);
    expect(scheduler.failures()).toEqual([]);
    // Healthy again: the total stays, the per-schedule series go.
    expect(await exportMetrics()).toEqual(['agentwatch_export_failures_total 7']);
    expect(stateOf(dir).schedules.daily?.last_completed?.id).toBe('2026-11-23');
    // Back to the normal schedule: the 24th at 00:15 on the 25th is more than the longest sleep away.
    expect(clock.nextTimerAt()).toBe(recoveredAt + 3_600_000);

    const report = await verifyExportDir(dir);
    expect(report.problems).toEqual([]);
    expect(report).toMatchObject({ ok: true, tenants: 2, exports: 4 });
    const manifestOf = (rel: string): Buffer => readFileSync(path.join(dir, rel, MANIFEST_FILE));
    const globex23 = ManifestSchema.parse(JSON.parse(manifestOf('globex/2026-11-23').toString('utf8')));
    expect(globex23.previous).toEqual({ period_id: '2026-11-22', manifest_sha256: createHash('sha256').update(manifestOf('globex/2026-11-22')).digest('hex') });
    expect(Object.keys(snapshot(dir)).filter((p) => path.basename(p).startsWith('.') && p !== SCHEDULE_STATE_FILE)).toEqual([]);
    await scheduler.stop();
  });

  it('a state file write hitting ENOSPC after the export is retried with the configured delay, and the export is not written twice', async () => {
    const data = path.join(work, 'state-full');
    const config = resolveExportConfig({ data_dir: data, export: { schedules: [{ name: 'daily', period: 'daily' }], retry_delay_ms: 5_000, max_retry_delay_ms: 20_000 } });
    mkdirSync(config.dir, { recursive: true });
    // The scheduler writes its state to `<file>.<pid>.tmp` and renames it.
    const temp = path.join(config.dir, `${SCHEDULE_STATE_FILE}.${process.pid}.tmp`);
    symlinkSync(DEV_FULL, temp);
    const lines: LogLine[] = [];
    const t0 = Date.parse('2026-11-23T01:00:00Z');
    const clock = new FakeClock(t0);
    const scheduler = createExportScheduler(config, { source, logger: capturingLogger(lines), clock });
    if (scheduler === null) throw new Error('no scheduler configured');
    scheduler.start();
    await clock.fireNext(() => scheduler.idle());

    expect(existsSync(path.join(config.dir, SCHEDULE_STATE_FILE))).toBe(false);
    expect(existsSync(temp)).toBe(false);
    expect(scheduler.failures()).toMatchObject([{ period: '2026-11-22', tenant: 'acme', attempts: 1, retryAt: t0 + 5_000 }]);
    expect(lines.filter((l) => l.level === 'error').map((l) => [l.fields.code, l.fields.errno, l.fields.path])).toEqual([['AW_EXPORT_WRITE_FAILED', 'ENOSPC', path.join(config.dir, SCHEDULE_STATE_FILE)]]);
    expect(clock.nextTimerAt()).toBe(t0 + 5_000);
    const manifest = path.join(config.dir, 'acme', '2026-11-22', MANIFEST_FILE);
    const mtime = statSync(manifest).mtimeMs;

    await clock.fireNext(() => scheduler.idle());
    expect(lines.filter((l) => l.message === 'export done').map((l) => `${String(l.fields.tenant)}:${String(l.fields.outcome)}`)).toEqual(['acme:written', 'acme:unchanged', 'globex:written']);
    expect(statSync(manifest).mtimeMs).toBe(mtime);
    expect(stateOf(config.dir).schedules.daily?.last_completed?.id).toBe('2026-11-22');
    expect(scheduler.failures()).toEqual([]);
    expect((await verifyExportDir(config.dir)).problems).toEqual([]);
    await scheduler.stop();
  });
});
