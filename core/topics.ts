import { validateEvent, type AgentEvent } from './event.js';
import type { Codec, Topic } from './ports.js';
import type { DeadLetter, Verdict } from './records.js';

/** JSON codec; `decode` validates events so a bad record is rejected with its reason. */
function jsonCodec<T>(validate?: (value: unknown) => T): Codec<T> {
  return {
    encode: (value) => Buffer.from(JSON.stringify(value)),
    decode: (bytes) => {
      const value: unknown = JSON.parse(bytes.toString('utf8'));
      return validate === undefined ? (value as T) : validate(value);
    },
  };
}

export interface TopicNames {
  /** @default "agentwatch.events" */
  events: string;
  /** @default "agentwatch.verdicts" */
  verdicts: string;
  /** @default "agentwatch.dlq" */
  dlq: string;
}

export const defaultTopicNames: TopicNames = {
  events: 'agentwatch.events',
  verdicts: 'agentwatch.verdicts',
  dlq: 'agentwatch.dlq',
};

export interface Topics {
  events: Topic<AgentEvent>;
  verdicts: Topic<Verdict>;
  dlq: Topic<DeadLetter>;
}

export function buildTopics(names: TopicNames = defaultTopicNames): Topics {
  return {
    events: {
      name: names.events,
      codec: jsonCodec((value) => {
        const result = validateEvent(value);
        if (!result.ok) throw new Error(result.reason);
        return result.event;
      }),
    },
    verdicts: { name: names.verdicts, codec: jsonCodec<Verdict>() },
    dlq: { name: names.dlq, codec: jsonCodec<DeadLetter>() },
  };
}
