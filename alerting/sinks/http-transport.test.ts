import { describe, expect, it } from 'vitest';
import { parseRetryAfter, redactUrl, urlHost } from './http-transport.js';

describe('http transport helpers', () => {
  it('keeps only the host of a URL, and takes the URL, its path and query out of texts', () => {
    const url = 'https://hooks.example.com/services/T0/B0/SECRET?token=abc';
    expect(urlHost(url)).toBe('hooks.example.com');
    expect(redactUrl(`POST ${url} failed`, url)).toBe('POST <url> failed');
    expect(redactUrl('bad path /services/T0/B0/SECRET?token=abc here', url)).toBe('bad path <redacted> here');
    expect(redactUrl('token=abc leaked', url)).toBe('<redacted> leaked');
  });

  it('reads Retry-After as seconds or an HTTP date', () => {
    const now = Date.parse('2026-01-01T00:00:00Z');
    expect(parseRetryAfter('3', now)).toBe(3_000);
    expect(parseRetryAfter('Thu, 01 Jan 2026 00:00:10 GMT', now)).toBe(10_000);
    expect(parseRetryAfter(null, now)).toBeNull();
    expect(parseRetryAfter('soon', now)).toBeNull();
  });
});
