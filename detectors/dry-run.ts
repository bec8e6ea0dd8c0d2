import { extname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { validateEvent } from '../core/event.js';
import type { ValidationProblem } from '../core/validation.js';
import { MemoryStateStore } from './state/memory/memory-store.js';
import { evaluateBatch, type PolicyEngine } from './engine.js';

/** What one event would get, judged on fresh state. */
export interface DryRunOutcome {
  decision: string;
  would_decide: string;
  mode: string;
  evaluated: string[];
  matched: {
    policy_id: string;
    policy_type: string;
    severity: string;
    action: string;
    decision: string;
    would_decide: string;
    reason: string;
    evidence: unknown;
    exception: string;
  }[];
  state: 'fresh';
}

export type DryRunInput = { ok: true; outcome: DryRunOutcome } | { ok: false; reason: string };

/**
 * Judges one event with `engine` on a fresh, throw-away state store: nothing
 * the pipeline keeps (windows, approvals, audit chain, verdicts) is read or
 * changed. Stateful policies therefore judge the event as the agent's first.
 */
export async function dryRunEvent(engine: PolicyEngine, input: unknown): Promise<DryRunInput> {
  const validated = validateEvent(input);
  if (!validated.ok) return { ok: false, reason: validated.reason };
  const event = validated.event;
  const state = new MemoryStateStore();
  try {
    const outcome = await evaluateBatch(engine, state, [event]);
    const first = outcome.outcomes[0];
    const evaluated: string[] = [];
    const applicable: Parameters<PolicyEngine['applicable']>[1] = [];
    engine.applicable(event, applicable);
    for (const p of applicable) evaluated.push(p.policy.id);
    return {
      ok: true,
      outcome: {
        decision: first?.decision ?? 'allow',
        would_decide: first?.would_decide ?? 'allow',
        mode: engine.mode,
        evaluated,
        matched: outcome.verdicts.map((v) => ({
          policy_id: v.policy_id,
          policy_type: v.policy_type,
          severity: v.severity,
          action: v.action,
          decision: v.decision,
          would_decide: v.would_decide,
          reason: v.reason,
          evidence: v.evidence,
          exception: v.exception,
        })),
        state: 'fresh',
      },
    };
  } finally {
    await state.close();
  }
}

/** Why an isolated dry-run gave no outcome. */
export class DryRunFailed extends Error {
  constructor(
    readonly code: 'timeout' | 'invalid_document' | 'busy' | 'crashed',
    message: string,
    readonly problems: ValidationProblem[] | null = null,
  ) {
    super(message);
    this.name = 'DryRunFailed';
  }
}

/** Isolated dry-runs in flight; more are refused rather than queued without bound. */
let running = 0;

/**
 * {@link dryRunEvent} in a worker thread with a deadline and a heap limit:
 * the document (JSON text of a policy document; only `pack:` includes) may
 * come from an analyst and hold costly patterns, and the event may be large.
 * At the deadline the thread is terminated; the process never blocks.
 */
export function dryRunIsolated(document: string, event: unknown, options: { timeoutMs: number; maxConcurrent?: number }): Promise<DryRunInput> {
  if (running >= (options.maxConcurrent ?? 2)) {
    return Promise.reject(new DryRunFailed('busy', 'too many dry-runs in progress; retry shortly'));
  }
  running++;
  // Beside this module: dry-run-worker.js once built, .ts under the test runner (loaded through tsx).
  const self = fileURLToPath(import.meta.url);
  const ext = extname(self);
  const entry = new URL(`./dry-run-worker${ext}`, import.meta.url);
  const workerOptions = { workerData: { document, event }, resourceLimits: { maxOldGenerationSizeMb: 256 }, stdout: false, stderr: false };
  // Under the test runner the sources are TypeScript: the thread registers tsx's loader before importing them.
  const worker =
    ext === '.ts'
      ? new Worker(`import('tsx/esm/api').then((tsx) => { tsx.register(); return import(${JSON.stringify(entry.href)}); })`, { ...workerOptions, eval: true })
      : new Worker(entry, workerOptions);

  return new Promise<DryRunInput>((resolve, reject) => {
    let settled = false;
    const finish = (action: () => void) => {
      if (settled) return;
      settled = true;
      running--;
      clearTimeout(timer);
      action();
      void worker.terminate();
    };
    const timer = setTimeout(
      () => finish(() => reject(new DryRunFailed('timeout', `the dry-run did not finish within ${options.timeoutMs} ms (costly patterns or a large event); it was stopped`))),
      options.timeoutMs,
    );
    worker.once('message', (message: { kind: 'done'; result: DryRunInput } | { kind: 'failed'; message: string; problems: ValidationProblem[] | null }) => {
      if (message.kind === 'done') finish(() => resolve(message.result));
      else finish(() => reject(new DryRunFailed(message.problems === null ? 'crashed' : 'invalid_document', message.message, message.problems)));
    });
    worker.once('error', (error) => finish(() => reject(new DryRunFailed('crashed', `the dry-run failed: ${error.message}`))));
    worker.once('exit', (code) => finish(() => reject(new DryRunFailed('crashed', `the dry-run ended without an answer (exit ${code})`))));
  });
}
