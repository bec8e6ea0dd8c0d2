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
  /** @default "agentwatch.policies" */
  policies: string;
}

export const defaultTopicNames: TopicNames = {
  events: 'agentwatch.events',
  verdicts: 'agentwatch.verdicts',
  dlq: 'agentwatch.dlq',
  policies: 'agentwatch.policies',
};

/** One version of the policy document, as the API publishes it to the workers. */
export interface PublishedPolicyVersion {
  version: number;
  sha256: string;
  /** The document as JSON text (`include` of packs kept as references). */
  document: string;
  created_at: number;
}

export interface Topics {
  events: Topic<AgentEvent>;
  verdicts: Topic<Verdict>;
  dlq: Topic<DeadLetter>;
  /** Versions of the policy document; every worker process reads all of it (key `policies`, one partition). */
  policies: Topic<PublishedPolicyVersion>;
}

export function buildTopics(partial: Partial<TopicNames> = defaultTopicNames): Topics {
  const names: TopicNames = { ...defaultTopicNames, ...partial };
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
    policies: {
      name: names.policies,
      codec: jsonCodec((value) => {
        const v = value as Partial<PublishedPolicyVersion> | null;
        if (v === null || typeof v !== 'object' || !Number.isInteger(v.version) || typeof v.document !== 'string' || typeof v.sha256 !== 'string') {
          throw new Error('not a policy version record');
        }
        return v as PublishedPolicyVersion;
      }),
    },
  };
}
