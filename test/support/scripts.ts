import { execFile } from 'node:child_process';
import { createServer } from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

// Only node built-ins here: test/global-setup.ts imports this before any service runs.
const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

/** A port nobody listens on right now (the OS picks it). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/**
 * Runs one of the repository's shell scripts (infra/…); resolves with the last
 * line of its stdout (the scripts print their address there, logs go to stderr).
 */
export function runScript(script: string, env: NodeJS.ProcessEnv, timeoutMs = 120_000): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile('bash', [path.join(repoRoot, script)], { env: { ...process.env, ...env }, timeout: timeoutMs, maxBuffer: 16 << 20 }, (error, stdout, stderr) => {
      if (error !== null) {
        reject(new Error(`${script} failed (${error.message.split('\n')[0] ?? ''}):\n${stderr.split('\n').slice(-80).join('\n')}`));
        return;
      }
      resolve(stdout.trim().split('\n').pop() ?? '');
    });
  });
}
