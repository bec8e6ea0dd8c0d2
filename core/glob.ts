/**
 * Wildcard patterns used across policies: `*` matches any run of characters
 * (including none), `?` one character; everything else is literal and matching
 * is case-insensitive (both sides lower-cased).
 *
 * A pattern is cut at its stars into parts (literal but for `?`), and each part
 * is placed at its leftmost occurrence after the one before — leftmost is
 * always safe, as the star in between absorbs whatever lies there. A part
 * without `?` is found with `indexOf`, so `*aaa…ab` on a long run of `a` costs
 * about value + pattern steps, where a scan backtracking to the last star costs
 * their product (1 KB of pattern on 100 KB took 0.7 s) and a regular expression
 * of several `.*` takes seconds. A part with `?` checks the candidates around
 * its longest literal run: at worst part × value steps.
 */
export type GlobMatcher = (value: string) => boolean;

const ANY = 63; // '?'

/** A piece of a pattern between stars: literal but for `?`, found by its longest literal run. */
interface Part {
  text: string;
  /** The longest run of `text` without `?` ('' when `text` is only `?`s), and where it starts in `text`. */
  anchor: string;
  anchorAt: number;
}

/** A lower-cased pattern, cut at its stars. */
interface Wildcard {
  head: Part;
  /** The parts between stars (empty ones dropped); null when the pattern has no star. */
  middle: Part[] | null;
  tail: Part;
  /** Characters the parts need in all: a shorter value cannot match. */
  minLength: number;
}

function part(text: string): Part {
  let anchor = '';
  let anchorAt = 0;
  let start = 0;
  for (const run of text.split('?')) {
    if (run.length > anchor.length) [anchor, anchorAt] = [run, start];
    start += run.length + 1;
  }
  return { text, anchor, anchorAt };
}

function compileWildcard(pattern: string): Wildcard {
  const pieces = pattern.split('*');
  const minLength = pieces.reduce((n, piece) => n + piece.length, 0);
  if (pieces.length === 1) {
    const whole = part(pattern);
    return { head: whole, middle: null, tail: whole, minLength };
  }
  const middle = pieces.slice(1, -1).filter((piece) => piece !== '').map(part);
  return { head: part(pieces[0] as string), middle, tail: part(pieces[pieces.length - 1] as string), minLength };
}

/** Whether `p` matches `value` at offset `at`. */
function partAt(p: Part, value: string, at: number): boolean {
  const text = p.text;
  for (let k = 0; k < text.length; k++) {
    const c = text.charCodeAt(k);
    if (c !== ANY && c !== value.charCodeAt(at + k)) return false;
  }
  return true;
}

/** The leftmost offset in `from..last` where `p` matches `value`, or -1. */
function findPart(p: Part, value: string, from: number, last: number): number {
  if (from > last) return -1;
  if (p.anchor.length === p.text.length) {
    const at = value.indexOf(p.text, from);
    return at <= last ? at : -1;
  }
  if (p.anchor === '') return from;
  for (let a = value.indexOf(p.anchor, from + p.anchorAt); a >= 0 && a - p.anchorAt <= last; a = value.indexOf(p.anchor, a + 1)) {
    if (partAt(p, value, a - p.anchorAt)) return a - p.anchorAt;
  }
  return -1;
}

function matchWildcard(w: Wildcard, value: string): boolean {
  if (value.length < w.minLength) return false;
  if (w.middle === null) return value.length === w.head.text.length && partAt(w.head, value, 0);
  const end = value.length - w.tail.text.length;
  if (!partAt(w.head, value, 0) || !partAt(w.tail, value, end)) return false;
  let at = w.head.text.length;
  for (const p of w.middle) {
    const found = findPart(p, value, at, end - p.text.length);
    if (found < 0) return false;
    at = found + p.text.length;
  }
  return true;
}

/** Whether lower-cased `pattern` (with `*` and `?`) matches lower-cased `value`. */
export function wildcardMatch(pattern: string, value: string): boolean {
  return matchWildcard(compileWildcard(pattern), value);
}

/** A wildcard pattern and the number it is filed with (0, or the rule it belongs to). */
interface Tagged {
  wildcard: Wildcard;
  tag: number;
}

