import path from 'node:path';
import type { ResolvedExportConfig } from './config.js';
import { exportPeriod, exportTenantPeriod, type ExportLogger, type TenantExportResult } from './exporter.js';
import type { Period } from './periods.js';
import { ExportScheduler, SCHEDULE_STATE_FILE, type SchedulerClock } from './scheduler.js';
import { loadOrCreateSigningKey, type SigningKey } from './signing-key.js';
import type { ExportSource } from './source.js';

/**
 * Loads the signing key, creating it on first use with a clear log line: a
 * new key is a new trust root, and whoever verifies exports needs its public
 * half (written next to the exports as signing-key.pub.pem).
 */
export function loadSigningKey(keyFile: string, logger?: ExportLogger): SigningKey {
  const key = loadOrCreateSigningKey(keyFile);
  if (key.created) {
    logger?.warn({ file: key.file, fingerprint: key.fingerprint }, 'created a new export signing key (ed25519, mode 0600): keep it safe and give its public key to whoever verifies exports');
  }
  return key;
}

/** Dependencies of {@link createExportScheduler}. */
export interface ExportSchedulerDeps {
  source: ExportSource;
  logger?: ExportLogger;
  clock?: SchedulerClock;
}

/**
 * The scheduler of the configured export schedules, writing to the
 * configured directory; null when none is configured. Call `start()` after
 * the store is ready and `await stop()` before closing it.
 */
export function createExportScheduler(config: ResolvedExportConfig, deps: ExportSchedulerDeps): ExportScheduler | null {
  if (config.schedules.length === 0) return null;
  let key: SigningKey | null = null;
  return new ExportScheduler({
    schedules: config.schedules,
    stateFile: path.join(config.dir, SCHEDULE_STATE_FILE),
    maxCatchUp: config.max_catch_up,
    retryDelayMs: config.retry_delay_ms,
    maxRetryDelayMs: config.max_retry_delay_ms,
    listTenants: (period) => deps.source.tenantsWithRows(period, config.include_events),
    exportTenant: async (period, tenant) => {
      key ??= loadSigningKey(config.keyFile, deps.logger);
      await exportTenantPeriod(period, tenant, exportOptions(config, deps, key));
    },
    ...(deps.logger === undefined ? {} : { logger: deps.logger }),
    ...(deps.clock === undefined ? {} : { clock: deps.clock }),
  });
}

/** Exports periods for every tenant with rows (or the tenants given), periods in order. */
export async function runExports(
  periods: readonly Period[],
  config: ResolvedExportConfig,
  deps: { source: ExportSource; logger?: ExportLogger; tenants?: readonly string[]; onRows?: (tenant: string, rows: number) => void },
): Promise<TenantExportResult[]> {
  const key = loadSigningKey(config.keyFile, deps.logger);
  const results: TenantExportResult[] = [];
  for (const period of periods) {
    results.push(...(await exportPeriod(period, { ...exportOptions(config, deps, key), ...(deps.tenants === undefined ? {} : { tenants: deps.tenants }) })));
  }
  return results;
}

function exportOptions(config: ResolvedExportConfig, deps: { source: ExportSource; logger?: ExportLogger; onRows?: (tenant: string, rows: number) => void }, key: SigningKey) {
  return {
    dir: config.dir,
    source: deps.source,
    key,
    includeEvents: config.include_events,
    pageRows: config.page_rows,
    ...(deps.logger === undefined ? {} : { logger: deps.logger }),
    ...(deps.onRows === undefined ? {} : { onRows: deps.onRows }),
  };
}
