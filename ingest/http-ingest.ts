import { randomUUID } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { DEFAULT_MAX_FUTURE_SKEW_MS, type AgentEvent } from '../core/event.js';
import type { DeadLetter } from '../core/records.js';
import { deadLetterRaw, parseEventsBodyYielding } from './parse-events.js';

export interface IngestStats {
  received: number;
  accepted: number;
  rejected: number;
  requests: number;
}

export interface EventIngestDeps {
  /** Hands accepted events to the bus; waits when the bus applies backpressure. */
  accept(events: readonly AgentEvent[]): Promise<void>;
  /** Records rejected input with its reason. */
  deadLetter(rows: readonly DeadLetter[]): void;
  /** Maximum encoded size of one event. @default 65536 */
  maxEventBytes: number;
  /** Maximum request body. @default 4 MiB */
  bodyLimit: number;
  /** How far ahead of the ingest clock an event's time may be. @default 15 minutes */
  maxFutureSkewMs?: number;
  /** Most items one body may hold; a body with more is refused as a whole (413). @default 10000 */
  maxItemsPerRequest?: number;
  stats: IngestStats;
  clock?: () => number;
}

const CONTENT_TYPES = ['application/json', 'application/x-ndjson', 'application/ndjson', 'application/jsonl', 'text/plain'];

/**
 * `POST /v1/events`: a JSON array of AgentEvent v1 objects, or NDJSON. The
 * answer lists every item as accepted or rejected (with the reason); rejected
 * items go to the dead letters. 200 when anything was accepted, 400 when nothing
 * was, 413 for a body over the byte limit (not read, no dead letter) or with
 * more items than `maxItemsPerRequest` (one dead letter; nothing accepted).
 * A body is decoded as UTF-8 whatever charset its content type names, and
 * invalid bytes become U+FFFD (fastify's string parser).
 */
export async function registerEventIngest(app: FastifyInstance, deps: EventIngestDeps): Promise<void> {
  const clock = deps.clock ?? Date.now;
  await app.register(async (scope) => {
    // Read bodies as text in this scope only: NDJSON is not JSON, and per-event size limits need the raw text.
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser(CONTENT_TYPES, { parseAs: 'string', bodyLimit: deps.bodyLimit }, (_req, body, done) => {
      done(null, body);
    });
    scope.addContentTypeParser('*', { parseAs: 'string', bodyLimit: deps.bodyLimit }, (_req, body, done) => {
      done(null, body);
    });

    const schema = {
      summary: 'Ingest events: a JSON array of AgentEvent v1 objects, or NDJSON; each item is accepted or dead-lettered with its reason',
      tags: ['ingest'],
    };
    scope.post('/v1/events', { bodyLimit: deps.bodyLimit, config: { access: 'ingest' }, schema }, async (request, reply) => {
      deps.stats.requests++;
      const body = typeof request.body === 'string' ? request.body : '';
      const source = `http:${request.ip}`;
      const now = clock();
      const parsed = await parseEventsBodyYielding(body, {
        maxEventBytes: deps.maxEventBytes,
        notAfter: now + (deps.maxFutureSkewMs ?? DEFAULT_MAX_FUTURE_SKEW_MS),
        ...(deps.maxItemsPerRequest === undefined ? {} : { maxItems: deps.maxItemsPerRequest }),
      });
      if (parsed.fatal !== undefined) {
        const code = parsed.fatalCode ?? 'AW_INGEST_UNREADABLE_BODY';
        deps.stats.rejected++;
        deps.deadLetter([
          { id: randomUUID(), received_at: now, source, reason: parsed.fatal, raw: deadLetterRaw(body), raw_bytes: Buffer.byteLength(body) },
        ]);
        return reply.code(code === 'AW_INGEST_TOO_MANY_ITEMS' ? 413 : 400).send({ code, message: parsed.fatal, details: null });
      }
      deps.stats.received += parsed.events.length + parsed.rejected.length;
      // A tenant-bound key may only send its own tenant's events.
      const bound = request.principal?.tenant ?? null;
      if (bound !== null) {
        const own = parsed.events.filter((e) => e.event.tenant === bound);
        if (own.length < parsed.events.length) {
          for (const e of parsed.events) {
            if (e.event.tenant === bound) continue;
            const raw = JSON.stringify(e.event);
            parsed.rejected.push({ index: e.index, event_id: e.event.event_id, reason: `tenant ${e.event.tenant} is not the tenant of this API key (${bound})`, raw: deadLetterRaw(raw), rawBytes: Buffer.byteLength(raw) });
          }
          parsed.events = own;
        }
      }
      if (parsed.rejected.length > 0) {
        deps.stats.rejected += parsed.rejected.length;
        deps.deadLetter(
          parsed.rejected.map((r) => ({
            id: randomUUID(),
            received_at: now,
            source,
            reason: r.event_id === undefined ? r.reason : `event ${r.event_id}: ${r.reason}`,
            raw: r.raw,
            raw_bytes: r.rawBytes,
          })),
        );
      }
      if (parsed.events.length > 0) {
        await deps.accept(parsed.events.map((e) => e.event));
        deps.stats.accepted += parsed.events.length;
      }
      const results: { index: number; status: 'accepted' | 'rejected'; event_id?: string; reason?: string }[] = [];
      for (const e of parsed.events) results.push({ index: e.index, status: 'accepted', event_id: e.event.event_id });
      for (const r of parsed.rejected) {
        results.push({ index: r.index, status: 'rejected', ...(r.event_id === undefined ? {} : { event_id: r.event_id }), reason: r.reason });
      }
      results.sort((a, b) => a.index - b.index);
      return reply.code(parsed.events.length > 0 ? 200 : 400).send({
        accepted: parsed.events.length,
        rejected: parsed.rejected.length,
        errors: parsed.rejected.length > 0,
        results,
      });
    });
  });
}
