import { AlertingError } from '../errors.js';
import type { RenderedRequest } from './payloads.js';

/** What one attempt's receiver answered. */
export interface TransportResponse {
  status: number;
  /** `Retry-After` in ms (seconds or an HTTP date), null when absent or unreadable. */
  retryAfterMs: number | null;
  /** The start of the response body, for `last_error`. */
  body: string;
}

/**
 * Sends one rendered request. Resolves with any HTTP response, whatever its
 * status; rejects with an {@link AlertingError} `AW_ALERTING_DELIVERY_FAILED`
 * (retriable) when no response came: network error, timeout. Injected into
 * the delivery service, so tests can stand in for the network.
 */
export type DeliveryTransport = (request: RenderedRequest, timeoutMs: number) => Promise<TransportResponse>;

/** Most response-body characters kept for `last_error`. */
const BODY_SNIPPET = 300;

/** The host a URL names, the only part of a sink's URL that may be logged (paths and queries can hold tokens). */
export function urlHost(url: string): string {
  try {
    return new URL(url).host;
  } catch {
    return '(invalid url)';
  }
}

/** `text` without `url`, its path or its query: error texts of HTTP clients sometimes quote the URL. */
export function redactUrl(text: string, url: string): string {
  let redacted = text.replaceAll(url, '<url>');
  try {
    const parsed = new URL(url);
    const secretish = [parsed.pathname + parsed.search, parsed.search.slice(1)].filter((part) => part.length > 1);
    for (const part of secretish) redacted = redacted.replaceAll(part, '<redacted>');
  } catch {
    // Not a URL: nothing more to take out.
  }
  return redacted;
}

/** `Retry-After`: delay-seconds or an HTTP date. */
export function parseRetryAfter(value: string | null, now: number): number | null {
  if (value === null || value.trim() === '') return null;
  const trimmed = value.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed) * 1000;
  const at = Date.parse(trimmed);
  return Number.isNaN(at) ? null : Math.max(0, at - now);
}

/** The first error code or message along a `cause` chain: undici reports `fetch failed` with the reason in `cause`. */
function describeNetworkError(error: unknown): string {
  const parts: string[] = [];
  for (let current: unknown = error, depth = 0; current !== undefined && current !== null && depth < 5; depth++) {
    if (typeof current !== 'object') break;
    const { name, code, message } = current as { name?: unknown; code?: unknown; message?: unknown };
    if (name === 'TimeoutError') return 'timed out';
    if (typeof code === 'string') parts.push(code);
    else if (typeof message === 'string' && message !== '') parts.push(message);
    current = (current as { cause?: unknown }).cause;
  }
  return parts.length === 0 ? 'unknown error' : parts.join(': ');
}

async function readSnippet(response: Response): Promise<string> {
  if (response.body === null) return '';
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let text = '';
  try {
    while (text.length < BODY_SNIPPET) {
      const { done, value } = await reader.read();
      if (done) break;
      text += decoder.decode(value, { stream: true });
    }
  } finally {
    // The rest of a large body is not wanted; let the connection go.
    await reader.cancel().catch(() => undefined);
  }
  return text.slice(0, BODY_SNIPPET).replace(/\s+/g, ' ').trim();
}

/**
 * {@link DeliveryTransport} over Node's `fetch`: a POST, redirects not
 * followed (a redirect is reported as its status, and the body and headers
 * never go to a host the configuration did not name), the timeout covering
 * the whole exchange. Error texts name the host only.
 */
export const fetchTransport: DeliveryTransport = async (request, timeoutMs) => {
  const host = urlHost(request.url);
  try {
    const response = await fetch(request.url, {
      method: 'POST',
      headers: request.headers,
      body: request.body,
      redirect: 'manual',
      signal: AbortSignal.timeout(timeoutMs),
    });
    return {
      status: response.status,
      retryAfterMs: parseRetryAfter(response.headers.get('retry-after'), Date.now()),
      // A body cut short (timeout, reset) does not undo the status that came.
      body: redactUrl(await readSnippet(response).catch(() => ''), request.url),
    };
  } catch (cause) {
    const reason = redactUrl(describeNetworkError(cause), request.url);
    throw new AlertingError('AW_ALERTING_DELIVERY_FAILED', `POST to ${host} failed: ${reason}`, { retriable: true });
  }
};
