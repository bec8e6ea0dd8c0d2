import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AgentEvent } from '../../core/event.js';
import type { DeadLetter } from '../../core/records.js';
import { problemsFromZod } from '../../core/validation.js';
import { compileDataProtection, DataProtectionConfigSchema, redactText } from '../../detectors/types/data-protection.js';
import { openTestStore, type TestStore } from '../../test/support/clickhouse.js';
import { StorageError } from '../errors.js';
import { ClickHouseAnalyticsStore } from './analytics-store.js';
import {
  applyRetention,
  currentTtls,
  deadLetterSanitizer,
  OMITTED,
  parseRetentionPeriod,
  planRetention,
  PrivacyConfigSchema,
  RETENTION_TABLES,
  RetentionConfigSchema,
  storedContent,
  tableTtl,
  type RetentionConfig,
} from './retention.js';

const DAY_MS = 86_400_000;

/** A stand-in for data_protection's redactText (the store takes any function; the wiring passes the real one). */
const redactEmails = (text: string): string => text.replace(/[\w.]+@[\w.]+\.[a-z]+/g, '[REDACTED:email]');

function retention(input: unknown = {}): RetentionConfig {
  return RetentionConfigSchema.parse(input);
}

function expectInvalidConfig(run: () => unknown, message: RegExp): void {
  let error: unknown;
  try {
    run();
  } catch (e) {
    error = e;
  }
  expect(error).toBeInstanceOf(StorageError);
  expect((error as StorageError).code).toBe('AW_STORAGE_INVALID_CONFIG');
  expect((error as StorageError).message).toMatch(message);
}

