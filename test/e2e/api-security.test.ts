/**
 * API request budgets and body limits end to end, on embedded pipelines (real
 * ClickHouse engine, default policies): a key over its budget gets 429 while
 * another tenant's key is served, and is served again after the window; failed
 * authentications are limited per address; ingest, read, write and costly
 * budgets are separate; every route that takes a body refuses one over its
 * limit with 413 and the error body, and GET routes ignore bodies.
 */
import http from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_RATE_LIMITS } from '../../api/app.js';
import { ConfigSchema } from '../../cli/config.js';
import type { EmbeddedPipeline } from '../../cli/pipeline.js';
import { auth, sampleRouteUrl, startTestPipeline, testApiKeys, testConfig, type TestKey } from '../support/pipeline.js';

/** Small budgets in a short window, so a test spends them in a few requests and sees them come back. */
const BUDGETS = { window_seconds: 3, read_per_window: 5, write_per_window: 5, costly_per_window: 2, ingest_per_window: 3, auth_failures_per_window: 3 };

let seq = 0;
const event = (tenant: string) => ({ event_id: `sec-${tenant}-${seq++}`, time: Date.now(), tenant, agent: { id: 'sec-agent', name: 'cursor' }, type: 'api_call' });

interface Answer {
  status: number;
  headers: Record<string, string | string[] | number | undefined>;
  body: { code?: string; message?: string; details?: Record<string, unknown> | null } & Record<string, unknown>;
}

async function call(p: EmbeddedPipeline, key: TestKey | string | null, method: string, url: string, payload?: unknown, remoteAddress?: string): Promise<Answer> {
  const authorization = key === null ? {} : key.startsWith('awk_') ? { authorization: `Bearer ${key}` } : auth(key as TestKey);
  const res = await p.app.inject({
    method: method as 'GET',
    url,
    headers: authorization,
    ...(payload === undefined ? {} : { payload: payload as Record<string, unknown> }),
    ...(remoteAddress === undefined ? {} : { remoteAddress }),
  });
  const json = res.headers['content-type']?.toString().includes('json') === true;
  return { status: res.statusCode, headers: res.headers, body: json ? (res.json() as Answer['body']) : { text: res.body } };
}

/** Sends the request until it is refused with 429; the answers before and the refusal. */
async function spendUntilRefused(send: () => Promise<Answer>, atMost: number): Promise<{ served: Answer[]; refused: Answer }> {
  const served: Answer[] = [];
  for (let i = 0; i < atMost; i++) {
    const answer = await send();
    if (answer.status === 429) return { served, refused: answer };
    served.push(answer);
  }
  throw new Error(`no 429 within ${atMost} requests (statuses ${served.map((a) => a.status).join(', ')})`);
}

function expectRateLimited(answer: Answer, budget: string, limit: number): void {
  expect(answer.status).toBe(429);
  expect(answer.body).toMatchObject({ code: 'AW_API_RATE_LIMITED', message: expect.stringMatching(/too many requests/), details: { budget, limit, window_seconds: BUDGETS.window_seconds } });
  const retryAfter = Number(answer.headers['retry-after']);
  expect(retryAfter).toBeGreaterThanOrEqual(1);
  expect(retryAfter).toBeLessThanOrEqual(BUDGETS.window_seconds);
  expect(answer.body.details?.retry_after_seconds).toBe(retryAfter);
  expect(answer.headers['x-ratelimit-limit']).toBe(String(limit));
  expect(answer.headers['x-ratelimit-remaining']).toBe('0');
}

