import { Range, valid as validSemver, validRange } from 'semver';
import { z } from 'zod';
import type { Finding, PolicyType } from '../../core/detector.js';
import type { AgentEvent } from '../../core/event.js';
import { compileGlobs, type GlobMatcher } from '../../core/glob.js';
import type { Evidence } from '../../core/records.js';
import { agentLabel } from '../describe.js';

/**
 * `tool_allowlist`: the tool an event invokes, as the URI
 * `mcp://<server>/<tool>@<version>`, must match an allowlist entry; optionally
 * its version must be pinned to one exact semver version.
 */

// ---------------------------------------------------------------------------
// Patterns
// ---------------------------------------------------------------------------

/** Server used in the URI of a tool whose event names neither `tool.server` nor `mcp.server_id`. */
export const LOCAL_SERVER = 'local';

/**
 * Grammar of an allowlist entry:
 *
 *     "*"                                   every tool, any version or none
 *     mcp://<server>/<tool>                 any version or none
 *     mcp://<server>/<tool>@<semver range>  a version that satisfies the range
 *
 * `<server>` (no `/`) and `<tool>` are wildcard patterns: `*` any run of
 * characters, `?` one, case-insensitive. The range is anything npm's `semver`
 * accepts: `*`, `1.0` (= 1.0.x), `1.2.3`, `^1.2.0`, `~1.2`, `>=2 <3`, `1 || 2`.
 * The range takes the rest of the entry, so it may hold blanks.
 */
const TOOL_PATTERN = /^mcp:\/\/([^/@\s]+)\/([^@\s]+)(?:@(.*))?$/i;

/**
 * A pattern version with nothing of a range about it (`1.0`, `v2`, `1.2.3-rc.1`):
 * a version that is not valid semver may still match it as the same string.
 * `*`, `x`, operators and blanks make a range, which only semver versions meet.
 */
const EXACT_PATTERN_VERSION = /^(?!.*(?:^|[.])[xX*](?:$|[.+-]))v?[0-9A-Za-z.+-]+$/;

interface ParsedPattern {
  server: string;
  tool: string;
  /** The text after `@`; undefined when the entry has none. */
  version: string | undefined;
}

/** Splits an allowlist entry, or returns why it is not one. `"*"` is handled by the caller. */
function parseToolPattern(entry: string): ParsedPattern | string {
  const m = TOOL_PATTERN.exec(entry);
  if (m === null) return `"${entry}" must be "*" or mcp://<server>/<tool>[@<version range>], e.g. mcp://database-mcp/query@^1.2.0`;
  const [, server = '', tool = '', version] = m;
  if (/[{}[\]]/.test(server + tool)) return `"${entry}": braces and brackets are not wildcards here (only * and ?); list alternatives as separate entries`;
  if (version !== undefined) {
    const range = version.trim();
    if (range === '') return `"${entry}": the version range after @ is empty; leave out @ to allow any version`;
    if (validRange(range) === null) return `"${entry}": "${range}" is not a semver range (e.g. 1.2.3, 1.0, ^1.2.0, >=2 <3, *)`;
    return { server, tool, version: range };
  }
  return { server, tool, version: undefined };
}

const ToolPatternSchema = z
  .string()
  .min(1, 'must not be empty')
  .max(1024)
  .superRefine((entry, ctx) => {
    if (entry === '*') return;
    const parsed = parseToolPattern(entry);
    if (typeof parsed === 'string') ctx.addIssue({ code: 'custom', message: parsed });
  });

export const ToolAllowlistConfigSchema = z.strictObject({
  /**
   * Tools agents may call, as `mcp://<server>/<tool>[@<range>]` patterns or `"*"`.
   * An empty list allows no tool at all.
   * @default ["*"]
   */
  allowlist: z.array(ToolPatternSchema).max(10_000).default(['*']),
  /** Deny (whatever the policy's action) a call whose version is missing or not one exact semver version. @default false */
  deny_if_unpinned_version: z.boolean().default(false),
});
export type ToolAllowlistConfig = z.output<typeof ToolAllowlistConfigSchema>;

// ---------------------------------------------------------------------------
// Matching
// ---------------------------------------------------------------------------

interface CompiledToolPattern {
  server: GlobMatcher;
  tool: GlobMatcher;
  /** null: the entry has no `@`, any version (or none) matches. */
  range: Range | null;
  /** The text after `@` when it is an exact version a non-semver version may equal; else null. */
  exact: string | null;
}

export interface CompiledToolAllowlist {
  allowAll: boolean;
  /** Entries naming one server (no wildcard), by lower-cased server: a call meets only its server's entries. */
  byServer: Map<string, CompiledToolPattern[]>;
  /** Entries whose server has a wildcard. */
  anyServer: CompiledToolPattern[];
  denyUnpinned: boolean;
}

/** The tool an event invokes, with the server it runs on. */
export interface ToolRef {
  /** `tool.server`, else `mcp.server_id`, else `local`. */
  server: string;
  name: string;
  version: string | undefined;
  /** `mcp://<server>/<name>` plus `@<version>` when there is one. */
  uri: string;
}

