import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfig } from './config.js';
import { buildProgram } from './main.js';

describe('configuration', () => {
  it('defaults give the embedded mode', () => {
    const c = loadConfig(undefined, {});
    expect(c).toMatchObject({ port: 8080, host: '127.0.0.1', data_dir: './data', policies: 'policies/default.yaml' });
    expect(c.clickhouse.url).toBeUndefined();
    expect(Object.isFrozen(c)).toBe(true);
  });

  it('command line > environment > file > defaults', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'aw-config-'));
    const file = path.join(dir, 'agentwatch.yaml');
    writeFileSync(file, 'port: 9000\ndata_dir: /file\npolicies: /file.yaml\nclickhouse: { database: fromfile }\n');
    const c = loadConfig(file, { AGENTWATCH_DATA_DIR: '/env', AGENTWATCH_PORT: '9100', CLICKHOUSE_DATABASE: 'fromenv' }, { port: 9200 });
    expect(c).toMatchObject({ port: 9200, data_dir: '/env', policies: '/file.yaml' });
    expect(c.clickhouse.database).toBe('fromenv');
  });

  it('errors name the bad key', () => {
    expect(() => loadConfig(undefined, { AGENTWATCH_PORT: 'eighty' })).toThrow(/^invalid configuration: port: /);
    expect(() => loadConfig(undefined, { CLICKHOUSE_DATABASE: 'x; DROP' })).toThrow(/clickhouse\.database: must be a plain identifier/);
    const dir = mkdtempSync(path.join(tmpdir(), 'aw-config-'));
    const file = path.join(dir, 'bad.yaml');
    writeFileSync(file, 'prot: 1\n');
    expect(() => loadConfig(file, {})).toThrow(/Unrecognized key: "prot"/);
    expect(() => loadConfig(path.join(dir, 'missing.yaml'), {})).toThrow(/cannot read config file/);
  });

  it('every command has --help', () => {
    const program = buildProgram();
    const names = program.commands.flatMap((c) => [c, ...c.commands]).map((c) => c.helpInformation());
    expect(names.length).toBeGreaterThanOrEqual(3);
    for (const help of names) expect(help).toMatch(/-h, --help/);
    expect(program.commands.find((c) => c.name() === 'run')!.helpInformation()).toMatch(/--demo/);
  });
});
