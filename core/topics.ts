import sjson from 'secure-json-parse';
import { DEFAULT_MAX_FUTURE_SKEW_MS, validateEvent, type AgentEvent } from './event.js';
import type { Codec, Topic } from './ports.js';
import type { DeadLetter, Verdict } from './records.js';

/**
 * JSON codec; `decode` validates events so a bad record is rejected with its
 * reason. Records may come from any producer, so `__proto__` and
 * `constructor.prototype` keys are refused rather than parsed into objects.
 */
function jsonCodec<T>(validate?: (value: unknown, meta?: { timestamp?: number }) => T): Codec<T> {
  return {
    encode: (value) => Buffer.from(JSON.stringify(value)),
    decode: (bytes, meta) => {
      let value: unknown;
      try {
        value = sjson.parse(bytes.toString('utf8'), undefined, { protoAction: 'error', constructorAction: 'error' });
      } catch (error) {
        const message = (error as Error).message;
        throw new Error(/prototype|__proto__|constructor/i.test(message) ? `forbidden key: ${message}` : `not valid JSON: ${message}`);
      }
      return validate === undefined ? (value as T) : validate(value, meta);
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

export interface TopicOptions {
  /**
   * How far an event's time may be ahead of its record's bus timestamp; later
   * events are dead-lettered. Measured against the record (not the consumer's
   * clock) so a replay decides the same. @default 15 minutes
   */
  maxFutureSkewMs?: number;
}

export function buildTopics(partial: Partial<TopicNames> = defaultTopicNames, options: TopicOptions = {}): Topics {
  const names: TopicNames = { ...defaultTopicNames, ...partial };
  const skew = options.maxFutureSkewMs ?? DEFAULT_MAX_FUTURE_SKEW_MS;
  return {
    events: {
      name: names.events,
      codec: jsonCodec((value, meta) => {
        const at = meta?.timestamp;
        const result = validateEvent(value, at !== undefined && Number.isFinite(at) && at > 0 ? { notAfter: at + skew, clockName: 'the record timestamp' } : {});
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
