import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EmbeddedPipeline } from '../../cli/pipeline.js';
import { ADMIN, startTestPipeline, testConfig } from '../support/pipeline.js';

const config = testConfig({ ingest: { max_event_bytes: 65536, body_limit: 4 * 1024 * 1024 } });
const good = (id: string) => ({ event_id: id, time: '2026-11-24T10:00:00+01:00', agent: { id: 'agent-1', name: 'cursor' }, type: 'api_call' });

async function count(p: EmbeddedPipeline, table: string): Promise<number> {
  const rs = await p.clickhouse.query({ query: `SELECT count() AS n FROM ${config.clickhouse.database}.${table}`, format: 'JSONEachRow' });
  const [row] = await rs.json<{ n: number | string }>();
  return Number(row?.n ?? 0);
}

describe('HTTP ingest under malformed input', () => {
  let p: EmbeddedPipeline;
  beforeAll(async () => {
    p = await startTestPipeline(config);
    await p.app.ready();
  });
  afterAll(async () => p?.stop());

  const post = (payload: string, contentType = 'application/json') =>
    p.app.inject({ method: 'POST', url: '/v1/events', headers: { ...ADMIN, 'content-type': contentType }, payload });

  it('a body that is not JSON gets 400 and a dead letter', async () => {
    const res = await post('definitely not json', 'text/plain');
    expect(res.statusCode).toBe(400);
    // Read as one NDJSON line: rejected with its reason, nothing accepted.
    expect(res.json()).toMatchObject({ accepted: 0, rejected: 1, results: [{ status: 'rejected', reason: expect.stringMatching(/^not valid JSON/) }] });
  });

  it('an empty body gets 400', async () => {
    const res = await post('');
    expect(res.statusCode).toBe(400);
  });

  it('a JSON array with a __proto__ key is refused as a whole', async () => {
    const res = await post('[{"event_id":"x","time":0,"agent":{"id":"a"},"type":"auth","__proto__":{"polluted":1}}]');
    expect(res.statusCode).toBe(400);
    expect(res.json().message).toMatch(/^forbidden key/);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it('a 1 MiB event is rejected as oversize with a dead letter; its neighbours are accepted', async () => {
    const huge = JSON.stringify({ ...good('huge'), resource: 'x'.repeat(1024 * 1024) });
    const res = await post(`${JSON.stringify(good('n1'))}\n${huge}\n${JSON.stringify(good('n2'))}`, 'application/x-ndjson');
    expect(res.statusCode).toBe(200);
    const body = res.json();
    expect(body).toMatchObject({ accepted: 2, rejected: 1, errors: true });
    expect(body.results[1]).toMatchObject({ index: 1, status: 'rejected', reason: expect.stringMatching(/^event is 1048\d+ bytes; the limit is 65536$/) });
  });

  it('a body over the limit gets 413 with a JSON error', async () => {
    const res = await post(`[${'"x",'.repeat(1_100_000)}"x"]`);
    expect(res.statusCode).toBe(413);
    expect(res.json()).toMatchObject({ code: 'AW_API_BODY_TOO_LARGE' });
  });

  it('wrong types everywhere are rejected with paths, and nothing is accepted', async () => {
    const res = await post(JSON.stringify([{ event_id: 5, time: true, agent: { id: 7 }, type: 'api_call', duration_ms: 'slow' }]));
    expect(res.statusCode).toBe(400);
    const reason: string = res.json().results[0].reason;
    for (const path of ['event_id', 'time', 'agent.id', 'duration_ms']) expect(reason).toContain(`${path}: `);
  });

  it('keeps running: a valid event afterwards is judged and stored; every rejection is a dead-letter row', async () => {
    const res = await post(JSON.stringify([good('after-all-that')]));
    expect(res.statusCode).toBe(200);
    await p.settle();
    expect(await count(p, 'events')).toBe(3);
    // not JSON, empty, __proto__, oversize, wrong types (the 413 body was never read)
    expect(await count(p, 'dead_letters')).toBe(5);
    const health = await p.app.inject({ headers: ADMIN, method: 'GET', url: '/healthz' });
    expect(health.json()).toMatchObject({ status: 'ok', events: 3 });
  });

  it('hostile bodies found by fuzzing: deep nesting, too many items, lone surrogates; nothing blocks storage', async () => {
    const [events, letters] = [await count(p, 'events'), await count(p, 'dead_letters')];
    // Was a 500: JSON.stringify of the rejected item overflowed the stack.
    const deep = await post(`[${JSON.stringify(good('beside-deep'))},${'['.repeat(10_000)}${']'.repeat(10_000)}]`);
    expect(deep.statusCode).toBe(200);
    expect(deep.json()).toMatchObject({ accepted: 1, rejected: 1 });
    // 10,001 items of one byte each: refused as a whole, one dead letter rather than 10,001.
    const many = await post(`[${'1,'.repeat(10_000)}1]`);
    expect(many.statusCode).toBe(413);
    expect(many.json()).toMatchObject({ code: 'AW_INGEST_TOO_MANY_ITEMS', message: 'the body holds 10001 items; a request may hold at most 10000: split it' });
    // Was accepted: ClickHouse refused the insert, and the events writer retried it forever.
    const lone = await post(`${JSON.stringify(good('lone\ud800'))}\n${JSON.stringify(good('beside-lone'))}`, 'application/x-ndjson');
    expect(lone.statusCode).toBe(200);
    expect(lone.json().results[0]).toMatchObject({ status: 'rejected', event_id: 'lone\uFFFD', reason: expect.stringMatching(/^event_id: holds an unpaired UTF-16 surrogate/) });
    await p.settle();
    expect(await count(p, 'events')).toBe(events + 2);
    expect(await count(p, 'dead_letters')).toBe(letters + 3);
  });

  it('alert listing validates its query and ids', async () => {
    const badStatus = await p.app.inject({ headers: ADMIN, method: 'GET', url: '/v1/alerts?status=sleeping' });
    expect(badStatus.statusCode).toBe(400);
    expect(badStatus.json()).toMatchObject({ code: 'AW_API_VALIDATION', details: [{ path: 'status' }] });
    const badLimit = await p.app.inject({ headers: ADMIN, method: 'GET', url: '/v1/alerts?limit=0' });
    expect(badLimit.statusCode).toBe(400);
    const badId = await p.app.inject({ headers: ADMIN, method: 'POST', url: '/v1/alerts/not-an-id/ack' });
    expect(badId.statusCode).toBe(400);
    const unknownRoute = await p.app.inject({ headers: ADMIN, method: 'GET', url: '/v1/nothing' });
    expect(unknownRoute.json()).toMatchObject({ code: 'AW_API_NOT_FOUND' });
    const ready = await p.app.inject({ headers: ADMIN, method: 'GET', url: '/readyz' });
    expect(ready.statusCode).toBe(503); // not listening in this test
  });
});
