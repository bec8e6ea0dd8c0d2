import { collectDefaultMetrics, Counter, Gauge, Registry } from 'prom-client';

/** Numbers the pipeline exposes; read at scrape time. */
export interface PipelineGauges {
  ingest: () => { received: number; accepted: number; rejected: number; requests: number };
  worker: () => { events: number; duplicates: number; verdicts: number; batches: number; decisions: Record<string, number>; lastBatchMs: number } | undefined;
  openAlerts: () => number | null;
  policyVersion: () => number | null;
  /** Scheduled exports (alerter processes with schedules); null elsewhere. */
  exports?: () => { failedAttempts: number; failing: readonly ScheduleFailureGauge[] } | null;
}

/** What /metrics shows of a failing export schedule. */
interface ScheduleFailureGauge {
  schedule: string;
  attempts: number;
  retryAt: number;
}

/** The Prometheus registry of one process: Node's default metrics plus pipeline counters. */
export function createMetrics(gauges: PipelineGauges): Registry {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'agentwatch_' });
  const counterOf = (name: string, help: string, read: () => number | undefined) =>
    new Counter({
      name,
      help,
      registers: [registry],
      collect() {
        const value = read();
        this.reset();
        if (value !== undefined) this.inc(value);
      },
    });
  counterOf('agentwatch_ingest_events_received_total', 'Events received over HTTP', () => gauges.ingest().received);
  counterOf('agentwatch_ingest_events_accepted_total', 'Events accepted over HTTP', () => gauges.ingest().accepted);
  counterOf('agentwatch_ingest_events_rejected_total', 'Events dead-lettered at HTTP ingest', () => gauges.ingest().rejected);
  counterOf('agentwatch_worker_events_total', 'Events judged by this worker', () => gauges.worker()?.events);
  counterOf('agentwatch_worker_duplicates_total', 'Duplicate events skipped by this worker', () => gauges.worker()?.duplicates);
  counterOf('agentwatch_worker_verdicts_total', 'Verdicts produced by this worker', () => gauges.worker()?.verdicts);
  new Counter({
    name: 'agentwatch_worker_decisions_total',
    help: 'Effective decisions of judged events',
    labelNames: ['decision'],
    registers: [registry],
    collect() {
      this.reset();
      for (const [decision, n] of Object.entries(gauges.worker()?.decisions ?? {})) this.inc({ decision }, n);
    },
  });
  new Gauge({
    name: 'agentwatch_worker_last_batch_seconds',
    help: 'Time the last batch took to judge',
    registers: [registry],
    collect() {
      this.set((gauges.worker()?.lastBatchMs ?? 0) / 1000);
    },
  });
  new Gauge({
    name: 'agentwatch_alerts_active',
    help: 'Alerts open or acknowledged (alerter processes)',
    registers: [registry],
    collect() {
      this.set(gauges.openAlerts() ?? 0);
    },
  });
  new Gauge({
    name: 'agentwatch_policy_version',
    help: 'Version of the policy document in force in this process',
    registers: [registry],
    collect() {
      this.set(gauges.policyVersion() ?? 0);
    },
  });
  counterOf('agentwatch_export_failures_total', 'Scheduled export attempts that failed (each failed retry counts)', () => gauges.exports?.()?.failedAttempts);
  // One series per failing schedule; none while all are healthy.
  const perFailingSchedule = (name: string, help: string, value: (failure: ScheduleFailureGauge) => number) =>
    new Gauge({
      name,
      help,
      labelNames: ['schedule'],
      registers: [registry],
      collect() {
        this.reset();
        for (const failure of gauges.exports?.()?.failing ?? []) this.set({ schedule: failure.schedule }, value(failure));
      },
    });
  perFailingSchedule('agentwatch_export_schedule_failing_attempts', 'Failed attempts in a row of the oldest pending period of a schedule; no series while the schedule is healthy', (f) => f.attempts);
  perFailingSchedule('agentwatch_export_schedule_retry_timestamp_seconds', 'When a failing schedule is retried next (Unix time); no series while the schedule is healthy', (f) => f.retryAt / 1000);
  return registry;
}
