/**
 * Alert delivery through the whole embedded pipeline: an event opens an alert,
 * the alerter delivers it to a real HTTP receiver (an OCSF webhook), and the
 * alert's detail in the API shows the delivery.
 */
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EmbeddedPipeline } from '../../cli/pipeline.js';
import { ADMIN, startTestPipeline, testConfig } from '../support/pipeline.js';
import { waitFor } from '../support/processes.js';

interface Received {
  headers: IncomingMessage['headers'];
  body: Record<string, unknown>;
}

describe('alert delivery end to end', () => {
  let server: Server;
  let pipeline: EmbeddedPipeline;
  const received: Received[] = [];
  let failFirst = 1;

  beforeAll(async () => {
    server = createServer((req, res) => {
      let text = '';
      req.on('data', (chunk: Buffer) => (text += chunk.toString('utf8')));
      req.on('end', () => {
        // The first attempt fails: the outbox retries it.
        if (failFirst-- > 0) {
          res.writeHead(500).end();
          return;
        }
        received.push({ headers: req.headers, body: JSON.parse(text) as Record<string, unknown> });
        res.writeHead(202).end();
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`;
    pipeline = await startTestPipeline(
      testConfig({ delivery: { sinks: [{ name: 'soc-ocsf', kind: 'webhook', url, payload: 'ocsf', backoff: { initial_ms: 50, max_ms: 200 } }] } }),
    );
    await pipeline.app.ready();
  }, 60_000);

  afterAll(async () => {
    await pipeline?.stop();
    await new Promise((resolve) => server?.close(resolve));
  });

  it('delivers an opened alert as an OCSF Detection Finding after a retry, and shows the delivery on the alert', async () => {
    const res = await pipeline.app.inject({
      method: 'POST',
      url: '/v1/events',
      headers: ADMIN,
      payload: [{ event_id: 'deliver-1', time: '2026-11-24T10:00:00+01:00', agent: { id: 'agent-shadow-d', name: 'shadow-gpt' }, type: 'api_call' }],
    });
    expect(res.statusCode).toBe(200);
    await pipeline.settle();
    await waitFor('the receiver to get the notification', () => received.length > 0, 20_000, 50);
    const [first] = received;
    expect(first!.body).toMatchObject({ class_uid: 2004 });
    expect(JSON.stringify(first!.body)).toContain('agent-shadow-d');
    expect(first!.headers['idempotency-key']).toEqual(expect.any(String));

    const list = await pipeline.app.inject({ method: 'GET', url: '/v1/alerts?agent_id=agent-shadow-d', headers: ADMIN });
    const [alert] = (list.json() as { items: { alert_id: string }[] }).items;
    let deliveries: { sink: string; status: string; attempts: number; change: string }[] = [];
    await waitFor('the delivery to be recorded', async () => {
      const detail = await pipeline.app.inject({ method: 'GET', url: `/v1/alerts/${alert!.alert_id}`, headers: ADMIN });
      deliveries = (detail.json() as { deliveries: typeof deliveries }).deliveries;
      return deliveries.some((d) => d.status === 'delivered');
    }, 20_000, 100);
    expect(deliveries).toEqual([expect.objectContaining({ sink: 'soc-ocsf', change: 'opened', status: 'delivered', attempts: 2 })]);
    expect(received).toHaveLength(1);
  });
});
