import { describe, expect, it } from 'vitest';
import type { Silence } from '../core/records.js';
import { AlertingError } from './errors.js';
import {
  expireSilence,
  isSilenceActive,
  MAX_SILENCE_DURATION_MS,
  newSilence,
  SilenceBook,
  silenceMatches,
  type NewSilenceContext,
  type SilenceInput,
  type SilenceTarget,
} from './silences.js';

const NOW = 1_700_000_000_000;
const HOUR = 3_600_000;

function context(overrides: Partial<NewSilenceContext> = {}): NewSilenceContext {
  return { by: 'ana', now: NOW, silence_id: 's-1', ...overrides };
}

function input(overrides: Partial<SilenceInput> = {}): SilenceInput {
  return { matchers: { policy_id: 'p-shell' }, ends_at: NOW + HOUR, comment: 'maintenance window', ...overrides };
}

function silence(overrides: Partial<Silence> = {}): Silence {
  return {
    silence_id: 's-1',
    tenant: 'acme',
    matchers: { policy_id: 'p-shell' },
    starts_at: NOW,
    ends_at: NOW + HOUR,
    comment: 'maintenance',
    created_by: 'ana',
    created_at: NOW,
    expired_at: null,
    expired_by: '',
    updated_at: NOW,
    ...overrides,
  };
}

const target: SilenceTarget = { tenant: 'acme', policy_id: 'p-shell', policy_type: 'unauthorized_api', agent_id: 'Build-Bot-7', severity: 'high' };

function thrown(run: () => unknown): AlertingError {
  try {
    run();
  } catch (error) {
    expect(error).toBeInstanceOf(AlertingError);
    return error as AlertingError;
  }
  throw new Error('expected an AlertingError');
}

describe('newSilence', () => {
  it('fills in defaults: start now, caller tenant, normalised matchers', () => {
    const s = newSilence(input({ matchers: { severity: ['high', 'low', 'high'] } }), context({ callerTenant: 'acme' }));
    expect(s).toEqual({
      silence_id: 's-1',
      tenant: 'acme',
      matchers: { severity: ['low', 'high'] },
      starts_at: NOW,
      ends_at: NOW + HOUR,
      comment: 'maintenance window',
      created_by: 'ana',
      created_at: NOW,
      expired_at: null,
      expired_by: '',
      updated_at: NOW,
    });
    // A caller bound to no tenant silences every tenant unless it names one.
    expect(newSilence(input(), context()).tenant).toBeNull();
    expect(newSilence(input({ tenant: 'acme' }), context()).tenant).toBe('acme');
  });

  it('treats a start in the past as now and keeps a future start', () => {
    expect(newSilence(input({ starts_at: NOW - HOUR }), context()).starts_at).toBe(NOW);
    expect(newSilence(input({ starts_at: NOW + 10, ends_at: NOW + 20 }), context()).starts_at).toBe(NOW + 10);
  });

  it('requires a matcher, a comment, an author and an end after the start', () => {
    const noMatcher = thrown(() => newSilence(input({ matchers: {} }), context()));
    expect(noMatcher.code).toBe('AW_ALERTING_INVALID_SILENCE');
    expect(noMatcher.message).toMatch(/at least one matcher/);
    expect(thrown(() => newSilence(input({ matchers: { severity: [] } }), context())).code).toBe('AW_ALERTING_INVALID_SILENCE');
    expect(thrown(() => newSilence(input({ matchers: { agent_id: '  ' } }), context())).code).toBe('AW_ALERTING_INVALID_SILENCE');
    expect(thrown(() => newSilence(input({ comment: '   ' }), context())).details).toEqual([expect.objectContaining({ path: 'comment' })]);
    expect(thrown(() => newSilence(input(), context({ by: ' ' }))).details).toEqual([expect.objectContaining({ path: 'created_by' })]);
    expect(thrown(() => newSilence(input({ ends_at: NOW }), context())).details).toEqual([expect.objectContaining({ path: 'ends_at' })]);
    expect(thrown(() => newSilence(input({ starts_at: NOW + HOUR, ends_at: NOW + HOUR }), context())).code).toBe('AW_ALERTING_INVALID_SILENCE');
    expect(thrown(() => newSilence({ ...input(), extra: 1 }, context())).code).toBe('AW_ALERTING_INVALID_SILENCE');
    expect(thrown(() => newSilence(input({ ends_at: 1.5 }), context())).code).toBe('AW_ALERTING_INVALID_SILENCE');
  });

  it('caps the duration at 90 days', () => {
    expect(newSilence(input({ ends_at: NOW + MAX_SILENCE_DURATION_MS }), context()).ends_at).toBe(NOW + MAX_SILENCE_DURATION_MS);
    const tooLong = thrown(() => newSilence(input({ ends_at: NOW + MAX_SILENCE_DURATION_MS + 1 }), context()));
    expect(tooLong.message).toMatch(/90 days/);
  });

  it('lets a tenant-bound caller silence only its own tenant', () => {
    expect(thrown(() => newSilence(input({ tenant: 'globex' }), context({ callerTenant: 'acme' }))).code).toBe('AW_ALERTING_FORBIDDEN');
    expect(thrown(() => newSilence(input({ tenant: null }), context({ callerTenant: 'acme' }))).code).toBe('AW_ALERTING_FORBIDDEN');
    expect(newSilence(input({ tenant: 'acme' }), context({ callerTenant: 'acme' })).tenant).toBe('acme');
  });
});

