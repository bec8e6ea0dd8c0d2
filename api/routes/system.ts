import type { FastifyInstance } from 'fastify';
import type { Registry } from 'prom-client';
import { addRoute, type RouteInfo } from '../route.js';

export interface SystemApi {
  health: () => Record<string, unknown>;
  ready: () => boolean;
  metrics?: Registry;
}

/** `/healthz` and `/readyz` (public, for probes) and `/metrics` (a read key). */
export function registerSystemRoutes(app: FastifyInstance, routes: RouteInfo[], api: SystemApi): void {
  addRoute(app, routes, {
    method: 'GET',
    url: '/healthz',
    access: 'public',
    tag: 'system',
    summary: 'Liveness, with stage and policy details',
    handler: async () => ({ status: 'ok', ...api.health() }),
  });
  addRoute(app, routes, {
    method: 'GET',
    url: '/readyz',
    access: 'public',
    tag: 'system',
    summary: 'Readiness: 200 once every stage has started, 503 before and while stopping',
    handler: async ({ reply }) => {
      if (!api.ready()) return reply.code(503).send({ code: 'AW_API_UNAVAILABLE', message: 'not ready', details: null });
      return { status: 'ready' };
    },
  });
  const registry = api.metrics;
  if (registry !== undefined) {
    addRoute(app, routes, {
      method: 'GET',
      url: '/metrics',
      // Totals across tenants: for operators, not the world (Prometheus sends the key as `authorization.credentials`).
      access: 'read',
      tag: 'system',
      summary: 'Prometheus metrics (text exposition format)',
      handler: async ({ reply }) => {
        reply.header('content-type', registry.contentType);
        return registry.metrics();
      },
    });
  }
}
