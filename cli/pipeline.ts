import { randomUUID } from 'node:crypto';
import { mkdirSync, readFileSync, watchFile, unwatchFile } from 'node:fs';
import { hostname } from 'node:os';
import path from 'node:path';
import type { Logger } from 'pino';
import { partitionKey, validateEvent, type AgentEvent } from '../core/event.js';
import type { AnalyticsStore, EventBus, StateStore, Subscription } from '../core/ports.js';
import type { Alert, AuditRecord, DeadLetter, Verdict } from '../core/records.js';
import { buildTopics, type PublishedPolicyVersion, type Topics } from '../core/topics.js';
import { AgentwatchError } from '../core/errors.js';
import { AlertService } from '../alerting/alert-service.js';
import { LogAlertSink } from '../alerting/sinks/log-sink.js';
import { DeliveryService } from '../alerting/delivery.js';
import { ClickHouseDeliveryStore } from '../storage/clickhouse/delivery-store.js';
import { buildApp, type ApiApp } from '../api/app.js';
import { ApiKeyRing, resolveApiKeys } from '../api/auth.js';
import { ApiError } from '../api/errors.js';
import { createMetrics } from '../api/metrics.js';
import type { AgentsApi } from '../api/routes/agents.js';
import type { DataApi } from '../api/routes/data.js';
import type { PoliciesApi } from '../api/routes/policies.js';
import { pendingApprovals, reviewApproval } from '../detectors/approvals.js';
import { DryRunFailed, dryRunIsolated } from '../detectors/dry-run.js';
import { PolicyEngine } from '../detectors/engine.js';
import { PolicyAdmin, PolicyAdminError } from '../detectors/policy-admin.js';
import { loadPolicyBundle, parsePolicyText, type LoadedPolicies } from '../detectors/policy-loader.js';
import { defaultRegistry } from '../detectors/registry.js';
import { MemoryStateStore } from '../detectors/state/memory/memory-store.js';
import { DetectionWorker } from '../detectors/worker.js';
import { InProcessBus } from '../ingest/bus/in-process-bus.js';
import { KafkaBus } from '../ingest/bus/kafka/kafka-bus.js';
import { RedisStateStore } from '../detectors/state/redis/redis-store.js';
import { registerEventIngest, type IngestStats } from '../ingest/http-ingest.js';
import { BatchWriter } from '../storage/batch-writer.js';
import { ClickHouseAnalyticsStore } from '../storage/clickhouse/analytics-store.js';
import { createClickHouseClient, type ClickHouseClient } from '../storage/clickhouse/client.js';
import { applyMigrations } from '../storage/clickhouse/migrations.js';
import { ClickHousePolicyVersionStore } from '../storage/clickhouse/policy-versions.js';
import { ClickHouseSilenceStore } from '../storage/clickhouse/silence-store.js';
import { applyRetention, deadLetterSanitizer } from '../storage/clickhouse/retention.js';
import { compileDataProtection, DataProtectionConfigSchema, redactText } from '../detectors/types/data-protection.js';
import { QueryInvalid, QueryLimitExceeded, QueryRefused, runReadOnlyQuery } from '../storage/clickhouse/read-only-query.js';
import { getAgent, listAgents, searchAudit, searchVerdicts, verdictsByIds } from '../storage/clickhouse/search.js';
import { buildAlertsApi } from './alerts-api.js';
import { ClickHouseExportSource } from '../export/clickhouse/source.js';
import { resolveExportConfig } from '../export/config.js';
import { createExportScheduler } from '../export/service.js';
import type { Config } from './config.js';
import type { SummarySnapshot } from './summary.js';

/** The stages a process can run; `agentwatch run` runs all of them. */
export const Stages = ['ingest', 'worker', 'alerter', 'api'] as const;
export type Stage = (typeof Stages)[number];

