/**
 * Worker thread of {@link dryRunIsolated}: judges one event with one policy
 * document, posts the outcome and ends. A candidate document from an analyst
 * may hold expensive patterns; here they can only cost this thread, which the
 * caller terminates at its deadline.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { dryRunEvent } from './dry-run.js';
import { PolicyEngine } from './engine.js';
import { parsePolicyText, PolicyValidationError } from './policy-loader.js';
import { defaultRegistry } from './registry.js';

const { document, event } = workerData as { document: string; event: unknown };
try {
  const engine = new PolicyEngine(parsePolicyText(document, 'policy document', defaultRegistry), defaultRegistry);
  parentPort?.postMessage({ kind: 'done', result: await dryRunEvent(engine, event) });
} catch (error) {
  parentPort?.postMessage({
    kind: 'failed',
    message: (error as Error).message,
    problems: error instanceof PolicyValidationError ? error.problems : null,
  });
}
