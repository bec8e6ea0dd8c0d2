import { spawn, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { stringify } from 'yaml';
import { repoRoot } from './pipeline.js';

/** A running `agentwatch` child process and the address it listens on. */
export interface AgentwatchProcess {
  child: ChildProcess;
  url: string;
  stdout: () => string;
  stderr: () => string;
  /** Resolves with the exit code (or signal name). */
  exited: Promise<number | string>;
}

/** Writes a YAML config file for a child process. */
export function writeConfig(dir: string, name: string, config: Record<string, unknown>): string {
  const file = path.join(dir, `${name}.yaml`);
  writeFileSync(file, stringify(config));
  return file;
}

/**
 * Starts `node bin/agentwatch.js <args>` (the compiled CLI) and waits until it
 * prints the address it listens on. Fails with the process's stderr when it exits first.
 */
export async function startAgentwatch(args: readonly string[], env: Record<string, string> = {}, timeoutMs = 60_000): Promise<AgentwatchProcess> {
  const child = spawn(process.execPath, [path.join(repoRoot, 'bin/agentwatch.js'), ...args], {
    cwd: repoRoot,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout?.on('data', (b: Buffer) => (out += b.toString()));
  child.stderr?.on('data', (b: Buffer) => {
    err += b.toString();
    if (err.length > 2_000_000) err = err.slice(-1_000_000);
  });
  const exited = new Promise<number | string>((resolve) => child.on('exit', (code, signal) => resolve(code ?? signal ?? 'unknown')));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`agentwatch ${args.join(' ')} did not start in time:\n${err.slice(-4000)}`)), timeoutMs);
    const check = () => {
      const m = /running on (http:\/\/[^\s]+)/.exec(out);
      if (m?.[1] !== undefined) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    };
    child.stdout?.on('data', check);
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`agentwatch ${args.join(' ')} exited (${code}) before it started:\n${err.slice(-4000)}`));
    });
  });
  return { child, url, stdout: () => out, stderr: () => err, exited };
}

/** Polls `condition` until it returns true; fails with `what` after the timeout. */
export async function waitFor(what: string, condition: () => Promise<boolean> | boolean, timeoutMs = 120_000, everyMs = 250): Promise<void> {
  const start = Date.now();
  for (;;) {
    if (await condition()) return;
    if (Date.now() - start > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