describe('retention config', () => {
  it('defaults to 400 days for every class, pii for raw and derived tables and public for the audit log', () => {
    const config = retention();
    // As cli/config.ts nests it: an absent section takes every default.
    expect(RetentionConfigSchema.prefault({}).parse(undefined)).toEqual(config);
    expect(config).toEqual({
      default_retention: '400d',
      classes: {},
      tables: { events: 'pii', dead_letters: 'pii', verdicts: 'pii', alerts: 'pii', capability_history: 'pii', audit_log: 'public', alert_deliveries: 'pii' },
    });
    expect(planRetention(config).map((t) => [t.table, t.dataClass, t.ttl])).toEqual([
      ['events', 'pii', 'time + toIntervalDay(400)'],
      ['dead_letters', 'pii', 'received_at + toIntervalDay(400)'],
      ['verdicts', 'pii', 'time + toIntervalDay(400)'],
      ['alerts', 'pii', 'updated_at + toIntervalDay(400)'],
      ['capability_history', 'pii', 'time + toIntervalDay(400)'],
      ['audit_log', 'public', 'evaluated_at + toIntervalDay(400)'],
      ['alert_deliveries', 'pii', 'created_at + toIntervalDay(400)'],
    ]);
  });

  it('gives each table the retention of its class, falling back to default_retention', () => {
    const plan = planRetention(
      retention({ default_retention: '2y', classes: { pii: '12w', phi: '30d' }, tables: { events: 'phi', audit_log: 'pii' } }),
    );
    const byTable = Object.fromEntries(plan.map((t) => [t.table, t]));
    expect(byTable.events).toMatchObject({ dataClass: 'phi', period: { unit: 'day', count: 30 }, ttl: 'time + toIntervalDay(30)' });
    expect(byTable.audit_log).toMatchObject({ dataClass: 'pii', period: { unit: 'day', count: 84 } });
    expect(byTable.verdicts).toMatchObject({ dataClass: 'pii', ttl: 'time + toIntervalDay(84)' });
    expect(retention({ default_retention: '2y' }).tables.audit_log).toBe('public');
    expect(planRetention(retention({ default_retention: '2y' })).find((t) => t.table === 'audit_log')?.ttl).toBe('evaluated_at + toIntervalYear(2)');
  });

  it('keeps a class forever with "forever"', () => {
    const plan = planRetention(retention({ classes: { public: 'forever' } }));
    expect(plan.find((t) => t.table === 'audit_log')).toMatchObject({ period: null, ttl: null });
    expect(plan.find((t) => t.table === 'events')?.ttl).toBe('time + toIntervalDay(400)');
  });

  it('rejects bad durations, classes and keys with the path of the setting', () => {
    const problems = (input: unknown): string[] => {
      const result = RetentionConfigSchema.safeParse(input);
      expect(result.success).toBe(false);
      return result.success ? [] : problemsFromZod(result.error, 'retention').map((p) => `${p.path}: ${p.message}`);
    };
    for (const bad of ['30', '30 d', '0d', '1m', '1.5y', '-1d', '30D', 'never', '', '1e3d', '0030d']) {
      expect(problems({ default_retention: bad })[0]).toMatch(/^retention\.default_retention: must be "forever" or a whole number/);
    }
    expect(problems({ classes: { pii: '36501d' } })).toEqual([expect.stringMatching(/^retention\.classes\.pii: must be at most 100 years/)]);
    expect(problems({ classes: { phi: '101y' } })).toEqual([expect.stringMatching(/^retention\.classes\.phi: must be at most 100 years/)]);
    expect(problems({ classes: { secret: '1d' } })[0]).toMatch(/^retention\.classes/);
    expect(problems({ tables: { events: 'private' } })[0]).toMatch(/^retention\.tables\.events: /);
    expect(problems({ tables: { silences: 'pii' } })[0]).toMatch(/^retention\.tables/);
    // The largest values accepted.
    expect(RetentionConfigSchema.safeParse({ classes: { pii: '36500d', phi: '5214w', public: '100y' } }).success).toBe(true);
  });

  it('parses durations strictly outside zod too, naming the key', () => {
    expect(parseRetentionPeriod('30d', 'k')).toEqual({ unit: 'day', count: 30 });
    expect(parseRetentionPeriod('12w', 'k')).toEqual({ unit: 'day', count: 84 });
    expect(parseRetentionPeriod('7y', 'k')).toEqual({ unit: 'year', count: 7 });
    expect(parseRetentionPeriod('forever', 'k')).toBeNull();
    expectInvalidConfig(() => parseRetentionPeriod('30d; DROP TABLE x', 'retention.classes.pii'), /^retention\.classes\.pii must be/);
    // A hand-built config (not through the schema) is checked as well.
    expectInvalidConfig(() => planRetention({ ...retention(), default_retention: '1 DAY) --' }), /^retention\.default_retention/);
    expectInvalidConfig(
      () => planRetention({ ...retention(), tables: { ...retention().tables, events: 'secret' as 'pii' } }),
      /^retention\.tables\.events must be one of public, pii, phi/,
    );
  });

  it('reads the table TTL out of engine_full', () => {
    expect(tableTtl('MergeTree PARTITION BY toYYYYMM(received_at) ORDER BY received_at TTL received_at + toIntervalDay(30) SETTINGS index_granularity = 8192')).toBe(
      'received_at + toIntervalDay(30)',
    );
    expect(tableTtl('ReplacingMergeTree ORDER BY version SETTINGS index_granularity = 8192')).toBeNull();
    expect(tableTtl('MergeTree ORDER BY x TTL x + toIntervalYear(1)')).toBe('x + toIntervalYear(1)');
  });
});