/**
 * Wildcard patterns filed under a literal key each starts (or ends) with: a
 * value is checked only against the patterns whose key it starts (ends) with,
 * one lookup per distinct key length.
 */
class LiteralIndex {
  private readonly byKey = new Map<string, Tagged[]>();
  private readonly keyLengths = new Set<number>();
  private lengths: number[] = [];

  constructor(private readonly atEnd: boolean) {}

  add(key: string, entry: Tagged): void {
    const bucket = this.byKey.get(key);
    if (bucket === undefined) this.byKey.set(key, [entry]);
    else bucket.push(entry);
    this.keyLengths.add(key.length);
  }

  seal(): void {
    this.lengths = [...this.keyLengths].sort((a, b) => a - b);
  }

  /** Hands `found` the tag of each pattern filed here that `value` matches, until it returns true; whether one did. */
  find(value: string, found: (tag: number) => boolean): boolean {
    for (const n of this.lengths) {
      if (n > value.length) return false;
      const bucket = this.byKey.get(this.atEnd ? value.slice(value.length - n) : value.slice(0, n));
      if (bucket !== undefined) for (const e of bucket) if (matchWildcard(e.wildcard, value) && found(e.tag)) return true;
    }
    return false;
  }
}

/**
 * Lower-cased patterns, each with a tag. Literal patterns go into a map; a
 * wildcard pattern is filed under its literal head (before the first
 * wildcard), else its literal tail (after the last), so that lists of
 * thousands (`team-7-*`, `*.corp.example.com`, `/data/42/*`) cost a few
 * lookups per value; only patterns with a wildcard at both ends (`*key*`) are
 * tried one by one.
 */
class GlobIndex {
  private readonly exact = new Map<string, number[]>();
  private readonly heads = new LiteralIndex(false);
  private readonly tails = new LiteralIndex(true);
  private readonly rest: Tagged[] = [];

  constructor(entries: Iterable<readonly [pattern: string, tag: number]>) {
    for (const [pattern, tag] of entries) {
      const first = pattern.search(/[*?]/);
      if (first < 0) {
        const tags = this.exact.get(pattern);
        if (tags === undefined) this.exact.set(pattern, [tag]);
        else tags.push(tag);
        continue;
      }
      const entry = { wildcard: compileWildcard(pattern), tag };
      const last = Math.max(pattern.lastIndexOf('*'), pattern.lastIndexOf('?'));
      if (first > 0) this.heads.add(pattern.slice(0, first), entry);
      else if (last < pattern.length - 1) this.tails.add(pattern.slice(last + 1), entry);
      else this.rest.push(entry);
    }
    this.heads.seal();
    this.tails.seal();
  }

  /** Hands `found` the tag of each pattern lower-cased `value` matches, until it returns true; whether one did. */
  find(value: string, found: (tag: number) => boolean): boolean {
    const exact = this.exact.get(value);
    if (exact !== undefined) for (const tag of exact) if (found(tag)) return true;
    if (this.heads.find(value, found) || this.tails.find(value, found)) return true;
    for (const e of this.rest) if (matchWildcard(e.wildcard, value) && found(e.tag)) return true;
    return false;
  }
}

const STOP = (): boolean => true;

/** Compiles a list of patterns into one predicate; an empty list matches nothing. */
export function compileGlobs(patterns: readonly string[]): GlobMatcher {
  if (patterns.length === 0) return () => false;
  if (patterns.includes('*')) return () => true;
  const index = new GlobIndex([...new Set(patterns.map((p) => p.toLowerCase()))].map((p) => [p, 0] as const));
  return (value) => index.find(value.toLowerCase(), STOP);
}

/**
 * Compiles patterns that each carry a tag (the rule they belong to, say):
 * the result lists the tags of the patterns a value matches, ascending and
 * without repeats. Indexed as in {@link compileGlobs}.
 */
export function compileTaggedGlobs(entries: readonly (readonly [pattern: string, tag: number])[]): (value: string) => number[] {
  const index = new GlobIndex(entries.map(([pattern, tag]) => [pattern.toLowerCase(), tag] as const));
  return (value) => {
    const tags: number[] = [];
    index.find(value.toLowerCase(), (tag) => {
      tags.push(tag);
      return false;
    });
    return tags.length <= 1 ? tags : [...new Set(tags)].sort((a, b) => a - b);
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