/** What `agentwatch run` (or one stage process) started. */
export interface EmbeddedPipeline {
  app: ApiApp;
  bus: EventBus;
  state: StateStore;
  topics: Topics;
  store: AnalyticsStore;
  /** The ClickHouse client (embedded engine or server) behind the store. */
  clickhouse: ClickHouseClient;
  worker: DetectionWorker | undefined;
  alerts: AlertService | undefined;
  ingestStats: IngestStats;
  /** Validates and publishes events straight onto the bus (used by the demo generator). */
  publishEvents(inputs: readonly unknown[]): Promise<{ accepted: number; rejected: number }>;
  /** Resolves when everything published so far is judged and stored. */
  settle(): Promise<void>;
  engine(): PolicyEngine;
  /** The policy document's control plane (processes with the api stage). */
  policyAdmin: PolicyAdmin | undefined;
  /** Store version of the policy document this process judges with; null while it runs on the file alone. */
  policyVersion(): number | null;
  /** Re-reads the policy file; an invalid file is rejected and the running policy stays in force. */
  reloadPolicies(): Promise<boolean>;
  /**
   * The admin key created at this first start (no keys configured), to show
   * the operator once; never logged.
   */
  createdAdminKey: { key: string; file: string } | undefined;
  snapshot(): SummarySnapshot;
  /** Listening address once `listen` resolved. */
  listen(): Promise<string>;
  stop(): Promise<void>;
}

export interface StartOptions {
  logger: Logger;
  /** Stages to run in this process. @default every stage */
  stages?: readonly Stage[];
  /** Watch the policy file and reload on change. @default true */
  watchPolicies?: boolean;
  clock?: () => number;
}

/** The ClickHouse client a config names: the server at `clickhouse.url`, else the embedded engine in `data_dir`. */
export function openClickHouse(config: Config): ClickHouseClient {
  mkdirSync(config.data_dir, { recursive: true });
  return createClickHouseClient({
    url: config.clickhouse.url,
    username: config.clickhouse.username,
    password: config.clickhouse.password,
    database: config.clickhouse.database,
    dataDir: path.resolve(config.data_dir),
  });
}

/**
 * The composition root of the embedded deployment: the only place that wires
 * adapters (in-process bus, memory state, ClickHouse) to the stages.
 */