describe('privacy config', () => {
  const event = (content?: AgentEvent['content']): AgentEvent => ({
    event_id: 'e',
    time: 1,
    tenant: 't',
    agent: { id: 'a' },
    type: 'tool_call',
    ...(content === undefined ? {} : { content }),
  });

  it('defaults to not storing payloads and redacting', () => {
    expect(PrivacyConfigSchema.parse({})).toEqual({ store_raw_payloads: false, redact_outputs: true });
    expect(PrivacyConfigSchema.safeParse({ redact_output: false }).success).toBe(false);
    expect(PrivacyConfigSchema.safeParse({ store_raw_payloads: 'yes' }).success).toBe(false);
  });

  it('stores content only with store_raw_payloads, redacted unless redact_outputs is off', () => {
    const e = event({ input: 'mail ana@example.com', output: 'ok' });
    expect(storedContent(e, { store_raw_payloads: false, redact_outputs: true })).toEqual(['', '']);
    expect(storedContent(e, { store_raw_payloads: true, redact_outputs: true, redactText: redactEmails })).toEqual(['mail [REDACTED:email]', 'ok']);
    expect(storedContent(e, { store_raw_payloads: true, redact_outputs: false })).toEqual(['mail ana@example.com', 'ok']);
    expect(storedContent(event(), { store_raw_payloads: true, redact_outputs: false })).toEqual(['', '']);
    expect(storedContent(event({ output: 'x' }), { store_raw_payloads: true, redact_outputs: false })).toEqual(['', 'x']);
    expectInvalidConfig(() => storedContent(e, { store_raw_payloads: true, redact_outputs: true }), /privacy\.redact_outputs is true but no redactText/);
  });

  it('keeps dead letters for debugging, without event content unless store_raw_payloads, redacted when redact_outputs', () => {
    const raw = JSON.stringify({ event_id: 'x', type: 'nope', agent: { id: 'ana@example.com' }, content: { input: 'SSN talk', output: 'secret' } });
    const letter: DeadLetter = { id: 'dl', received_at: 1, source: 'http', reason: 'type: invalid', raw, raw_bytes: raw.length };

    const byDefault = deadLetterSanitizer({ store_raw_payloads: false, redact_outputs: true, redactText: redactEmails })(letter);
    expect(JSON.parse(byDefault.raw)).toEqual({ event_id: 'x', type: 'nope', agent: { id: '[REDACTED:email]' }, content: { input: OMITTED, output: OMITTED } });
    expect(byDefault).toMatchObject({ id: 'dl', reason: 'type: invalid', raw_bytes: raw.length });
    expect(letter.raw).toBe(raw);

    const batch = JSON.stringify({ events: [{ content: { input: 'a', extra: ['b', 3] } }, { type: 'auth' }] });
    expect(JSON.parse(deadLetterSanitizer({ store_raw_payloads: false, redact_outputs: false })({ ...letter, raw: batch }).raw)).toEqual({
      events: [{ content: { input: OMITTED, extra: [OMITTED, 3] } }, { type: 'auth' }],
    });

    // Unparseable input is what a dead letter is for: kept, redacted.
    const truncated = raw.slice(0, 60);
    expect(deadLetterSanitizer({ store_raw_payloads: false, redact_outputs: true, redactText: redactEmails })({ ...letter, raw: truncated }).raw).toBe(
      truncated.replace('ana@example.com', '[REDACTED:email]'),
    );

    const raws = deadLetterSanitizer({ store_raw_payloads: true, redact_outputs: true, redactText: redactEmails })(letter).raw;
    expect(raws).toBe(raw.replace('ana@example.com', '[REDACTED:email]'));
    expect(deadLetterSanitizer({ store_raw_payloads: true, redact_outputs: false })(letter)).toBe(letter);
    expectInvalidConfig(() => deadLetterSanitizer({ store_raw_payloads: false, redact_outputs: true }), /no redactText/);
  });
});

describe('with data_protection as the redactor (as cli/pipeline.ts wires it)', () => {
  it('redacts the built-in kinds in stored content and dead letters', () => {
    const dataProtection = compileDataProtection(DataProtectionConfigSchema.parse({}));
    const privacy = { store_raw_payloads: true, redact_outputs: true, redactText: (text: string) => redactText(text, dataProtection) };
    const event: AgentEvent = {
      event_id: 'e',
      time: 1,
      tenant: 't',
      agent: { id: 'a' },
      type: 'tool_call',
      content: { input: 'SSN 123-45-6789, mail ana@example.com', output: 'card 4111 1111 1111 1111' },
    };
    expect(storedContent(event, privacy)).toEqual(['SSN [REDACTED:ssn], mail [REDACTED:email]', 'card [REDACTED:credit_card]']);
    const raw = '{"agent":{"id":"x"},"type":"bad","content":{"input":"ana@example.com"';
    expect(deadLetterSanitizer(privacy)({ id: 'd', received_at: 1, source: 'http', reason: 'r', raw, raw_bytes: raw.length }).raw).toBe(
      '{"agent":{"id":"x"},"type":"bad","content":{"input":"[REDACTED:email]"',
    );
  });
});

