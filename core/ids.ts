import { createHash } from 'node:crypto';

/** Verdict id: deterministic from tenant, event id and policy id, so replays produce the same row. */
export function verdictId(tenant: string, eventId: string, policyId: string): string {
  return createHash('sha256').update(`${tenant}\u0000${eventId}\u0000${policyId}`).digest('hex').slice(0, 32);
}

/** Alert id: deterministic from the dedup key and the time the alert opened. */
export function alertId(tenant: string, policyId: string, agentId: string, openedAt: number): string {
  return createHash('sha256')
    .update(`${tenant}\u0000${policyId}\u0000${agentId}\u0000${openedAt}`)
    .digest('hex')
    .slice(0, 32);
}

export function sha256Hex(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}
