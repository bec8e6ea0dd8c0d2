import type { AgentEvent } from '../core/event.js';

/** "agent-7 (claude-code)" — how findings name an agent. */
export function agentLabel(event: AgentEvent): string {
  return event.agent.name === undefined ? event.agent.id : `${event.agent.id} (${event.agent.name})`;
}

/** "5 min", "2 h", "90 min" */
export function formatMinutes(minutes: number): string {
  return minutes % 60 === 0 && minutes >= 120 ? `${minutes / 60} h` : `${minutes} min`;
}

/** Rounds for display without trailing noise: 38.0 → "38", 6.37 → "6.4". */
export function formatNumber(n: number): string {
  return Number.isInteger(n) ? String(n) : n.toFixed(1);
}