describe('applyRetention on ClickHouse', () => {
  let t: TestStore;

  beforeAll(async () => {
    t = await openTestStore();
  });

  afterAll(async () => {
    await t?.close();
  });

  async function rows<R>(query: string, params: Record<string, unknown> = {}): Promise<R[]> {
    const result = await t.client.query({ query: query.replaceAll('{db}', t.database), query_params: params, format: 'JSONEachRow' });
    return result.json<R>();
  }

  async function showCreate(table: string): Promise<string> {
    const [row] = await rows<{ statement: string }>(`SHOW CREATE TABLE {db}.${table}`);
    return row?.statement ?? '';
  }

  it('sets each table TTL once, changes it when the config changes and removes it for "forever"', async () => {
    const first = await applyRetention(t.client, t.database, retention({ classes: { pii: '30d' } }));
    expect(first.map((c) => [c.table, c.outcome, c.ttl])).toEqual([
      ['events', 'set', 'time + toIntervalDay(30)'],
      ['dead_letters', 'set', 'received_at + toIntervalDay(30)'],
      ['verdicts', 'set', 'time + toIntervalDay(30)'],
      ['alerts', 'set', 'updated_at + toIntervalDay(30)'],
      ['capability_history', 'set', 'time + toIntervalDay(30)'],
      ['audit_log', 'set', 'evaluated_at + toIntervalDay(400)'],
      ['alert_deliveries', 'set', 'created_at + toIntervalDay(30)'],
    ]);
    expect(await showCreate('events')).toMatch(/\nTTL time \+ toIntervalDay\(30\)\n/);
    expect(await showCreate('audit_log')).toMatch(/\nTTL evaluated_at \+ toIntervalDay\(400\)\n/);
    // Tables that never expire are left alone.
    expect(await showCreate('policy_versions')).not.toMatch(/\bTTL\b/);
    expect(await showCreate('silences')).not.toMatch(/\bTTL\b/);

    const again = await applyRetention(t.client, t.database, retention({ classes: { pii: '30d' } }));
    expect(again.map((c) => c.outcome)).toEqual(Array(7).fill('unchanged'));

    const changed = await applyRetention(t.client, t.database, retention({ classes: { pii: '30d', public: 'forever' }, tables: { events: 'phi' }, default_retention: '7y' }));
    expect(Object.fromEntries(changed.map((c) => [c.table, [c.outcome, c.previous, c.ttl]]))).toMatchObject({
      events: ['set', 'time + toIntervalDay(30)', 'time + toIntervalYear(7)'],
      verdicts: ['unchanged', 'time + toIntervalDay(30)', 'time + toIntervalDay(30)'],
      audit_log: ['removed', 'evaluated_at + toIntervalDay(400)', null],
    });
    const ttls = await currentTtls(t.client, t.database);
    expect(ttls.get('events')).toBe('time + toIntervalYear(7)');
    expect(ttls.get('audit_log')).toBeNull();
    expect(await showCreate('audit_log')).not.toMatch(/\bTTL\b/);
    // Removing again is a no-op rather than ClickHouse's "no TTL to remove" error.
    const forever = retention({ default_retention: 'forever' });
    await applyRetention(t.client, t.database, forever);
    expect((await applyRetention(t.client, t.database, forever)).map((c) => c.outcome)).toEqual(Array(7).fill('unchanged'));
    expect([...(await currentTtls(t.client, t.database)).values()]).toEqual(Array(7).fill(null));
  });

  it('drops rows older than the retention once the TTL is materialised, and keeps the rest', async () => {
    const now = Date.now();
    const old = now - 90 * DAY_MS;
    const recent = now - DAY_MS;
    const ev = (id: string, time: number): AgentEvent => ({ event_id: id, time, tenant: 'ret', agent: { id: 'agent-ret' }, type: 'tool_call' });
    await t.store.insertEvents([ev('old', old), ev('recent', recent)]);
    await t.store.insertDeadLetters([
      { id: 'dl-old', received_at: old, source: 'http', reason: 'r', raw: '{}', raw_bytes: 2 },
      { id: 'dl-recent', received_at: recent, source: 'http', reason: 'r', raw: '{}', raw_bytes: 2 },
    ]);
    expect(await rows(`SELECT count() AS n FROM {db}.events WHERE tenant = 'ret'`)).toEqual([{ n: '2' }]);
    await applyRetention(t.client, t.database, retention({ default_retention: 'forever', classes: { pii: '30d' } }));
    for (const table of ['events', 'dead_letters']) {
      // Explicit and synchronous here; at start-up ClickHouse materialises a changed TTL in the background.
      await t.client.command({ query: `ALTER TABLE ${t.database}.${table} MATERIALIZE TTL`, clickhouse_settings: { mutations_sync: '2' } });
      await t.client.command({ query: `OPTIMIZE TABLE ${t.database}.${table} FINAL` });
    }
    expect((await rows<{ event_id: string }>(`SELECT event_id FROM {db}.events WHERE tenant = 'ret' ORDER BY event_id`)).map((r) => r.event_id)).toEqual(['recent']);
    expect((await rows<{ id: string }>(`SELECT id FROM {db}.dead_letters ORDER BY id`)).map((r) => r.id)).toEqual(['dl-recent']);
  });

  it('skips tables the migrations have not created and refuses a bad database name', async () => {
    const bare = await openTestStore({ migrate: false });
    try {
      await bare.client.command({ query: `CREATE DATABASE ${bare.database}` });
      await bare.client.command({ query: `CREATE TABLE ${bare.database}.dead_letters (received_at DateTime64(3, 'UTC')) ENGINE = MergeTree ORDER BY received_at` });
      const report = await applyRetention(bare.client, bare.database, retention());
      expect(report.filter((c) => c.outcome !== 'missing').map((c) => c.table)).toEqual(['dead_letters']);
      expect(report).toHaveLength(Object.keys(RETENTION_TABLES).length);
    } finally {
      await bare.close();
    }
    await expect(applyRetention(t.client, 'x; DROP DATABASE y', retention())).rejects.toMatchObject({ code: 'AW_STORAGE_INVALID_CONFIG' });
  });
});