describe('silence matching', () => {
  it('matches policy_id and agent_id by glob, ignoring case', () => {
    expect(silenceMatches(silence({ matchers: { policy_id: 'p-*' } }), target, NOW)).toBe(true);
    expect(silenceMatches(silence({ matchers: { policy_id: 'P-SHELL' } }), target, NOW)).toBe(true);
    expect(silenceMatches(silence({ matchers: { policy_id: 'p-rate*' } }), target, NOW)).toBe(false);
    expect(silenceMatches(silence({ matchers: { agent_id: 'build-bot-?' } }), target, NOW)).toBe(true);
    expect(silenceMatches(silence({ matchers: { agent_id: 'build-bot' } }), target, NOW)).toBe(false);
  });

  it('matches policy_type exactly and severity by membership', () => {
    expect(silenceMatches(silence({ matchers: { policy_type: 'unauthorized_api' } }), target, NOW)).toBe(true);
    expect(silenceMatches(silence({ matchers: { policy_type: 'unauthorized_*' } }), target, NOW)).toBe(false);
    expect(silenceMatches(silence({ matchers: { severity: ['medium', 'high'] } }), target, NOW)).toBe(true);
    expect(silenceMatches(silence({ matchers: { severity: ['critical'] } }), target, NOW)).toBe(false);
  });

  it('needs every matcher given to match', () => {
    expect(silenceMatches(silence({ matchers: { policy_id: 'p-shell', agent_id: 'build-*', severity: ['high'] } }), target, NOW)).toBe(true);
    expect(silenceMatches(silence({ matchers: { policy_id: 'p-shell', agent_id: 'other' } }), target, NOW)).toBe(false);
  });

  it('keeps to its tenant; a null tenant covers every tenant', () => {
    expect(silenceMatches(silence({ tenant: 'globex' }), target, NOW)).toBe(false);
    expect(silenceMatches(silence({ tenant: null }), target, NOW)).toBe(true);
    expect(silenceMatches(silence({ tenant: null }), { ...target, tenant: 'globex' }, NOW)).toBe(true);
  });

  it('matches nothing without matchers, even if such a row were stored', () => {
    expect(silenceMatches(silence({ tenant: null, matchers: {} }), target, NOW)).toBe(false);
  });

  it('is in force from starts_at (inclusive) to ends_at or expired_at (exclusive)', () => {
    const s = silence({ starts_at: NOW, ends_at: NOW + 100 });
    expect(isSilenceActive(s, NOW - 1)).toBe(false);
    expect(isSilenceActive(s, NOW)).toBe(true);
    expect(isSilenceActive(s, NOW + 99)).toBe(true);
    expect(isSilenceActive(s, NOW + 100)).toBe(false);
    const expired = expireSilence(s, 'bob', NOW + 10)!;
    expect(expired).toMatchObject({ expired_at: NOW + 10, expired_by: 'bob', ends_at: NOW + 100 });
    expect(expired.updated_at).toBeGreaterThan(s.updated_at);
    expect(isSilenceActive(expired, NOW + 9)).toBe(true);
    expect(isSilenceActive(expired, NOW + 10)).toBe(false);
  });

  it('expiring a silence that is over already changes nothing', () => {
    const s = silence({ ends_at: NOW + 100 });
    expect(expireSilence(s, 'bob', NOW + 100)).toBeNull();
    expect(expireSilence(expireSilence(s, 'bob', NOW + 1)!, 'carol', NOW + 2)).toBeNull();
    // One not yet started ends before it starts.
    const pending = expireSilence(silence({ starts_at: NOW + 50 }), 'bob', NOW)!;
    expect(isSilenceActive(pending, NOW + 60)).toBe(false);
  });
});

describe('SilenceBook', () => {
  it('picks the matching silence in force that ends last, whatever the order added', () => {
    const short = silence({ silence_id: 's-short', ends_at: NOW + 10 });
    const long = silence({ silence_id: 's-long', ends_at: NOW + 1_000 });
    const future = silence({ silence_id: 's-future', starts_at: NOW + 5, ends_at: NOW + 5_000 });
    const other = silence({ silence_id: 's-other', tenant: 'globex', ends_at: NOW + 9_000 });
    for (const order of [[short, long, future, other], [other, future, long, short]]) {
      const book = new SilenceBook(order);
      expect(book.silencing(target, NOW)?.silence_id).toBe('s-long');
      expect(book.silencing(target, NOW + 5)?.silence_id).toBe('s-future');
      expect(book.silencing({ ...target, policy_id: 'p-rate' }, NOW)).toBeUndefined();
    }
  });

  it('keeps the newest version of a silence and forgets the ones over', () => {
    const s = silence();
    const expired = expireSilence(s, 'bob', NOW + 1)!;
    const book = new SilenceBook([expired]);
    book.put(s);
    expect(book.get('s-1')).toEqual(expired);
    expect(book.silencing(target, NOW + 2)).toBeUndefined();
    book.put(silence({ silence_id: 's-2' }));
    book.prune(NOW + 2);
    expect(book.size()).toBe(1);
    book.replaceAll([]);
    expect(book.size()).toBe(0);
  });
});