export async function startEmbeddedPipeline(config: Config, options: StartOptions): Promise<EmbeddedPipeline> {
  const { logger } = options;
  const clock = options.clock ?? Date.now;
  const log = (module: string) => logger.child({ module });
  const stages = new Set<Stage>(options.stages ?? Stages);
  const useKafka = config.kafka.brokers.length > 0;
  if (!useKafka && stages.size < Stages.length) {
    throw new AgentwatchError(
      'AW_CORE_INVALID_CONFIG',
      `running only ${[...stages].join(', ')} needs Kafka between the stages: set KAFKA_BROKERS (or kafka.brokers), or use \`agentwatch run\``,
    );
  }

  // Policies first: a bad document stops start-up before anything is opened.
  const policyPath = path.resolve(config.policies);
  const initialPolicies = loadPolicyBundle(policyPath);
  let engine = new PolicyEngine(initialPolicies.document, defaultRegistry);
  /** The document and the packs it includes: a change to any of them reloads. */
  let policyFiles: readonly string[] = initialPolicies.files;
  log('detectors').info({ policies: engine.policies.length, mode: engine.mode, version: engine.version, file: policyPath }, 'policies loaded');
  /** The store version in force and its hash; null until one arrived (the file alone). */
  let applied: { version: number; sha256: string } | null = null;

  // API keys: configured hashes, or the ones agentwatch created in the data directory.
  const resolvedKeys = resolveApiKeys(config.api.keys, path.resolve(config.data_dir));
  const keyRing = new ApiKeyRing(resolvedKeys.keys);
  if (resolvedKeys.createdAdminKey !== undefined) {
    log('api').warn({ file: resolvedKeys.createdAdminKey.file }, 'no API keys configured: created an admin key (only its hash is kept); it is in the file named here, readable by this user only');
  } else {
    log('api').info({ keys: keyRing.size, source: resolvedKeys.source }, 'API keys loaded');
  }

  const client = openClickHouse(config);
  await applyMigrations(client, config.clickhouse.database);
  const retention = await applyRetention(client, config.clickhouse.database, config.retention);
  log('storage').info({ retention: retention.map((c) => ({ table: c.table, class: c.dataClass, ttl: c.ttl, outcome: c.outcome })) }, 'retention applied');
  // Stored payloads are redacted with data_protection's built-in detectors.
  const redaction = compileDataProtection(DataProtectionConfigSchema.parse({}));
  const privacy = { ...config.privacy, redactText: (text: string) => redactText(text, redaction) };
  const store = new ClickHouseAnalyticsStore(client, config.clickhouse.database, { privacy });
  const sanitizeDeadLetter = deadLetterSanitizer(privacy);
  log('storage').info({ engine: config.clickhouse.url === undefined ? 'embedded chdb' : 'server', database: config.clickhouse.database }, 'analytics store ready');

  const storageLog = log('storage');
  const writer = <T>(name: string, insert: (rows: readonly T[]) => Promise<void>, coalesceKey?: (row: T) => string) =>
    new BatchWriter<T>({
      name,
      insert,
      maxRows: config.storage.batch_rows,
      maxDelayMs: config.storage.batch_delay_ms,
      ...(coalesceKey === undefined ? {} : { coalesceKey }),
      onError: (error: unknown, attempt: number, info) =>
        info.retryInMs === null
          ? storageLog.error({ err: error, table: name, attempt, rows: info.rows.length }, 'insert failed and cannot be retried here; the batch goes back to its consumer, which redelivers it')
          : storageLog.error({ err: error, table: name, attempt, retry_in_ms: info.retryInMs }, 'insert failed; retrying'),
    });
  const eventsWriter = writer<AgentEvent>('events', (rows) => store.insertEvents(rows));
  const verdictsWriter = writer<Verdict>('verdicts', (rows) => store.insertVerdicts(rows));
  const auditWriter = writer<AuditRecord>('audit_log', (rows) => store.insertAudit(rows));
  const deadLetterWriter = writer<DeadLetter>('dead_letters', (rows) => store.insertDeadLetters(rows.map(sanitizeDeadLetter)));
  const alertsWriter = writer<Alert>('alerts', (rows) => store.upsertAlerts(rows), (a) => a.alert_id);
  const writers = [eventsWriter, verdictsWriter, auditWriter, deadLetterWriter, alertsWriter];

  const topics = buildTopics(config.kafka.topics, { maxFutureSkewMs: config.ingest.max_future_skew_ms });
  const busLog = log('bus');
  const bus: EventBus = useKafka
    ? new KafkaBus({
        brokers: config.kafka.brokers,
        clientId: config.kafka.client_id,
        partitions: config.bus.partitions,
        replicationFactor: config.kafka.replication_factor,
        groupIdPrefix: config.kafka.group_prefix,
        sessionTimeoutMs: config.kafka.session_timeout_ms,
        heartbeatIntervalMs: Math.min(3_000, Math.floor(config.kafka.session_timeout_ms / 3)),
        deadLetterTopic: topics.dlq,
        logger,
      })
    : new InProcessBus({
        partitions: config.bus.partitions,
        onHandlerError: (error, topic, partition) => busLog.error({ err: error, topic, partition }, 'batch handler failed; redelivering'),
      });
  const stateLog = log('state');
  // The worker keeps window state; the api stage reads and sets approvals in it. Other processes need no Redis connection.
  const memoryState = config.redis.url === undefined || !(stages.has('worker') || stages.has('api')) ? new MemoryStateStore() : undefined;
  const state: StateStore =
    memoryState ??
    new RedisStateStore({
      redis: config.redis.url as string,
      keyPrefix: config.redis.key_prefix,
      idleTtlMs: config.redis.idle_ttl_ms,
      logger: stateLog,
    });
  const sweep = setInterval(() => memoryState?.sweep(), 60_000);
  sweep.unref();
  log('bus').info({ bus: useKafka ? `kafka ${config.kafka.brokers.join(',')}` : 'in-process', state: memoryState === undefined ? 'redis' : 'memory', stages: [...stages] }, 'adapters');

  const worker = !stages.has('worker') ? undefined : new DetectionWorker({
    bus,
    topics,
    state,
    engine: () => engine,
    logger: log('detectors'),
    loadAuditHeads: (partition, beforeSeq, tenants) => store.auditChainHeads(partition, beforeSeq, tenants),
    sinks: {
      events: (rows) => eventsWriter.add(rows),
      verdicts: (rows) => verdictsWriter.add(rows),
      audit: (rows) => auditWriter.add(rows),
      durable: async () => {
        await Promise.all([eventsWriter.durable(), verdictsWriter.durable(), auditWriter.durable()]);
      },
    },
    clock,
  });
  const deliveryStore = new ClickHouseDeliveryStore(client, config.clickhouse.database);
  const activeAlerts = stages.has('alerter') ? await store.loadActiveAlerts() : [];
  const delivery = !stages.has('alerter')
    ? undefined
    : new DeliveryService({ store: deliveryStore, config: config.delivery, logger: log('delivery'), activeAlerts, clock });
  const alerts = !stages.has('alerter') ? undefined : new AlertService({
    bus,
    topics,
    activeAlerts,
    persist: (rows) => alertsWriter.add(rows),
    flush: () => alertsWriter.flush(),
    durable: () => alertsWriter.durable(),
    sinks: [new LogAlertSink(log('alerting')), ...(delivery === undefined ? [] : [delivery])],
    logger: log('alerting'),
    silences: new ClickHouseSilenceStore(client, config.clickhouse.database),
    storedAlerts: async (ids) => {
      await alertsWriter.flush();
      return (await store.listAlerts({ alert_ids: [...ids], limit: ids.length })).items;
    },
    clock,
  });
  // With Kafka, dead letters travel on their topic; the worker stage stores them.
  let deadLetterSubscription: Subscription | undefined;
  if (useKafka && stages.has('worker')) {
    deadLetterSubscription = await bus.subscribe(topics.dlq, { group: 'agentwatch-dead-letters', maxBatch: 5000 }, async (batch) => {
      deadLetterWriter.add(batch.records.map((r) => r.value));
      await deadLetterWriter.durable();
    });
  }
  const recordDeadLetters = (rows: readonly DeadLetter[]): void => {
    if (!useKafka) {
      deadLetterWriter.add(rows);
      return;
    }
    bus.publish(topics.dlq, rows.map((value) => ({ key: value.source, value }))).catch((error: unknown) => {
      // The rows are not lost from view: they are in the log with their reasons.
      busLog.error({ err: error, dead_letters: rows.map((r) => ({ source: r.source, reason: r.reason })) }, 'could not publish dead letters');
    });
  };

  const ingestStats: IngestStats = { received: 0, accepted: 0, rejected: 0, requests: 0 };
  const publish = (events: readonly AgentEvent[]) =>
    bus.publish(
      topics.events,
      events.map((e) => ({ key: partitionKey(e.tenant, e.agent.id), value: e })),
    );

  // ---------------------------------------------------------------- policy control plane
  const detectorsLog = log('detectors');
  const engineCache = new Map<string, PolicyEngine>();
  /** An engine for a published version (parsed once per hash). */
  function engineOf(version: PublishedPolicyVersion): PolicyEngine {
    let cached = engineCache.get(version.sha256);
    if (cached === undefined) {
      cached = new PolicyEngine(parsePolicyText(version.document, `policy version ${version.version}`, defaultRegistry), defaultRegistry);
      engineCache.clear();
      engineCache.set(version.sha256, cached);
    }
    return cached;
  }
  function applyPolicyVersion(version: PublishedPolicyVersion): void {
    if (applied !== null && applied.sha256 === version.sha256) return;
    try {
      engine = engineOf(version);
      applied = { version: version.version, sha256: version.sha256 };
      detectorsLog.info({ version: version.version, policies: engine.policies.length, mode: engine.mode, hash: engine.version }, 'policy version in force');
    } catch (error) {
      detectorsLog.error({ err: error, version: version.version }, `policy version rejected; the running policy (${applied?.version ?? 'file'}) stays in force`);
    }
  }
  const policyAdmin = !stages.has('api')
    ? undefined
    : new PolicyAdmin({
        store: new ClickHousePolicyVersionStore(client, config.clickhouse.database),
        registry: defaultRegistry,
        publish: async (version) => {
          // This process judges with it at once; other worker processes read it from the topic.
          if (stages.has('worker')) applyPolicyVersion(version);
          await bus.publish(topics.policies, [{ key: 'policies', value: version }]);
        },
        logger: detectorsLog,
        clock,
      });
  const readPolicyFile = (loaded: LoadedPolicies) => ({ path: policyPath, text: readFileSync(policyPath, 'utf8'), loaded });
  if (policyAdmin !== undefined) await policyAdmin.init(readPolicyFile(initialPolicies));
  // Republished hourly, so the topic holds the version in force however short its retention; workers ignore a version they have.
  const republish = setInterval(() => {
    policyAdmin?.publishCurrent().catch((error: unknown) => log('detectors').error({ err: error }, 'republishing the policy version failed; retrying in an hour'));
  }, 3_600_000);
  republish.unref();
  // Every worker process reads every version (its own group, from the start of the topic); the last one wins.
  let policySubscription: Subscription | undefined;
  if (stages.has('worker')) {
    policySubscription = await bus.subscribe(
      topics.policies,
      { group: `agentwatch-policies-${hostname()}-${process.pid}-${randomUUID().slice(0, 8)}`, maxBatch: 100 },
      async (batch) => {
        const last = batch.records.at(-1);
        if (last !== undefined) applyPolicyVersion(last.value);
      },
    );
  }
  /** The engine for API reads (dry-run, approvals): the worker's, or one built from the control plane's document. */
  function currentEngine(): PolicyEngine {
    if (stages.has('worker') || policyAdmin === undefined) return engine;
    const record = policyAdmin.version;
    return engineOf({ version: record.version, sha256: record.sha256, document: record.document, created_at: record.created_at });
  }

  await worker?.start();
  await delivery?.start();
  await alerts?.start();
  // Scheduled compliance exports run with the alerter (`agentwatch run`, `agentwatch alerter`); missed periods are caught up now.
  const exportScheduler = stages.has('alerter')
    ? createExportScheduler(resolveExportConfig(config), { source: new ClickHouseExportSource(client, config.clickhouse.database), logger: log('export') })
    : null;
  exportScheduler?.start();
  // ---------------------------------------------------------------- API
  let ready = false;
  const db = config.clickhouse.database;
  const flushVerdicts = () => (stages.has('worker') ? verdictsWriter.flush() : Promise.resolve());
  const policiesApi: PoliciesApi | undefined =
    policyAdmin === undefined
      ? undefined
      : {
          admin: policyAdmin,
          async dryRun(event, candidate) {
            const eventBytes = Buffer.byteLength(JSON.stringify(event ?? null));
            if (eventBytes > config.ingest.max_event_bytes) {
              throw new ApiError('AW_API_VALIDATION', `the event is ${eventBytes} bytes; events are at most ${config.ingest.max_event_bytes} (ingest.max_event_bytes)`);
            }
            const document = candidate === undefined ? policyAdmin.version.document : JSON.stringify(policyAdmin.parse(candidate, 'candidate document').source);
            let result: Awaited<ReturnType<typeof dryRunIsolated>>;
            try {
              // In a worker thread with a deadline: a candidate's patterns must not be able to stall the pipeline.
              result = await dryRunIsolated(document, event, { timeoutMs: 5_000 });
            } catch (error) {
              if (!(error instanceof DryRunFailed)) throw error;
              if (error.code === 'timeout') throw new ApiError('AW_API_DRY_RUN_LIMIT', error.message);
              if (error.code === 'busy') throw new ApiError('AW_API_BUSY', error.message);
              if (error.code === 'invalid_document') throw new ApiError('AW_API_POLICY_INVALID', error.message, error.problems);
              throw error;
            }
            if (!result.ok) throw new ApiError('AW_API_VALIDATION', `invalid event: ${result.reason}`, [{ path: 'body.event', message: result.reason }]);
            return {
              ...result.outcome,
              policy_source: candidate === undefined ? { kind: 'running', version: policyAdmin.version.version } : { kind: 'candidate' },
            };
          },
        };
  let queriesRunning = 0;
  const dataApi: DataApi = {
    verdicts: async (q) => {
      await flushVerdicts();
      return searchVerdicts(client, db, q);
    },
    audit: async (q) => {
      if (stages.has('worker')) await auditWriter.flush();
      return searchAudit(client, db, q);
    },
    query: async (sql, params, tenant) => {
      // The analytics engine serves ingestion too: a few analyst queries at a time.
      if (queriesRunning >= 2) throw new ApiError('AW_API_BUSY', 'two queries are running already; retry when one has finished');
      queriesRunning++;
      try {
        return await runReadOnlyQuery(client, db, {
          sql,
          params,
          ...(tenant === undefined ? {} : { tenant }),
          maxRows: config.api.query.max_rows,
          maxSeconds: config.api.query.max_seconds,
        });
      } catch (error) {
        if (error instanceof QueryRefused) throw new ApiError('AW_API_QUERY_REFUSED', error.message, { reason: error.reason });
        if (error instanceof QueryInvalid) throw new ApiError('AW_API_QUERY_INVALID', error.message, { clickhouse_code: error.clickhouseCode, clickhouse_type: error.clickhouseType ?? null });
        if (error instanceof QueryLimitExceeded) throw new ApiError('AW_API_QUERY_LIMIT', error.message, { limit: error.limit });
        throw error;
      } finally {
        queriesRunning--;
      }
    },
  };
  const agentsApi: AgentsApi = {
    list: async (q) => {
      await flushVerdicts();
      return listAgents(client, db, { ...q, now: clock() });
    },
    get: (tenant, agentId) => getAgent(client, db, tenant, agentId, clock()),
    capabilityHistory: (filter) => store.capabilityHistory(filter),
    pending: (tenant, agentId) => pendingApprovals(currentEngine(), state, tenant, agentId),
    review: async (request) => {
      const outcome = await reviewApproval(currentEngine(), state, request, clock());
      if (!outcome.ok) {
        throw new ApiError(outcome.code === 'unknown_policy' ? 'AW_API_NOT_FOUND' : 'AW_API_CONFLICT', outcome.message);
      }
      log('api').info({ tenant: request.tenant, agent_id: request.agent_id, policy_id: request.policy_id, action: request.action, by: request.by }, 'pending change reviewed');
      return { policy_id: request.policy_id, action: request.action, reviewed_by: request.by, ...outcome.result };
    },
  };
  const metrics = createMetrics({
    ingest: () => ingestStats,
    worker: () => worker?.stats,
    openAlerts: () => alerts?.openAlerts() ?? null,
    policyVersion: () => applied?.version ?? policyAdmin?.version.version ?? null,
    exports: () => (exportScheduler === null ? null : { failedAttempts: exportScheduler.failedAttempts(), failing: exportScheduler.failures() }),
  });
  const app = await buildApp({
    logger: log('api'),
    keys: keyRing,
    allowUnauthenticatedIngest: config.api.allow_unauthenticated_ingest,
    bodyLimit: config.ingest.body_limit,
    rateLimit: config.api.rate_limit,
    metrics,
    health: () => ({
      stages: [...stages],
      events: worker?.stats.events ?? 0,
      open_alerts: alerts?.openAlerts() ?? null,
      policy_version: applied?.version ?? policyAdmin?.version.version ?? null,
      policy_hash: engine.version,
      state_lost_at: state instanceof RedisStateStore ? state.stateLostAt : null,
    }),
    ready: () => ready,
    alerts: buildAlertsApi({
      service: alerts,
      store,
      flushAlerts: () => alertsWriter.flush(),
      verdictsByIds: async (ids, tenant, within) => {
        await flushVerdicts();
        return verdictsByIds(client, db, ids, tenant, within);
      },
      alerterUrl: config.alerter_url,
      deliveries: deliveryStore,
    }),
    ...(policiesApi === undefined ? {} : { policies: policiesApi }),
    data: dataApi,
    agents: agentsApi,
  });
  if (stages.has('ingest')) await registerEventIngest(app, {
    accept: publish,
    deadLetter: recordDeadLetters,
    maxEventBytes: config.ingest.max_event_bytes,
    bodyLimit: config.ingest.body_limit,
    maxItemsPerRequest: config.ingest.max_items_per_request,
    maxFutureSkewMs: config.ingest.max_future_skew_ms,
    stats: ingestStats,
    clock,
  });

  /**
   * Takes in the policy file: with the api stage it becomes the next stored
   * version (published to every worker); a worker-only process uses it only
   * until the first version arrives from the control plane.
   */
  async function reloadPolicies(): Promise<boolean> {
    let loaded: LoadedPolicies;
    try {
      loaded = loadPolicyBundle(policyPath);
      watchPolicyFiles(loaded.files);
    } catch (error) {
      detectorsLog.error({ err: error, file: policyPath }, `policy file rejected; the running policy (${applied?.version ?? engine.version}) stays in force`);
      return false;
    }
    if (policyAdmin !== undefined) {
      try {
        await policyAdmin.fromFile(readPolicyFile(loaded));
        return true;
      } catch (error) {
        const problems = error instanceof PolicyAdminError ? error.problems : undefined;
        detectorsLog.error({ err: error, file: policyPath, problems }, 'policy file could not be stored as a new version; the running policy stays in force');
        return false;
      }
    }
    if (applied !== null) {
      detectorsLog.warn({ file: policyPath, version: applied.version }, 'policy file changed, but this worker follows the versions the API publishes: change policies through the API process');
      return false;
    }
    const next = new PolicyEngine(loaded.document, defaultRegistry);
    if (next.version !== engine.version) {
      engine = next;
      detectorsLog.info({ version: next.version, policies: next.policies.length, mode: next.mode }, 'policies reloaded');
    }
    return true;
  }
  const watching = options.watchPolicies ?? true;
  const onPolicyFileChange = (): void => {
    void reloadPolicies();
  };
  /**
   * Watches exactly `files` (the document first, then its includes). A rejected
   * reload keeps the previous set, which always contains the document itself,
   * so fixing the document (or a pack it already included) reloads again.
   */
  function watchPolicyFiles(files: readonly string[]): void {
    if (!watching) return;
    for (const file of policyFiles) if (!files.includes(file)) unwatchFile(file, onPolicyFileChange);
    for (const file of files) if (!policyFiles.includes(file)) watchFile(file, { interval: 1000 }, onPolicyFileChange);
    policyFiles = files;
  }
  if (watching) for (const file of policyFiles) watchFile(file, { interval: 1000 }, onPolicyFileChange);

  async function publishEvents(inputs: readonly unknown[]) {
    const good: AgentEvent[] = [];
    const bad: DeadLetter[] = [];
    for (const input of inputs) {
      const r = validateEvent(input);
      if (r.ok) good.push(r.event);
      else bad.push({ id: crypto.randomUUID(), received_at: clock(), source: 'demo', reason: r.reason, raw: JSON.stringify(input).slice(0, 4096), raw_bytes: 0 });
    }
    if (bad.length > 0) recordDeadLetters(bad);
    if (good.length > 0) await publish(good);
    return { accepted: good.length, rejected: bad.length };
  }

  let stopped = false;
  return {
    app,
    bus,
    topics,
    store,
    clickhouse: client,
    worker,
    alerts,
    ingestStats,
    publishEvents,
    state,
    engine: () => engine,
    policyAdmin,
    policyVersion: () => applied?.version ?? null,
    reloadPolicies,
    createdAdminKey: resolvedKeys.createdAdminKey,
    async settle() {
      if (bus instanceof InProcessBus) await bus.drained();
      await Promise.all(writers.map((w) => w.flush()));
    },
    snapshot: () => ({
      events: worker?.stats.events ?? 0,
      verdicts: worker?.stats.verdicts ?? 0,
      openAlerts: alerts?.openAlerts() ?? 0,
      deadLetters: ingestStats.rejected,
      decisions: { ...(worker?.stats.decisions ?? {}) },
    }),
    async listen() {
      const address = await app.listen({ port: config.port, host: config.host });
      ready = true;
      return address;
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      ready = false;
      if (watching) for (const file of policyFiles) unwatchFile(file, onPolicyFileChange);
      clearInterval(sweep);
      clearInterval(republish);
      await app.close();
      // Finish what is in flight: judge queued events, then make every row durable.
      if (bus instanceof InProcessBus) await bus.drained();
      await worker?.stop();
      await policySubscription?.stop();
      await alerts?.stop();
      await delivery?.stop();
      await exportScheduler?.stop();
      await deadLetterSubscription?.stop();
      await bus.close();
      for (const w of writers) await w.close();
      await store.close();
      await state.close();
    },
  };
}
