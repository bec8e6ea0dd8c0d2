import type { AlertService } from '../alerting/alert-service.js';
import { AlertingError } from '../alerting/errors.js';
import type { AnalyticsStore, DeliveryStore } from '../core/ports.js';
import type { Alert, Verdict } from '../core/records.js';
import { ApiError, type ApiErrorCode } from '../api/errors.js';
import type { AlertCaller, AlertsApi, BulkAckResult, SilenceView } from '../api/routes/alerts.js';

export interface AlertsApiDeps {
  /** The alerting stage when it runs in this process; otherwise changes go to `alerterUrl`. */
  service: AlertService | undefined;
  store: AnalyticsStore;
  /** Writes pending alert versions (so reads see the latest). */
  flushAlerts: () => Promise<void>;
  verdictsByIds: (ids: readonly string[], tenant: string, within: { from: number; to: number }) => Promise<Verdict[]>;
  deliveries: DeliveryStore;
  /** Base URL of the alerter process, for API processes without the alerting stage. */
  alerterUrl: string | undefined;
}

const STATUS_CODES: Record<number, ApiErrorCode> = { 400: 'AW_API_VALIDATION', 401: 'AW_API_UNAUTHORIZED', 403: 'AW_API_FORBIDDEN', 404: 'AW_API_NOT_FOUND', 409: 'AW_API_CONFLICT' };

/**
 * The alert part of the API. The alerter owns the alert lifecycle: where it
 * runs in this process changes go to it; otherwise they are forwarded to the
 * alerter process with the caller's own key, which it checks again.
 */
export function buildAlertsApi(deps: AlertsApiDeps): AlertsApi {
  const { service, store } = deps;

  async function forward<T>(method: string, pathname: string, caller: AlertCaller, body?: unknown): Promise<T> {
    if (deps.alerterUrl === undefined) {
      throw new ApiError('AW_API_UNAVAILABLE', 'alert changes are made by the alerter: set alerter_url (AGENTWATCH_ALERTER_URL) or run the API with the alerter (`agentwatch run`)');
    }
    let res: Response;
    try {
      res = await fetch(new URL(pathname, deps.alerterUrl), {
        method,
        headers: { ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...(caller.authorization === undefined ? {} : { authorization: caller.authorization }) },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
        signal: AbortSignal.timeout(10_000),
      });
    } catch (cause) {
      throw new ApiError('AW_API_UNAVAILABLE', `the alerter at ${deps.alerterUrl} did not answer: ${(cause as Error).message}`);
    }
    const answer = (await res.json()) as T & { code?: string; message?: string; details?: unknown };
    if (res.ok) return answer;
    throw new ApiError(STATUS_CODES[res.status] ?? 'AW_API_UNAVAILABLE', answer.message ?? `the alerter answered ${res.status}`, answer.details ?? null);
  }

  /** Maps the alerting stage's refusals to API errors, telling "no such alert" from "not in a state to change". */
  async function transition(id: string, tenant: string | undefined, change: () => Promise<Alert>): Promise<Alert> {
    try {
      return await change();
    } catch (error) {
      if (!(error instanceof AlertingError) || error.code !== 'AW_ALERTING_NOT_FOUND') throw error;
      await deps.flushAlerts();
      const stored = await store.getAlert(id, tenant);
      // Another tenant's alert is "not found" for a tenant-bound caller.
      if (stored === null) throw new ApiError('AW_API_NOT_FOUND', `no alert ${id}`);
      throw new ApiError('AW_API_CONFLICT', `alert ${id} is ${stored.status}; only open or acknowledged alerts can change`);
    }
  }

  const silenceError = (error: unknown): never => {
    if (error instanceof AlertingError && error.code === 'AW_ALERTING_NOT_FOUND') throw new ApiError('AW_API_NOT_FOUND', error.message);
    if (error instanceof AlertingError && error.code === 'AW_ALERTING_FORBIDDEN') throw new ApiError('AW_API_FORBIDDEN', error.message);
    if (error instanceof AlertingError) throw new ApiError('AW_API_VALIDATION', error.message, error.details ?? null);
    throw error;
  };

  return {
    list: async (filter) => {
      await deps.flushAlerts();
      return store.listAlerts(filter);
    },
    get: async (id, tenant) => {
      await deps.flushAlerts();
      return store.getAlert(id, tenant);
    },
    verdicts: (ids, tenant, within) => deps.verdictsByIds(ids, tenant, within),
    deliveries: async (alertId, tenant) => (await deps.deliveries.deliveriesFor(alertId, tenant)).map(({ alert: _alert, ...rest }) => rest),
    acknowledge: (id, caller) =>
      service === undefined
        ? forward<Alert>('POST', `/v1/alerts/${encodeURIComponent(id)}/ack`, caller, { by: caller.by })
        : transition(id, caller.tenant, () => service.acknowledge(id, caller.by, caller.tenant)),
    resolve: (id, caller) =>
      service === undefined
        ? forward<Alert>('POST', `/v1/alerts/${encodeURIComponent(id)}/resolve`, caller, { by: caller.by })
        : transition(id, caller.tenant, () => service.resolve(id, caller.by, caller.tenant)),
    acknowledgeMany: async (ids, caller) => {
      if (service === undefined) return (await forward<{ results: BulkAckResult[] }>('POST', '/v1/alerts/ack', caller, { ids, by: caller.by })).results;
      return service.acknowledgeMany(ids, caller.by, caller.tenant);
    },
    listSilences: async (query) => {
      if (service === undefined) throw new ApiError('AW_API_UNAVAILABLE', 'silences are kept by the alerter: ask the alerter process');
      return (await service.listSilences(query)) as unknown as SilenceView[];
    },
    createSilence: async (input, caller) => {
      if (service === undefined) return forward<SilenceView>('POST', '/v1/silences', caller, { ...input, created_by: caller.by });
      try {
        return (await service.addSilence({ ...input, tenant: input.tenant ?? null }, caller.by, caller.tenant ?? null)) as unknown as SilenceView;
      } catch (error) {
        return silenceError(error);
      }
    },
    expireSilence: async (id, caller) => {
      if (service === undefined) return forward<SilenceView>('DELETE', `/v1/silences/${encodeURIComponent(id)}`, caller);
      try {
        return (await service.expireSilence(id, caller.by, caller.tenant)) as unknown as SilenceView;
      } catch (error) {
        return silenceError(error);
      }
    },
  };
}
