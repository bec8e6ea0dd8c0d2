import { validateEvent, type AgentEvent, type AgentEventInput } from '../../core/event.js';

let counter = 0;

/** A valid event with overrides; `time` may be an ISO string or epoch ms. */
export function makeEvent(overrides: Partial<AgentEventInput> = {}): AgentEvent {
  const input: AgentEventInput = {
    event_id: `evt-${++counter}`,
    time: Date.UTC(2026, 10, 24, 10, 0, 0),
    agent: { id: 'agent-1', name: 'claude-code' },
    type: 'api_call',
    ...overrides,
  };
  const result = validateEvent(input);
  if (!result.ok) throw new Error(`test event invalid: ${result.reason}`);
  return result.event;
}
