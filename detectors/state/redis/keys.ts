import { agentStateKey } from '../../../core/state.js';

/**
 * Every Redis key agentwatch uses is built here.
 *
 * Window state keys are `<prefix><agentStateKey(...)>`: the agent's
 * `{tenant/agent}` hash tag from `core/state.ts` stays inside the key, so a
 * Redis Cluster keeps all of one agent's keys on one slot. The prefix must not
 * hold a `{`, which would become the hash tag instead.
 *
 * The state epoch key (state-loss detection) belongs to no agent and so
 * cannot share a hash tag; it is only ever read or written by a single-key
 * command of its own, which Cluster routes to wherever it lives.
 */
export interface RedisKeys {
  /** The prefix every key starts with ("" by default). */
  readonly prefix: string;
  /** The Redis key of a window state key named by a state operation. */
  windowState(opKey: string): string;
  /** The key of the random epoch that identifies the current Redis dataset. */
  readonly stateEpoch: string;
}

/** The state epoch key, without prefix. */
export const STATE_EPOCH_KEY = 'aw:meta:state-epoch';

/** Whether `prefix` can start agentwatch keys: no hash-tag braces, printable, short. */
export function isValidKeyPrefix(prefix: string): boolean {
  return prefix.length <= 64 && !/[{}\s]/.test(prefix);
}

/** The key builder for one key prefix (tests use a random prefix each, so files run in parallel). */
export function redisKeys(prefix = ''): RedisKeys {
  if (!isValidKeyPrefix(prefix)) throw new RangeError(`invalid Redis key prefix ${JSON.stringify(prefix)}: at most 64 characters, no braces or spaces`);
  return {
    prefix,
    windowState: prefix === '' ? (opKey) => opKey : (opKey) => prefix + opKey,
    stateEpoch: prefix + STATE_EPOCH_KEY,
  };
}

/** The Redis key of one agent's window state for a policy (the key a detector puts in its op, prefixed). */
export function agentWindowKey(keys: RedisKeys, tenant: string, agentId: string, policyId: string, part: string): string {
  return keys.windowState(agentStateKey(tenant, agentId, policyId, part));
}
