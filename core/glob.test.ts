import { describe, expect, it } from 'vitest';
import { compileDomainPatterns, compileGlobs } from './glob.js';

describe('globs', () => {
  it('matches literals case-insensitively and wildcards anchored', () => {
    const m = compileGlobs(['claude-code', 'cursor-*', 'a?c']);
    expect(m('Claude-Code')).toBe(true);
    expect(m('cursor-pro')).toBe(true);
    expect(m('xcursor-pro')).toBe(false);
    expect(m('abc')).toBe(true);
    expect(m('abbc')).toBe(false);
  });

  it('treats regex metacharacters as literals', () => {
    const m = compileGlobs(['a.b', '(x)+']);
    expect(m('a.b')).toBe(true);
    expect(m('axb')).toBe(false);
    expect(m('(x)+')).toBe(true);
    expect(m('xx')).toBe(false);
  });

  it('empty list matches nothing; "*" matches everything', () => {
    expect(compileGlobs([])('x')).toBe(false);
    expect(compileGlobs(['*'])('anything')).toBe(true);
  });

  it('domain wildcards match subdomains only, not look-alikes', () => {
    const m = compileDomainPatterns(['*.openai.com', 'github.com']);
    expect(m('api.openai.com')).toBe(true);
    expect(m('a.b.openai.com')).toBe(true);
    expect(m('API.OpenAI.com.')).toBe(true);
    expect(m('openai.com')).toBe(false);
    expect(m('openai.com.evil.net')).toBe(false);
    expect(m('evilopenai.com')).toBe(false);
    expect(m('github.com')).toBe(true);
    expect(m('gist.github.com')).toBe(false);
  });
});