/** Polls (never sleeps a fixed time) until `check` holds. */
async function eventually<T>(attempt: () => Promise<T>, check: (value: T) => boolean, ms: number): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await attempt();
    if (check(value)) return value;
    if (Date.now() > deadline) throw new Error(`condition not met within ${ms} ms`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

describe('request budgets', () => {
  let p: EmbeddedPipeline;
  beforeAll(async () => {
    p = await startTestPipeline(testConfig({ api: { keys: testApiKeys, rate_limit: BUDGETS } }));
    await p.app.ready();
  }, 120_000);
  afterAll(async () => {
    await p?.stop();
  });

  it('an app built without a budget config uses the config defaults', () => {
    expect(ConfigSchema.parse({}).api.rate_limit).toEqual(DEFAULT_RATE_LIMITS);
  });

  it('a key over its read budget gets 429 with Retry-After while another tenant’s key is served; the budget is back after the window', async () => {
    const { served, refused } = await spendUntilRefused(() => call(p, 'acmeAnalyst', 'GET', '/v1/policies'), 20);
    expect(served.map((a) => a.status)).toEqual(Array(BUDGETS.read_per_window).fill(200));
    expect(served.map((a) => a.headers['x-ratelimit-remaining'])).toEqual(['4', '3', '2', '1', '0']);
    expectRateLimited(refused, 'read', BUDGETS.read_per_window);
    expect(refused.body.message).toMatch(/key acmeAnalyst/);

    // Another key, bound to no tenant, from the same address: its own budget.
    expect((await call(p, 'analyst', 'GET', '/v1/policies')).status).toBe(200);

    const back = await eventually(() => call(p, 'acmeAnalyst', 'GET', '/v1/policies'), (a) => a.status !== 429, 10_000);
    expect(back.status).toBe(200);
    expect(back.headers['x-ratelimit-limit']).toBe(String(BUDGETS.read_per_window));
  });

  it('failed authentications are limited per address, without locking out a valid key from that address', async () => {
    const address = '203.0.113.7';
    const { served, refused } = await spendUntilRefused(() => call(p, 'awk_wrong-key-0000', 'GET', '/v1/alerts', undefined, address), 20);
    expect(served.map((a) => a.status)).toEqual(Array(BUDGETS.auth_failures_per_window).fill(401));
    expectRateLimited(refused, 'auth_failures', BUDGETS.auth_failures_per_window);
    // No key at all counts the same; so does an unknown route.
    expect((await call(p, null, 'POST', '/v1/events', [event('acme')], address)).status).toBe(429);
    expect((await call(p, 'awk_another-wrong-key', 'GET', '/v1/nothing-here', undefined, address)).status).toBe(429);

    expect((await call(p, 'admin', 'GET', '/v1/alerts', undefined, address)).status).toBe(200);
    expect((await call(p, 'awk_wrong-key-0000', 'GET', '/v1/alerts', undefined, '203.0.113.8')).status).toBe(401);
    // Probes are never limited, whoever asks.
    for (let i = 0; i < 3 * BUDGETS.read_per_window; i++) {
      expect((await call(p, null, 'GET', '/healthz', undefined, address)).status).toBe(200);
    }
  });

  it('ingest, read, write and costly budgets are separate', async () => {
    // Reads spent: the same key still ingests, changes and queries.
    const reads = await spendUntilRefused(() => call(p, 'admin', 'GET', '/v1/mode'), 20);
    expectRateLimited(reads.refused, 'read', BUDGETS.read_per_window);
    const ingested = await call(p, 'admin', 'POST', '/v1/events', [event('globex')]);
    expect(ingested.status).toBe(200);
    expect(ingested.body).toMatchObject({ accepted: 1 });
    expect((await call(p, 'admin', 'POST', '/v1/policies/validate', { policies: [] })).status).not.toBe(429);
    expect((await call(p, 'admin', 'POST', '/v1/query', { sql: 'SELECT 1 AS one' })).status).toBe(200);

    // Ingest spent: the key still reads.
    const batches = await spendUntilRefused(() => call(p, 'acmeAdmin', 'POST', '/v1/events', [event('acme')]), 20);
    expect(batches.served.map((a) => a.status)).toEqual(Array(BUDGETS.ingest_per_window).fill(200));
    expectRateLimited(batches.refused, 'ingest', BUDGETS.ingest_per_window);
    expect((await call(p, 'acmeAdmin', 'GET', '/v1/mode')).status).toBe(200);

    // Costly routes have the tightest budget, shared by query and dry-run; reads go on.
    const costly = await spendUntilRefused(
      () => (seq++ % 2 === 0 ? call(p, 'analyst', 'POST', '/v1/query', { sql: 'SELECT 1 AS one' }) : call(p, 'analyst', 'POST', '/v1/dry-run', { event: event('default') })),
      20,
    );
    expect(costly.served.map((a) => a.status)).toEqual(Array(BUDGETS.costly_per_window).fill(200));
    expectRateLimited(costly.refused, 'costly', BUDGETS.costly_per_window);
    expect((await call(p, 'analyst', 'GET', '/v1/mode')).status).toBe(200);

    // Writes spent: reads go on.
    const writes = await spendUntilRefused(() => call(p, 'acmeAnalyst', 'POST', '/v1/alerts/ack', { ids: ['0'.repeat(32)] }), 20);
    expect(writes.served.map((a) => a.status)).toEqual(Array(BUDGETS.write_per_window).fill(200));
    expectRateLimited(writes.refused, 'write', BUDGETS.write_per_window);
    expect((await call(p, 'acmeAnalyst', 'GET', '/v1/mode')).status).not.toBe(429);
  });

  it('counts refusals per budget in /metrics', async () => {
    const metrics = await eventually(() => call(p, 'analyst', 'GET', '/metrics'), (a) => a.status === 200, 10_000);
    const text = String(metrics.body.text);
    for (const budget of ['read', 'write', 'costly', 'ingest', 'auth_failures']) {
      const line = new RegExp(`^agentwatch_http_rate_limited_total\\{budget="${budget}"\\} (\\d+)$`, 'm').exec(text);
      expect(line, budget).not.toBeNull();
      expect(Number(line?.[1]), budget).toBeGreaterThanOrEqual(1);
    }
  });
});

describe('body limits', () => {
  let p: EmbeddedPipeline;
  beforeAll(async () => {
    // The default budgets (a sweep of every route fits in them).
    p = await startTestPipeline(testConfig());
    await p.app.ready();
  }, 120_000);
  afterAll(async () => {
    await p?.stop();
  });

  /** A JSON document (one string) of exactly `bytes` bytes. */
  const jsonOfSize = (bytes: number) => `"${'x'.repeat(bytes - 2)}"`;

  it('every route that takes a body refuses one over its limit with 413 and the error body, and reads one at the limit', async () => {
    const routes = p.app.routesInfo.filter((r) => r.method !== 'GET');
    // Listed routes include ingest, registered outside the API's route table.
    expect(routes.map((r) => `${r.method} ${r.url}`)).toContain('POST /v1/events');
    expect(routes.length).toBeGreaterThan(15);
    for (const route of routes) {
      const name = `${route.method} ${route.url} (limit ${route.bodyLimit})`;
      const over = await p.app.inject({ method: route.method, url: sampleRouteUrl(route.url), headers: { ...auth('admin'), 'content-type': 'application/json' }, payload: jsonOfSize(route.bodyLimit + 1) });
      expect(over.statusCode, name).toBe(413);
      expect(over.json(), name).toEqual({ code: 'AW_API_BODY_TOO_LARGE', message: expect.any(String), details: null });
      const at = await p.app.inject({ method: route.method, url: sampleRouteUrl(route.url), headers: { ...auth('admin'), 'content-type': 'application/json' }, payload: jsonOfSize(route.bodyLimit) });
      expect(at.statusCode, name).not.toBe(413);
      expect(at.statusCode, name).toBeLessThan(500);
      await new Promise(setImmediate);
    }
  }, 120_000);

  it('a chunked body over the limit (no Content-Length) is refused with 413 over real HTTP', async () => {
    const base = await p.listen();
    const limits = new Map(p.app.routesInfo.map((r) => [`${r.method} ${r.url}`, r.bodyLimit]));
    for (const [method, url] of [['POST', '/v1/events'], ['PUT', '/v1/policy-document']] as const) {
      const limit = limits.get(`${method} ${url}`)!;
      const answer = await new Promise<{ status: number; body: string }>((resolve, reject) => {
        const req = http.request(`${base}${url}`, { method, headers: { ...auth('admin'), 'content-type': 'application/json', 'transfer-encoding': 'chunked' } }, (res) => {
          let body = '';
          res.setEncoding('utf8');
          res.on('data', (chunk: string) => (body += chunk));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
        });
        // The server may answer and close while the rest is still being written.
        req.on('error', (error: NodeJS.ErrnoException) => (error.code === 'EPIPE' || error.code === 'ECONNRESET' ? undefined : reject(error)));
        const chunk = 'x'.repeat(64 * 1024);
        let sent = 0;
        const writeMore = () => {
          while (sent <= limit) {
            sent += chunk.length;
            if (!req.write(chunk)) return void req.once('drain', writeMore);
          }
          req.end();
        };
        writeMore();
      });
      expect(answer.status, `${method} ${url}`).toBe(413);
      expect(JSON.parse(answer.body), `${method} ${url}`).toMatchObject({ code: 'AW_API_BODY_TOO_LARGE' });
    }
  }, 60_000);

  it('GET routes ignore a body: the same answer with and without one', async () => {
    const routes = p.app.routesInfo.filter((r) => r.method === 'GET');
    expect(routes.length).toBeGreaterThan(15);
    for (const route of routes) {
      const url = sampleRouteUrl(route.url);
      const without = await call(p, 'admin', 'GET', url);
      const withBody = await p.app.inject({ method: 'GET', url, headers: { ...auth('admin'), 'content-type': 'application/json' }, payload: jsonOfSize(8 * 1024 * 1024) });
      expect(withBody.statusCode, route.url).toBe(without.status);
      await new Promise(setImmediate);
    }
  }, 60_000);
});
