import { z } from 'zod';
import type { PolicyType } from '../../core/detector.js';
import type { AgentEvent } from '../../core/event.js';
import { compileDomainPatterns, type GlobMatcher } from '../../core/glob.js';
import { agentLabel } from '../describe.js';

const DomainPattern = z
  .string()
  .min(1)
  .max(253)
  .regex(/^(\*\.)?[A-Za-z0-9*?_-]+(\.[A-Za-z0-9*?_-]+)*\.?$/, 'must be a domain name, optionally with wildcards such as *.openai.com');

export const UnauthorizedApiConfigSchema = z.strictObject({
  /** Domains agents may call; `*.example.com` matches every subdomain. Empty: the policy is inactive. @default [] */
  allowed_domains: z.array(DomainPattern).max(10_000).default([]),
});
export type UnauthorizedApiConfig = z.output<typeof UnauthorizedApiConfigSchema>;

interface CompiledUnauthorizedApi {
  active: boolean;
  allowed: GlobMatcher;
}

/**
 * The domain an event calls: `network.domain`, else the host of `network.url`,
 * else the host of a URL-shaped `resource`. Port and trailing dot removed, lower case.
 */
export function egressDomain(event: AgentEvent): string | undefined {
  const direct = event.network?.domain;
  if (direct !== undefined && direct !== '') return normaliseHost(direct);
  const url = event.network?.url ?? (event.resource !== undefined && /^[a-z][a-z0-9+.-]*:\/\//i.test(event.resource) ? event.resource : undefined);
  if (url === undefined) return undefined;
  try {
    const host = new URL(url).hostname;
    return host === '' ? undefined : normaliseHost(host);
  } catch {
    return undefined;
  }
}

function normaliseHost(host: string): string {
  let h = host.trim().toLowerCase();
  if (h.startsWith('[')) return h; // IPv6 literal
  const colon = h.lastIndexOf(':');
  if (colon > 0 && h.indexOf(':') === colon) h = h.slice(0, colon);
  return h.endsWith('.') ? h.slice(0, -1) : h;
}

/** `unauthorized_api`: an outbound call to a domain that is not on the allowed list. */
export const unauthorizedApiPolicy: PolicyType<UnauthorizedApiConfig, CompiledUnauthorizedApi> = {
  type: 'unauthorized_api',
  configSchema: UnauthorizedApiConfigSchema,
  // AML.T0025 Exfiltration via Cyber Means: data leaving to an unapproved destination.
  defaultAtlas: ['AML.T0025'],

  compile(policy) {
    return { active: policy.config.allowed_domains.length > 0, allowed: compileDomainPatterns(policy.config.allowed_domains) };
  },

  decide(event, _results, c) {
    if (!c.active) return null;
    const domain = egressDomain(event);
    if (domain === undefined || c.allowed(domain)) return null;
    const method = event.network?.method;
    return {
      reason: `${agentLabel(event)} called ${method === undefined ? '' : `${method.toUpperCase()} `}${domain}, which is not an approved domain`,
      evidence: { domain, ...(method === undefined ? {} : { method: method.toUpperCase() }), ...(event.network?.url === undefined ? {} : { url: event.network.url.slice(0, 512) }) },
    };
  },
};