/**
 * The tool of an event, or undefined when it has none. A tool without a server
 * is placed on the MCP server the event names (`mcp.server_id`), else on the
 * pseudo-server `local` (built-in tools of the agent itself), so
 * `mcp://local/*` allowlists those.
 */
export function toolOf(event: AgentEvent): ToolRef | undefined {
  const tool = event.tool;
  if (tool === undefined) return undefined;
  const server = tool.server ?? event.mcp?.server_id ?? LOCAL_SERVER;
  const version = tool.version?.trim() === '' ? undefined : tool.version?.trim();
  return { server, name: tool.name, version, uri: `mcp://${server}/${tool.name}${version === undefined ? '' : `@${version}`}` };
}

function compilePattern(parsed: ParsedPattern): CompiledToolPattern {
  const range = parsed.version === undefined ? null : new Range(parsed.version);
  const exact = parsed.version !== undefined && EXACT_PATTERN_VERSION.test(parsed.version) ? parsed.version : null;
  return { server: compileGlobs([parsed.server]), tool: compileGlobs([parsed.tool]), range, exact };
}

/**
 * Whether a version meets an entry's `@` part. A semver version must satisfy
 * the range (prereleases only where the range names one, as in npm). A version
 * that is not semver (`latest`, a commit hash, `1.0`) can only equal an exact
 * pattern version as a string: it never satisfies a range, `@*` included, so a
 * malformed version cannot slip through a wide range.
 */
function versionMatches(p: CompiledToolPattern, version: string | undefined, semverVersion: string | null): boolean {
  if (p.range === null) return true;
  if (version === undefined) return false;
  if (semverVersion !== null) return p.range.test(semverVersion);
  return p.exact !== null && p.exact === version;
}

function isAllowlisted(c: CompiledToolAllowlist, tool: ToolRef, semverVersion: string | null): boolean {
  if (c.allowAll) return true;
  const allows = (p: CompiledToolPattern): boolean => p.server(tool.server) && p.tool(tool.name) && versionMatches(p, tool.version, semverVersion);
  return (c.byServer.get(tool.server.toLowerCase())?.some(allows) ?? false) || c.anyServer.some(allows);
}

/** `unpinnedDenied`: the policy denies unpinned versions and this one is. */
function toolFinding(event: AgentEvent, tool: ToolRef, allowlisted: boolean, pinned: boolean, unpinnedDenied: boolean): Finding {
  const evidence: Evidence = { tool_uri: tool.uri.slice(0, 1024), server: tool.server, tool: tool.name, allowlisted, pinned };
  if (tool.version !== undefined) evidence.version = tool.version;
  const why = tool.version === undefined ? 'no version given' : `${tool.version} is not one exact semver version`;
  const problems: string[] = [];
  if (!allowlisted) problems.push('is not in the tool allowlist');
  if (unpinnedDenied) problems.push(`has no pinned version (${why})`);
  return {
    reason: `${agentLabel(event)} called ${tool.uri.length <= 256 ? tool.uri : `${tool.uri.slice(0, 255)}…`}, which ${problems.join(' and ')}`,
    evidence,
    // An unpinned version is denied whatever the action; an unlisted tool gets the policy's decision.
    ...(unpinnedDenied ? { decision: 'deny' as const } : {}),
  };
}

export const toolAllowlistPolicy: PolicyType<ToolAllowlistConfig, CompiledToolAllowlist> = {
  type: 'tool_allowlist',
  configSchema: ToolAllowlistConfigSchema,
  // AML.T0053 AI Agent Tool Invocation: an agent invoking a tool (or a tool
  // version) nobody approved.
  defaultAtlas: ['AML.T0053'],

  compile(policy) {
    const entries = policy.config.allowlist;
    // Grouped by server so that thousands of entries cost a lookup, not a scan, per call.
    const byServer = new Map<string, CompiledToolPattern[]>();
    const anyServer: CompiledToolPattern[] = [];
    for (const entry of entries) {
      if (entry === '*') continue;
      const parsed = parseToolPattern(entry);
      // The schema rejected anything else; a pattern that slipped through must never allow.
      if (typeof parsed === 'string') continue;
      const pattern = compilePattern(parsed);
      if (/[*?]/.test(parsed.server)) {
        anyServer.push(pattern);
        continue;
      }
      const key = parsed.server.toLowerCase();
      const group = byServer.get(key);
      if (group === undefined) byServer.set(key, [pattern]);
      else group.push(pattern);
    }
    return { allowAll: entries.includes('*'), byServer, anyServer, denyUnpinned: policy.config.deny_if_unpinned_version };
  },

  decide(event, _results, c) {
    const tool = toolOf(event);
    if (tool === undefined) return null;
    const semverVersion = tool.version === undefined ? null : validSemver(tool.version);
    const allowlisted = isAllowlisted(c, tool, semverVersion);
    const pinned = semverVersion !== null;
    const unpinnedDenied = c.denyUnpinned && !pinned;
    if (allowlisted && !unpinnedDenied) return null;
    return toolFinding(event, tool, allowlisted, pinned, unpinnedDenied);
  },
};
