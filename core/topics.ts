import sjson from 'secure-json-parse';
import { validateEvent, type AgentEvent } from './event.js';
import type { Codec, Topic } from './ports.js';
import type { DeadLetter, Verdict } from './records.js';

/**
 * JSON codec; `decode` validates events so a bad record is rejected with its
 * reason. Records may come from any producer, so `__proto__` and
 * `constructor.prototype` keys are refused rather than parsed into objects.
 */
function jsonCodec<T>(validate?: (value: unknown) => T): Codec<T> {
  return {
    encode: (value) => Buffer.from(JSON.stringify(value)),
    decode: (bytes) => {
      let value: unknown;
      try {
        value = sjson.parse(bytes.toString('utf8'), undefined, { protoAction: 'error', constructorAction: 'error' });
      } catch (error) {
        const message = (error as Error).message;
        throw new Error(/prototype|__proto__|constructor/i.test(message) ? `forbidden key: ${message}` : `not valid JSON: ${message}`);
      }
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
