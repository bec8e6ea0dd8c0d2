import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { resolveExportConfig, scheduleCron } from './config.js';

describe('resolveExportConfig', () => {
  it('defaults into the data directory and runs no schedule', () => {
    const config = resolveExportConfig({ data_dir: '/var/lib/aw' });
    expect(config).toMatchObject({ dir: '/var/lib/aw/exports', keyFile: '/var/lib/aw/export-signing-key.pem', include_events: false, schedules: [], page_rows: 10_000, retry_delay_ms: 30_000, max_retry_delay_ms: 900_000 });
    expect(Object.isFrozen(config)).toBe(true);
  });

  it('takes a file:// destination and fills in the cron of each period', () => {
    const config = resolveExportConfig({
      data_dir: 'data',
      export: { destination: 'file:///srv/exports', schedules: [{ name: 'daily', period: 'daily', timezone: 'Europe/Berlin' }, { name: 'm', period: 'monthly', cron: '0 3 1 * *' }] },
    });
    expect(config.dir).toBe(path.resolve('/srv/exports'));
    expect(config.schedules.map(scheduleCron)).toEqual(['15 0 * * *', '0 3 1 * *']);
  });

  it('names the key of each problem', () => {
    expect(() => resolveExportConfig({ data_dir: 'd', export: { destination: 's3://bucket/x' } })).toThrow(/export\.destination: only file:\/\/ destinations/);
    expect(() => resolveExportConfig({ data_dir: 'd', export: { schedules: [{ name: 'x', period: 'daily', timezone: 'Mars/Base' }] } })).toThrow(
      /export\.schedules\[0\]\.timezone: unknown time zone "Mars\/Base"/,
    );
    expect(() => resolveExportConfig({ data_dir: 'd', export: { schedules: [{ name: 'x', period: 'daily', cron: 'every day' }] } })).toThrow(/export\.schedules\[0\]\.cron: not a cron expression/);
    expect(() =>
      resolveExportConfig({ data_dir: 'd', export: { schedules: [{ name: 'x', period: 'daily' }, { name: 'x', period: 'weekly' }] } }),
    ).toThrow(/export\.schedules\[1\]\.name: duplicate schedule name "x"/);
    expect(() => resolveExportConfig({ data_dir: 'd', export: { shedules: [] } })).toThrow(/export: Unrecognized key/);
    expect(() => resolveExportConfig({ data_dir: 'd', export: { retry_delay_ms: 60_000, max_retry_delay_ms: 30_000 } })).toThrow(/export\.max_retry_delay_ms: must be at least retry_delay_ms \(60000\)/);
  });
});
