/**
 * Secrets never reach the logs. A full `agentwatch run` (every stage, debug
 * logging) takes events carrying sample credentials in every free-text field,
 * malformed bodies that start with them (JSON parse errors quote their
 * input), wrong API keys, and delivers alerts to a webhook sink whose header
 * holds a token; a second process creates its first-start admin key (shown
 * once on the terminal, stdout, by design). The logs of both are then searched for every secret, and for every 12-character
 * piece of them.
 */
import { createServer, type Server } from 'node:http';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { repoRoot, testApiKeys, TEST_KEYS } from '../support/pipeline.js';
import { startAgentwatch, waitFor, writeConfig, type AgentwatchProcess } from '../support/processes.js';

const work = mkdtempSync(path.join(tmpdir(), 'aw-secrets-'));
const processes: AgentwatchProcess[] = [];
let sink: Server | undefined;

afterAll(async () => {
  for (const p of processes) if (p.child.exitCode === null) p.child.kill('SIGKILL');
  sink?.close();
  rmSync(work, { recursive: true, force: true });
});

/** Sample credentials, fake but shaped like the real thing. */
const SECRETS = {
  aws: 'AKIAQ7XZ4SAMPLE9KEY2',
  anthropic: 'sk-ant-api03-Zq8sampleSECRETvalue0123456789abcdefXYZ',
  github: 'ghp_sampleSecretToken0123456789ABCDEFabcd',
  password: 'hunter2-Correct-Horse-Battery-Staple-77',
  sinkToken: 'sink-bearer-7f3e9c1d2b4a5e6f8091a2b3c4d5e6f7',
  wrongKey: 'awk_guessed-not-a-real-key-5b8e2f19c7d04a63',
};

/** A secret and its 12-character pieces, so a truncated or quoted fragment is found too. */
function fragments(secret: string): string[] {
  const out = [secret];
  for (let i = 0; i + 12 <= secret.length; i += 4) out.push(secret.slice(i, i + 12));
  return out;
}

function leaks(log: string, secrets: Record<string, string>): string[] {
  const found: string[] = [];
  for (const [name, secret] of Object.entries(secrets)) {
    for (const piece of fragments(secret)) {
      if (log.includes(piece)) {
        const at = log.indexOf(piece);
        found.push(`${name} (${piece}): …${log.slice(Math.max(0, at - 120), at + 40)}…`);
        break;
      }
    }
  }
  return found;
}

describe('secrets in logs', () => {
  it('a full run at debug level logs none of the API keys, sink credentials or secrets in events', { timeout: 120_000 }, async () => {
    const received: string[] = [];
    sink = createServer((req, res) => {
      received.push(String(req.headers.authorization));
      req.resume();
      req.on('end', () => res.writeHead(204).end());
    });
    await new Promise<void>((resolve) => (sink as Server).listen(0, '127.0.0.1', resolve));
    const sinkPort = (sink.address() as { port: number }).port;

    const config = writeConfig(work, 'run', {
      port: 0,
      data_dir: path.join(work, 'data'),
      policies: path.join(repoRoot, 'policies/default.yaml'),
      log_level: 'debug',
      api: { keys: testApiKeys },
      privacy: { store_raw_payloads: true },
      delivery: { sinks: [{ name: 'soc', kind: 'webhook', url: `http://127.0.0.1:${sinkPort}/hook`, headers: { Authorization: `Bearer ${SECRETS.sinkToken}` } }] },
    });
    const p = await startAgentwatch(['run', '--config', config, '--no-summary'], { KAFKA_BROKERS: '', REDIS_URL: '' });
    processes.push(p);

    const post = (body: string, key: string = TEST_KEYS.admin, url = '/v1/events') =>
      fetch(`${p.url}${url}`, { method: 'POST', headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' }, body });
    const time = new Date(Date.now() - 60_000).toISOString();
    const events = Array.from({ length: 40 }, (_, i) => ({
      event_id: `s-${i}`,
      time,
      agent: { id: 'leaky', name: 'shadow-gpt' },
      type: 'tool_call',
      action: `export AWS_ACCESS_KEY_ID=${SECRETS.aws}`,
      resource: `https://api.example.com/?token=${SECRETS.github}`,
      tool: { name: 'bash' },
      network: { domain: 'paste.exfil-drop.net' },
      content: { input: `use ${SECRETS.anthropic}`, output: `password=${SECRETS.password}` },
      attributes: { note: SECRETS.password },
    }));
    expect((await post(JSON.stringify(events))).status).toBe(200);
    // Malformed: parse errors quote their input; wrong types carry the secret as the value.
    expect((await post(`${SECRETS.aws} ${SECRETS.password}`)).status).toBe(400);
    expect((await post(`[{"event_id":"bad","time":"${SECRETS.github}","agent":{"id":"${SECRETS.anthropic}"},"type":"${SECRETS.password}"}]`)).status).toBe(400);
    expect((await post(`{"event_id":"${SECRETS.aws}", "time": ${SECRETS.password}}`, TEST_KEYS.admin)).status).toBe(400);
    // A guessed key, and a key in the query string.
    expect((await post(JSON.stringify(events.slice(0, 1)), SECRETS.wrongKey)).status).toBe(401);
    expect((await fetch(`${p.url}/v1/alerts?api_key=${SECRETS.wrongKey}`)).status).toBe(401);
    // Secrets in a query and in searches.
    await post(JSON.stringify({ sql: `SELECT '${SECRETS.password}' AS x` }), TEST_KEYS.admin, '/v1/query');
    await fetch(`${p.url}/v1/verdicts?agent_id=${SECRETS.github}`, { headers: { authorization: `Bearer ${TEST_KEYS.analyst}` } });

    // The alerts reach the sink: its credential was used.
    await waitFor('a notification at the sink', () => received.length > 0, 60_000, 100);
    expect(received[0]).toBe(`Bearer ${SECRETS.sinkToken}`);
    p.child.kill('SIGTERM');
    expect(await p.exited).toBe(0);

    // First start without keys: the created admin key is in its file, never in the log.
    const firstConfig = writeConfig(work, 'first', { port: 0, data_dir: path.join(work, 'first'), policies: path.join(repoRoot, 'policies/default.yaml'), log_level: 'debug' });
    const first = await startAgentwatch(['run', '--config', firstConfig, '--no-summary'], { KAFKA_BROKERS: '', REDIS_URL: '' });
    processes.push(first);
    await waitFor('the first-start key on the terminal', () => /admin API key[^\n]*\n\s*awk_\S+\n/.test(first.stdout()), 30_000, 50);
    first.child.kill('SIGTERM');
    await first.exited;
    const adminKey = readFileSync(path.join(work, 'first', 'admin-api-key'), 'utf8').trim();
    expect(adminKey).toMatch(/^awk_/);

    // Shown once on the terminal (stdout, after "running on"), as designed; never in the log (stderr).
    expect(first.stdout().split(adminKey).length - 1).toBe(1);
    const logs = [p.stdout(), p.stderr(), first.stderr()].join('\n');
    expect(p.stderr().length).toBeGreaterThan(1_000); // debug logging did log
    const secrets: Record<string, string> = { ...SECRETS, firstStartAdminKey: adminKey };
    for (const [id, key] of Object.entries(TEST_KEYS)) secrets[`test key ${id}`] = key;
    expect(leaks(logs, secrets)).toEqual([]);
  });
});
