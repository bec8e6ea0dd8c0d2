/**
 * Wildcard patterns used across policies: `*` matches any run of characters
 * (including none), `?` one character; everything else is literal and matching
 * is case-insensitive. Patterns compile to anchored regular expressions built
 * only from escaped literals and `.*` / `.` — linear-time, no backtracking blow-up
 * because a `*`-only pattern language cannot nest quantifiers.
 */
export type GlobMatcher = (value: string) => boolean;

const cache = new Map<string, RegExp>();

function compile(pattern: string): RegExp {
  let re = cache.get(pattern);
  if (re === undefined) {
    let source = '^';
    for (const ch of pattern) {
      if (ch === '*') source += '.*';
      else if (ch === '?') source += '.';
      else source += ch.replace(/[\\^$.|+()[\]{}]/g, '\\$&');
    }
    re = new RegExp(`${source}$`, 'is');
    if (cache.size > 10_000) cache.clear();
    cache.set(pattern, re);
  }
  return re;
}

/** Compiles a list of patterns into one predicate; an empty list matches nothing. */
export function compileGlobs(patterns: readonly string[]): GlobMatcher {
  if (patterns.length === 0) return () => false;
  if (patterns.includes('*')) return () => true;
  const exact = new Set<string>();
  const wild: RegExp[] = [];
  for (const p of patterns) {
    if (/[*?]/.test(p)) wild.push(compile(p));
    else exact.add(p.toLowerCase());
  }
  return (value) => {
    if (exact.has(value.toLowerCase())) return true;
    for (const re of wild) if (re.test(value)) return true;
    return false;
  };
}

/**
 * Domain patterns: `*.openai.com` matches any subdomain of openai.com (and, as
 * users expect, not `openai.com` itself unless listed); a plain name matches
 * exactly. Trailing dots and case are normalised.
 */
export function compileDomainPatterns(patterns: readonly string[]): GlobMatcher {
  const normalised = patterns.map((p) => p.trim().toLowerCase().replace(/\.$/, ''));
  const globs = compileGlobs(normalised);
  return (domain) => globs(domain.trim().toLowerCase().replace(/\.$/, ''));
}