describe('analytics store privacy', () => {
  let t: TestStore;

  beforeAll(async () => {
    t = await openTestStore();
  });

  afterAll(async () => {
    await t?.close();
  });

  const withContent = (id: string, tenant: string): AgentEvent => ({
    event_id: id,
    time: 1_700_000_000_000,
    tenant,
    agent: { id: 'agent-p' },
    type: 'tool_call',
    content: { input: 'please mail ana@example.com the report', output: 'sent to ana@example.com' },
  });

  async function storedContentOf(tenant: string): Promise<{ content_input: string; content_output: string }[]> {
    const result = await t.client.query({
      query: `SELECT content_input, content_output FROM ${t.database}.events FINAL WHERE tenant = {tenant:String}`,
      query_params: { tenant },
      format: 'JSONEachRow',
    });
    return result.json();
  }

  it('does not store content by default', async () => {
    await t.store.insertEvents([withContent('p-1', 'priv-default')]);
    expect(await storedContentOf('priv-default')).toEqual([{ content_input: '', content_output: '' }]);
  });

  it('stores content redacted with store_raw_payloads, as sent with redact_outputs off', async () => {
    const redacting = new ClickHouseAnalyticsStore(t.client, t.database, {
      closeClient: false,
      privacy: { store_raw_payloads: true, redact_outputs: true, redactText: redactEmails },
    });
    await redacting.insertEvents([withContent('p-2', 'priv-redacted')]);
    expect(await storedContentOf('priv-redacted')).toEqual([{ content_input: 'please mail [REDACTED:email] the report', content_output: 'sent to [REDACTED:email]' }]);

    const raw = new ClickHouseAnalyticsStore(t.client, t.database, { closeClient: false, privacy: { store_raw_payloads: true, redact_outputs: false } });
    await raw.insertEvents([withContent('p-3', 'priv-raw')]);
    expect(await storedContentOf('priv-raw')).toEqual([{ content_input: 'please mail ana@example.com the report', content_output: 'sent to ana@example.com' }]);
  });

  it('refuses at construction to store payloads redacted without a redactor', () => {
    expectInvalidConfig(
      () => new ClickHouseAnalyticsStore(t.client, t.database, { privacy: { store_raw_payloads: true, redact_outputs: true } }),
      /redact_outputs is true but no redactText/,
    );
    // Nothing stored that needs redacting: no redactor needed.
    expect(() => new ClickHouseAnalyticsStore(t.client, t.database, { privacy: { store_raw_payloads: false, redact_outputs: true } })).not.toThrow();
  });
});
