import { performance } from 'node:perf_hooks';
import { AgentwatchError, type AgentwatchErrorOptions } from '../../core/errors.js';
import { StorageError } from '../errors.js';
import { assertIdentifier, IDENTIFIER, toStorageError, type ClickHouseClient } from './client.js';

/**
 * Analysts' ad-hoc SELECTs against the analytics store (`POST /v1/query`):
 * one statement, bound parameters, read-only, bounded in rows, time and
 * memory, and — for a tenant-bound caller — unable to see another tenant's rows.
 *
 * Layered defence; each layer alone would stop most attacks, none is trusted alone:
 *
 * 1. A lexical scan ({@link scanQuery}) that knows ClickHouse's literal, quoted
 *    identifier and comment syntax. It refuses a second statement, statement
 *    and clause keywords that are never part of a read (DROP, SETTINGS,
 *    FORMAT, INTO OUTFILE, …), `system` / `information_schema`, heredoc
 *    literals and `{name:Identifier}` parameters, and qualifies unqualified
 *    agentwatch table names with the database.
 * 2. ClickHouse's own parser (`EXPLAIN AST`, no IO): the statement must be a
 *    SELECT with no SETTINGS clause anywhere, no table function, no table of
 *    another database and no function that reads files, dictionaries,
 *    settings or host details.
 * 3. ClickHouse's analyzer (`EXPLAIN QUERY TREE`, run with the limits and
 *    tenant filter below because it evaluates scalar subqueries): every table
 *    read, after CTEs and aliases are resolved, is one of
 *    {@link QUERYABLE_TABLES} in the agentwatch database. Unqualified names
 *    that layer 1 did not qualify resolve to the session's database here
 *    and are refused.
 * 4. Execution with a SETTINGS clause the caller cannot reach: `readonly = 1`,
 *    `max_execution_time`, `max_rows_to_read`, `max_memory_usage`,
 *    `max_result_rows` with `result_overflow_mode = 'break'`, and the tenant
 *    filter as `additional_table_filters`.
 *
 * Why a SETTINGS clause rather than `clickhouse_settings`: the embedded
 * engine's connection turns `clickhouse_settings` into `SET` statements that
 * persist in its one shared session — `readonly = 1` would lock every later
 * write of the process, and the tenant filter would leak into other readers.
 * A query's own SETTINGS clause applies to that query only, on chdb and on a
 * server alike. The same fact makes layers 1–2 load-bearing: a SETTINGS
 * clause inside a subquery overrides the outer one (even `readonly` and
 * `additional_table_filters`, observed on chdb 26.7), so none may reach
 * ClickHouse from the caller.
 */

/** The agentwatch tables that carry a `tenant` column; a tenant-bound caller reads these only. */
const TENANT_TABLES = ['events', 'verdicts', 'audit_log', 'alerts', 'capability_history'] as const;

/**
 * Tables of the agentwatch database analysts may read (see infra/clickhouse/).
 * `dead_letters` has no tenant column: only callers without a tenant may read it.
 * Left out on purpose: `schema_migrations` (bookkeeping), the materialized view
 * `capability_history_mv` (read `capability_history`), and tables not listed
 * here until someone decides they are analyst data.
 */
export const QUERYABLE_TABLES: readonly string[] = Object.freeze([...TENANT_TABLES, 'dead_letters']);

/** Bounds of {@link ReadOnlyQueryOptions} and the engine limits every query runs under. */
export const READ_ONLY_QUERY_LIMITS = Object.freeze({
  defaultMaxRows: 10_000,
  maxRows: 100_000,
  defaultMaxSeconds: 10,
  maxSeconds: 60,
  /** Rows a query may scan, summed over every table it reads (`max_rows_to_read`). */
  maxRowsToRead: 1_000_000_000,
  /** Memory one query may use (`max_memory_usage`): a bad GROUP BY must not starve ingestion. */
  maxMemoryBytes: 2 * 1024 ** 3,
  /** Bytes of result, uncompressed, past which the answer is cut (`max_result_bytes`, reported as truncated). */
  maxResultBytes: 64 * 1024 ** 2,
});

/** Options of {@link runReadOnlyQuery}. */
export interface ReadOnlyQueryOptions {
  /**
   * One SELECT (or `WITH … SELECT`, or a parenthesized SELECT); a single trailing
   * `;` is allowed. Tables may be named with or without the database.
   */
  sql: string;
  /**
   * Values of the `{name:Type}` placeholders in `sql`, bound by ClickHouse.
   * Names must be plain identifiers; the `Identifier` type is refused.
   * @default {}
   */
  params?: Record<string, unknown>;
  /**
   * When set, every table read sees only the rows whose `tenant` equals this
   * value, and `dead_letters` (no tenant column) is refused.
   * @default undefined (all tenants)
   */
  tenant?: string;
  /**
   * Most rows returned; a query producing more returns the first `maxRows`
   * with `truncated: true`. At most {@link READ_ONLY_QUERY_LIMITS}.maxRows.
   * @default 10_000
   */
  maxRows?: number;
  /**
   * Execution time limit in seconds (fractions allowed), at most
   * {@link READ_ONLY_QUERY_LIMITS}.maxSeconds. The checks run under it too.
   * @default 10
   */
  maxSeconds?: number;
}

/** Result of {@link runReadOnlyQuery}. */
export interface ReadOnlyQueryResult {
  /** Result columns in order, with their ClickHouse types. */
  columns: { name: string; type: string }[];
  /**
   * One object per row, keyed by column name, in ClickHouse's JSON encoding:
   * 64-bit integers are strings (exact), dates are strings.
   */
  rows: Record<string, unknown>[];
  /** `rows.length`. */
  row_count: number;
  /** The query produced more than `maxRows` rows; only the first `maxRows` are returned. */
  truncated: boolean;
  /** Wall time of the call, checks included, in milliseconds. */
  elapsed_ms: number;
}

/**
 * Stable error codes of read-only queries. A code is never reused. (They live
 * here rather than in storage/errors.ts because the API maps them to 4xx
 * responses, unlike the storage codes, which are operational failures.)
 */
export const ReadOnlyQueryErrorCodes = [
  /** The query or an option breaks a rule of this interface; `reason` says which. Not retriable. */
  'AW_QUERY_REFUSED',
  /** ClickHouse rejected the query (syntax, unknown column, type error, …); the message is ClickHouse's. */
  'AW_QUERY_INVALID',
  /** The query hit a limit: time, rows scanned or memory. A narrower query may pass. */
  'AW_QUERY_LIMIT_EXCEEDED',
] as const;

export type ReadOnlyQueryErrorCode = (typeof ReadOnlyQueryErrorCodes)[number];

/** Which rule a refused query broke; stable, for clients and metrics. */
export type QueryRefusalReason =
  | 'invalid_option'
  | 'empty_query'
  | 'not_a_select'
  | 'multiple_statements'
  | 'forbidden_keyword'
  | 'settings_clause'
  | 'unsupported_syntax'
  | 'identifier_parameter'
  | 'table_function'
  | 'forbidden_table'
  | 'forbidden_function'
  | 'not_read_only';

/** The query was refused before it ran (or ClickHouse refused a write or an access). */
export class QueryRefused extends AgentwatchError {
  override readonly code = 'AW_QUERY_REFUSED' as const;
  readonly reason: QueryRefusalReason;

  constructor(reason: QueryRefusalReason, message: string, options?: AgentwatchErrorOptions) {
    super('AW_QUERY_REFUSED', message, options);
    this.name = 'QueryRefused';
    this.reason = reason;
  }
}

/** ClickHouse rejected the query; `message` is ClickHouse's explanation. */
export class QueryInvalid extends AgentwatchError {
  override readonly code = 'AW_QUERY_INVALID' as const;
  /** ClickHouse's numeric error code, e.g. '62'. */
  readonly clickhouseCode: string;
  /** ClickHouse's error name, e.g. 'SYNTAX_ERROR', when it reported one. */
  readonly clickhouseType: string | undefined;

  constructor(message: string, clickhouseCode: string, clickhouseType: string | undefined, options?: AgentwatchErrorOptions) {
    super('AW_QUERY_INVALID', message, options);
    this.name = 'QueryInvalid';
    this.clickhouseCode = clickhouseCode;
    this.clickhouseType = clickhouseType;
  }
}

/** The query ran into a limit: too slow, too many rows scanned, or too much memory. */
export class QueryLimitExceeded extends AgentwatchError {
  override readonly code = 'AW_QUERY_LIMIT_EXCEEDED' as const;
  readonly limit: 'max_seconds' | 'max_rows_to_read' | 'max_memory';

  constructor(limit: QueryLimitExceeded['limit'], message: string, options?: AgentwatchErrorOptions) {
    super('AW_QUERY_LIMIT_EXCEEDED', message, options);
    this.name = 'QueryLimitExceeded';
    this.limit = limit;
  }
}

/**
 * Runs one analyst SELECT against `database` under the rules of this module
 * (see the file comment): read-only, bounded, tenant-scoped when `tenant` is set.
 *
 * @throws QueryRefused when the query or an option breaks a rule (`reason` says which).
 * @throws QueryInvalid when ClickHouse rejects the query (syntax, unknown column, …).
 * @throws QueryLimitExceeded when the query hits the time, scan or memory limit.
 * @throws StorageError `AW_STORAGE_QUERY_FAILED` when the engine itself fails
 *   (`retriable` set for connection and overload errors);
 *   `AW_STORAGE_INVALID_CONFIG` when `database` is not a plain identifier.
 */
export async function runReadOnlyQuery(
  client: ClickHouseClient,
  database: string,
  options: ReadOnlyQueryOptions,
): Promise<ReadOnlyQueryResult> {
  const started = performance.now();
  assertIdentifier(database);
  const checked = checkOptions(options);
  // Parenthesized, so the SETTINGS clause appended below always belongs to
  // the top-level query (ClickHouse applies a trailing SETTINGS clause of a
  // UNION to all of it) and no trailing text of the caller can absorb it.
  const query = `(${scanQuery(options.sql, database)}\n)`;
  const params = checked.params;

  const ast = await runExplain(client, `EXPLAIN AST ${query}`, '', params);
  checkAst(ast, database);
  // The analyzer runs scalar subqueries while it resolves the tree, so it
  // runs under the same limits and tenant filter as the query itself.
  const tree = await runExplain(client, `EXPLAIN QUERY TREE ${query}`, settingsClause(database, checked, 'explain'), params);
  checkQueryTree(tree, database, checked.tenant);

  const body = await runOnEngine(client, `${query}\nSETTINGS ${settingsClause(database, checked, 'query')}`, params, 'JSON', (text) => {
    const parsed = JSON.parse(text) as { meta?: { name: string; type: string }[]; data?: Record<string, unknown>[] };
    if (!Array.isArray(parsed.data)) throw new SyntaxError('no data array');
    return { meta: parsed.meta ?? [], data: parsed.data };
  });
  // `break` stops at a block boundary, so more than maxRows + 1 rows may come back.
  const truncated = body.data.length > checked.maxRows;
  const rows = truncated ? body.data.slice(0, checked.maxRows) : body.data;
  return {
    columns: body.meta.map(({ name, type }) => ({ name, type })),
    rows,
    row_count: rows.length,
    truncated,
    elapsed_ms: Math.round(performance.now() - started),
  };
}

interface CheckedOptions {
  params: Record<string, unknown>;
  tenant: string | undefined;
  maxRows: number;
  maxSeconds: number;
}

function checkOptions(options: ReadOnlyQueryOptions): CheckedOptions {
  const limits = READ_ONLY_QUERY_LIMITS;
  const maxRows = options.maxRows ?? limits.defaultMaxRows;
  if (!Number.isInteger(maxRows) || maxRows < 1 || maxRows > limits.maxRows) {
    throw new QueryRefused('invalid_option', `maxRows must be an integer from 1 to ${limits.maxRows} (got ${String(options.maxRows)})`);
  }
  const maxSeconds = options.maxSeconds ?? limits.defaultMaxSeconds;
  if (typeof maxSeconds !== 'number' || !Number.isFinite(maxSeconds) || maxSeconds <= 0 || maxSeconds > limits.maxSeconds) {
    throw new QueryRefused('invalid_option', `maxSeconds must be a number above 0 and at most ${limits.maxSeconds} (got ${String(options.maxSeconds)})`);
  }
  const tenant = options.tenant;
  // Control characters have no business in a tenant id, and NUL could end a
  // C string somewhere below the filter expression.
  // eslint-disable-next-line no-control-regex
  if (tenant !== undefined && (typeof tenant !== 'string' || tenant === '' || /[\u0000-\u001f\u007f]/.test(tenant))) {
    throw new QueryRefused('invalid_option', 'tenant must be a non-empty string without control characters');
  }
  const params = options.params ?? {};
  if (typeof params !== 'object' || params === null || Array.isArray(params)) {
    throw new QueryRefused('invalid_option', 'params must be an object of parameter values');
  }
  for (const name of Object.keys(params)) {
    if (!IDENTIFIER.test(name)) {
      throw new QueryRefused('invalid_option', `parameter name ${JSON.stringify(name)} must match ${String(IDENTIFIER)}`);
    }
  }
  return { params: { ...params }, tenant, maxRows, maxSeconds };
}

// ---------------------------------------------------------------------------
// Layer 1: lexical scan.

interface Token {
  kind: 'word' | 'quoted_identifier' | 'string' | 'number' | 'symbol';
  /** The source text of the token. */
  text: string;
  /** Unquoted name of a word or quoted identifier. */
  name: string;
  start: number;
  end: number;
}

/**
 * Keywords that never belong in a read, refused wherever they appear outside
 * literals and quoted identifiers (a column or alias with such a name must be
 * quoted). SETTINGS and FORMAT matter most: the first could lift the limits
 * and the tenant filter, the second would break the JSON the API returns.
 */
const FORBIDDEN_KEYWORDS: ReadonlyMap<string, string> = new Map([
  ...['INSERT', 'UPDATE', 'DELETE', 'ALTER', 'DROP', 'UNDROP', 'CREATE', 'ATTACH', 'DETACH', 'RENAME', 'EXCHANGE', 'TRUNCATE',
    'OPTIMIZE', 'KILL', 'GRANT', 'REVOKE', 'USE', 'BACKUP', 'RESTORE', 'EXPLAIN', 'DESCRIBE', 'SHOW', 'WATCH', 'MOVE', 'CHECK',
    'BEGIN', 'COMMIT', 'ROLLBACK', 'PARALLEL', 'EXECUTE'].map((word): [string, string] => [word, `${word} is not allowed: only SELECT queries are accepted`]),
  ['SET', 'SET is not allowed: limits and tenant scoping are fixed by the server'],
  ['SETTINGS', 'a SETTINGS clause is not allowed: limits and tenant scoping are fixed by the server'],
  ['FORMAT', 'a FORMAT clause is not allowed: results are returned as JSON'],
  ['INTO', 'INTO (OUTFILE) is not allowed: results are returned in the response'],
  ['OUTFILE', 'INTO OUTFILE is not allowed: results are returned in the response'],
  ['INFILE', 'FROM INFILE is not allowed'],
  ['SYSTEM', `system tables (and SYSTEM statements) are not allowed; queryable tables: ${QUERYABLE_TABLES.join(', ')}`],
  ['INFORMATION_SCHEMA', `information_schema is not queryable; queryable tables: ${QUERYABLE_TABLES.join(', ')}`],
]);

const REFUSAL_OF_KEYWORD: ReadonlyMap<string, QueryRefusalReason> = new Map([
  ['SET', 'settings_clause'],
  ['SETTINGS', 'settings_clause'],
  ['SYSTEM', 'forbidden_table'],
  ['INFORMATION_SCHEMA', 'forbidden_table'],
]);

/** Keywords that end a FROM list at their nesting level (the next comma no longer separates tables). */
const CLAUSE_KEYWORDS: ReadonlySet<string> = new Set([
  'SELECT', 'WHERE', 'PREWHERE', 'GROUP', 'ORDER', 'HAVING', 'LIMIT', 'OFFSET', 'WINDOW', 'QUALIFY', 'UNION', 'EXCEPT',
  'INTERSECT', 'ON', 'USING', 'ARRAY', 'SAMPLE', 'WITH', 'BY', 'FETCH',
]);

/**
 * Scans `sql` the way ClickHouse's lexer does (single-quoted literals and
 * backquoted / double-quoted identifiers with backslash escapes and doubled
 * quotes; `--`, `#` and `/* *\/` comments), refuses what layer 1 refuses, and
 * returns the statement without its trailing `;`, with every unqualified
 * reference to a queryable table qualified with `database`.
 *
 * Where the scan could disagree with ClickHouse it errs towards seeing more
 * text than ClickHouse does: a line comment ends at the first CR or LF, and a
 * block comment at the first `*\/` (one that contains `/*` is refused, since
 * ClickHouse nests them). Heredoc literals (`$$…$$`) are refused rather than
 * modelled.
 */
function scanQuery(sql: string, database: string): string {
  if (typeof sql !== 'string') throw new QueryRefused('invalid_option', 'sql must be a string');
  const tokens = tokenize(sql);
  if (tokens.length === 0) throw new QueryRefused('empty_query', 'the query is empty');

  const semicolons = tokens.filter((t) => t.kind === 'symbol' && t.text === ';');
  const last = tokens[tokens.length - 1] as Token;
  if (semicolons.length > 1 || (semicolons.length === 1 && semicolons[0] !== last)) {
    const at = (semicolons[0] as Token).start;
    throw new QueryRefused('multiple_statements', `only one statement is allowed: found text after ';' at position ${at + 1}`);
  }
  const statement = semicolons.length === 1 ? tokens.slice(0, -1) : tokens;
  const first = statement[0];
  if (first === undefined) throw new QueryRefused('empty_query', 'the query is empty');
  if (!(first.kind === 'symbol' && first.text === '(') && !(first.kind === 'word' && ['SELECT', 'WITH'].includes(first.name.toUpperCase()))) {
    throw new QueryRefused('not_a_select', `only SELECT queries are accepted (the query starts with ${JSON.stringify(first.text)})`);
  }

  let depth = 0;
  for (const [i, token] of statement.entries()) {
    if (token.kind === 'symbol') {
      if (token.text === '(') depth++;
      if (token.text === ')' && --depth < 0) throw new QueryRefused('unsupported_syntax', `unbalanced ')' at position ${token.start + 1}`);
      if (token.text === '{') checkPlaceholder(statement, i);
      continue;
    }
    if (token.kind !== 'word') continue;
    const upper = token.name.toUpperCase();
    const message = FORBIDDEN_KEYWORDS.get(upper);
    // format(…) is a string function; only the FORMAT clause is refused.
    const isCall = statement[i + 1]?.text === '(';
    if (message !== undefined && !(upper === 'FORMAT' && isCall)) {
      throw new QueryRefused(REFUSAL_OF_KEYWORD.get(upper) ?? 'forbidden_keyword', message);
    }
  }
  if (depth !== 0) throw new QueryRefused('unsupported_syntax', "unbalanced '(': a ')' is missing");

  const end = statement[statement.length - 1] as Token;
  return qualifyTables(sql.slice(0, end.end), statement, database);
}

function tokenize(sql: string): Token[] {
  const tokens: Token[] = [];
  const n = sql.length;
  let i = 0;
  while (i < n) {
    const c = sql[i] as string;
    if (c === '\0') throw new QueryRefused('unsupported_syntax', `NUL character at position ${i + 1}`);
    if (/\s/.test(c)) {
      i++;
    } else if (c === '#' || sql.startsWith('--', i)) {
      i = lineEnd(sql, i);
    } else if (sql.startsWith('/*', i)) {
      const close = sql.indexOf('*/', i + 2);
      if (close < 0) throw new QueryRefused('unsupported_syntax', `unterminated comment starting at position ${i + 1}`);
      if (sql.slice(i + 2, close).includes('/*')) {
        throw new QueryRefused('unsupported_syntax', `nested comments are not supported (comment starting at position ${i + 1})`);
      }
      i = close + 2;
    } else if (c === "'" || c === '"' || c === '`') {
      const end = quotedEnd(sql, i);
      const text = sql.slice(i, end);
      tokens.push({ kind: c === "'" ? 'string' : 'quoted_identifier', text, name: unquote(text), start: i, end });
      i = end;
    } else if (c === '$') {
      throw new QueryRefused('unsupported_syntax', `'$' at position ${i + 1}: heredoc literals are not supported, use '…' strings`);
    } else if (/[A-Za-z_]/.test(c)) {
      const end = scanWhile(sql, i, /[A-Za-z0-9_]/);
      const text = sql.slice(i, end);
      tokens.push({ kind: 'word', text, name: text, start: i, end });
      i = end;
    } else if (/[0-9]/.test(c)) {
      const end = scanWhile(sql, i, /[A-Za-z0-9_.]/);
      tokens.push({ kind: 'number', text: sql.slice(i, end), name: '', start: i, end });
      i = end;
    } else {
      tokens.push({ kind: 'symbol', text: c, name: '', start: i, end: i + 1 });
      i++;
    }
  }
  return tokens;
}

function lineEnd(sql: string, from: number): number {
  for (let i = from; i < sql.length; i++) {
    if (sql[i] === '\n' || sql[i] === '\r') return i;
  }
  return sql.length;
}

function scanWhile(sql: string, from: number, pattern: RegExp): number {
  let i = from;
  while (i < sql.length && pattern.test(sql[i] as string)) i++;
  return i;
}

/** End (exclusive) of the quoted token starting at `start`: backslash escapes the next character, a doubled quote stands for one. */
function quotedEnd(sql: string, start: number): number {
  const quote = sql[start];
  for (let i = start + 1; i < sql.length; i++) {
    const c = sql[i];
    if (c === '\\') {
      i++;
    } else if (c === quote) {
      if (sql[i + 1] !== quote) return i + 1;
      i++;
    }
  }
  throw new QueryRefused('unsupported_syntax', `unterminated ${quote === "'" ? 'string' : 'quoted identifier'} starting at position ${start + 1}`);
}

function unquote(text: string): string {
  const quote = text[0] as string;
  return text.slice(1, -1).replace(new RegExp(`\\\\(.)|${quote}${quote}`, 'gs'), (match, escaped: string | undefined) => escaped ?? quote);
}

/** `{name:Type}` with the `Identifier` type would splice a caller-chosen table or column name into the query. */
function checkPlaceholder(tokens: readonly Token[], open: number): void {
  if (tokens[open + 1]?.kind !== 'word' || tokens[open + 2]?.text !== ':') return;
  let depth = 0;
  for (let i = open; i < tokens.length; i++) {
    const token = tokens[i] as Token;
    if (token.text === '{') depth++;
    if (token.text === '}' && --depth === 0) return;
    if (token.kind === 'word' && token.name.toLowerCase() === 'identifier') {
      throw new QueryRefused('identifier_parameter', `parameter {${(tokens[open + 1] as Token).name}:…} has the Identifier type; parameters may only carry values`);
    }
  }
}

/**
 * Prefixes `database.` to every unqualified queryable table name in a table
 * position: after FROM or JOIN (not ARRAY JOIN), or after a comma of a FROM
 * list. Layer 2 verifies the result: an unqualified queryable name left over
 * is refused, and a name qualified that was not a table fails to resolve.
 * A CTE named like a queryable table is refused, since its references would
 * be qualified to the real table.
 */
function qualifyTables(sql: string, tokens: readonly Token[], database: string): string {
  const isName = (token: Token | undefined): boolean => token?.kind === 'word' || token?.kind === 'quoted_identifier';
  const edits: { start: number; end: number; text: string }[] = [];
  const listContext: boolean[] = [false]; // per parenthesis level: inside a FROM list
  let expectTable = false;
  for (const [i, token] of tokens.entries()) {
    const upper = token.kind === 'word' ? token.name.toUpperCase() : '';
    if (isName(token) && QUERYABLE_TABLES.includes(token.name) && tokens[i + 1]?.name.toUpperCase() === 'AS' && tokens[i + 2]?.text === '(') {
      throw new QueryRefused('unsupported_syntax', `a CTE may not be named like the table ${token.name}`);
    }
    if (token.kind === 'symbol' && token.text === '(') {
      listContext.push(false);
      expectTable = false;
    } else if (token.kind === 'symbol' && token.text === ')') {
      listContext.pop();
      expectTable = false;
    } else if (upper === 'FROM' || (upper === 'JOIN' && tokens[i - 1]?.name.toUpperCase() !== 'ARRAY')) {
      listContext[listContext.length - 1] = true;
      expectTable = true;
    } else if (token.kind === 'symbol' && token.text === ',') {
      expectTable = listContext[listContext.length - 1] === true;
    } else if (expectTable && isName(token)) {
      expectTable = false;
      const next = tokens[i + 1]?.text;
      if (next !== '.' && next !== '(' && QUERYABLE_TABLES.includes(token.name)) {
        edits.push({ start: token.start, end: token.end, text: `${database}.${token.text}` });
      }
    } else {
      expectTable = false;
      if (CLAUSE_KEYWORDS.has(upper)) listContext[listContext.length - 1] = false;
    }
  }
  let out = sql;
  for (const edit of edits.reverse()) out = out.slice(0, edit.start) + edit.text + out.slice(edit.end);
  return out;
}

// ---------------------------------------------------------------------------
// Layers 2 and 3: ClickHouse's parser and analyzer.

/**
 * Functions that read beyond the tables of the query (files, dictionaries,
 * Join tables, table metadata), reveal settings (the tenant filter is one)
 * or host details, or only waste time. Lower case; `dict…` is a prefix.
 */
const FORBIDDEN_FUNCTIONS: ReadonlySet<string> = new Set([
  'file', 'filesystemavailable', 'filesystemcapacity', 'filesystemunreserved',
  'joinget', 'joingetornull', 'hascolumnintable', 'getmaxtablenamelengthfordatabase',
  'getsetting', 'getsettingordefault', 'getserversetting', 'getmergetreesetting', 'getmacro', 'getclienthttpheader',
  'hostname', 'fqdn', 'getserverport', 'tcpport', 'serveruuid', 'getoskernelversion', 'displayname', 'buildid', 'uptime',
  'zookeepersessionuptime', 'catboostevaluate', 'evalmlmethod', 'sleep', 'sleepeachrow',
]);

function checkFunction(name: string): void {
  const lower = name.toLowerCase();
  if (FORBIDDEN_FUNCTIONS.has(lower) || lower.startsWith('dict') || lower.startsWith('__')) {
    throw new QueryRefused('forbidden_function', `function ${name} is not allowed in analyst queries`);
  }
}

/**
 * Runs an EXPLAIN as a subquery, one row per line: the FORMAT clause the
 * client appends then belongs to the outer SELECT (appended to a bare
 * EXPLAIN AST it would become part of the explained query).
 */
function runExplain(client: ClickHouseClient, explain: string, settings: string, params: Record<string, unknown>): Promise<string[]> {
  const query = `SELECT explain FROM (${explain}\n)${settings === '' ? '' : `\nSETTINGS ${settings}`}`;
  return runOnEngine(client, query, params, 'JSONEachRow', (text) =>
    text
      .split('\n')
      .filter((line) => line !== '')
      .map((line) => {
        const { explain: node } = JSON.parse(line) as { explain?: unknown };
        if (typeof node !== 'string') throw new SyntaxError('not an EXPLAIN row');
        return node;
      }),
  );
}

/**
 * Runs one query of this module and parses its output text.
 *
 * The embedded engine (chdb 3.4 / ClickHouse 26.7) keeps whatever a failed
 * query had already written — a JSON header, even rows — and prepends it to
 * the output of the next query on the session, whoever runs it. So after a
 * failure a throw-away query takes that output, and output that does not
 * parse is never served (the query runs in the single-document JSON format,
 * which a prefix cannot turn into extra rows).
 */
async function runOnEngine<T>(
  client: ClickHouseClient,
  query: string,
  params: Record<string, unknown>,
  format: 'JSON' | 'JSONEachRow',
  parse: (text: string) => T,
): Promise<T> {
  let text: string;
  try {
    const result = await client.query({ query, query_params: params, format });
    text = await result.text();
  } catch (cause) {
    await drainFailedOutput(client);
    throw toQueryError(cause);
  }
  try {
    return parse(text);
  } catch (cause) {
    throw new StorageError('AW_STORAGE_QUERY_FAILED', `the engine returned malformed ${format} output`, { cause, retriable: true });
  }
}

async function drainFailedOutput(client: ClickHouseClient): Promise<void> {
  try {
    await (await client.query({ query: 'SELECT 1', format: 'JSONEachRow' })).text();
  } catch {
    // The engine is unreachable: the original error says more.
  }
}

/**
 * Checks the parse tree (`EXPLAIN AST`, one node per line, indented by depth).
 * It runs before anything touches data: the analyzer (layer 3) already reads
 * files and URLs to infer the schema of a table function.
 */
function checkAst(lines: readonly string[], database: string): void {
  const root = lines[0]?.trim() ?? '';
  if (!/^Select(WithUnion|IntersectExcept)Query\b/.test(root)) {
    throw new QueryRefused('not_a_select', `only SELECT queries are accepted (parsed as ${root.split(' ')[0] ?? 'nothing'})`);
  }
  const tableExpressions: number[] = []; // depths of the enclosing TableExpression nodes
  for (const line of lines) {
    const depth = line.length - line.trimStart().length;
    const node = line.trim();
    while (tableExpressions.length > 0 && depth <= (tableExpressions[tableExpressions.length - 1] as number)) tableExpressions.pop();
    if (node === 'Set' || node.startsWith('Set ')) {
      throw new QueryRefused('settings_clause', 'a SETTINGS clause is not allowed: limits and tenant scoping are fixed by the server');
    }
    if (node.startsWith('TableExpression')) {
      tableExpressions.push(depth);
      continue;
    }
    const fn = /^Function (\S+)/.exec(node);
    if (fn !== null) {
      // A TableExpression's Function child is a table function (its other children: a table, a subquery, SAMPLE).
      if (tableExpressions[tableExpressions.length - 1] === depth - 1) {
        throw new QueryRefused('table_function', `table functions are not allowed (${fn[1] as string}); read ${QUERYABLE_TABLES.join(', ')}`);
      }
      checkFunction(fn[1] as string);
      continue;
    }
    const table = /^TableIdentifier (.+?)(?: \(alias .*\))?$/.exec(node);
    if (table !== null) {
      const name = table[1] as string;
      const dot = name.indexOf('.');
      if (name === 'system.one') continue; // what a SELECT without FROM reads
      if (dot >= 0 ? !isQueryableTable(name, database) : QUERYABLE_TABLES.includes(name)) {
        // An unqualified queryable name here escaped qualifyTables (e.g. an odd FROM list).
        throw forbiddenTable(dot >= 0 ? name : `${name} (write ${database}.${name})`, database);
      }
      // Any other unqualified name should be a CTE; layer 3 resolves it.
    }
  }
}

/**
 * Checks the analyzed tree (`EXPLAIN QUERY TREE`): CTEs and aliases resolved,
 * every table read appears as `TABLE … table_name: db.name`. Fails closed: a
 * TABLE line it cannot read is refused.
 */
function checkQueryTree(lines: readonly string[], database: string, tenant: string | undefined): void {
  for (const line of lines) {
    const node = line.trim();
    if (/^TABLE_FUNCTION\b/.test(node)) {
      throw new QueryRefused('table_function', `table functions are not allowed; read ${QUERYABLE_TABLES.join(', ')}`);
    }
    // `TABLE EXPRESSION` is a section label (of ARRAY JOIN, CROSS JOIN); anything else named TABLE is a table read.
    if (/^TABLE\b/.test(node) && node !== 'TABLE EXPRESSION') {
      const name = /^TABLE id: \d+, (?:.*, )?table_name: ([^,]+)(?:,|$)/.exec(node)?.[1];
      // A query without FROM reads the one-row system.one.
      if (name === undefined || (name !== 'system.one' && !isQueryableTable(name, database))) throw forbiddenTable(name ?? node, database);
      if (tenant !== undefined && name === `${database}.dead_letters`) {
        throw new QueryRefused('forbidden_table', 'dead_letters has no tenant column, so a tenant-scoped caller cannot query it');
      }
    }
    const fn = /function_name: ([^,]+)/.exec(node);
    if (fn !== null) checkFunction(fn[1] as string);
  }
}

function isQueryableTable(qualified: string, database: string): boolean {
  return qualified.startsWith(`${database}.`) && QUERYABLE_TABLES.includes(qualified.slice(database.length + 1));
}

function forbiddenTable(name: string, database: string): QueryRefused {
  return new QueryRefused('forbidden_table', `table ${name} is not queryable; queryable tables: ${QUERYABLE_TABLES.join(', ')} of database ${database}`);
}

// ---------------------------------------------------------------------------
// Layer 4: execution settings.

/** A ClickHouse string literal. ClickHouse reads backslash escapes in literals, so both `\` and `'` are escaped. */
function quoteString(value: string): string {
  return `'${value.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
}

/**
 * The SETTINGS clause of the query, or of its `EXPLAIN QUERY TREE` check.
 * The check differs in two ways: its own output must never be cut short (a
 * table line could go unseen), and it needs `readonly = 2`, since ClickHouse
 * reads an EXPLAIN subquery through a table function, which `readonly = 1`
 * forbids. (2 also allows changing settings; by then layer 2 has made sure the
 * query holds no SETTINGS clause.)
 */
function settingsClause(database: string, options: CheckedOptions, purpose: 'query' | 'explain'): string {
  const limits = READ_ONLY_QUERY_LIMITS;
  const settings = [
    // The whole clause is checked against the session's settings before any
    // of it applies, so `readonly` does not stop the limits after it.
    `readonly = ${purpose === 'query' ? 1 : 2}`,
    `max_execution_time = ${options.maxSeconds}`,
    "timeout_overflow_mode = 'throw'",
    `max_rows_to_read = ${limits.maxRowsToRead}`,
    "read_overflow_mode = 'throw'",
    `max_memory_usage = ${limits.maxMemoryBytes}`,
    // A cached result is keyed by query text, not by who asked.
    'use_query_cache = 0',
    // 64-bit integers as JSON strings: exact in JavaScript, and the same on chdb and a server.
    'output_format_json_quote_64bit_integers = 1',
  ];
  if (purpose === 'query') {
    // One row past the limit tells "exactly maxRows" from "more". `limit`
    // trims the top-level result (per UNION branch); `max_result_rows` with
    // `break` bounds the rest without failing the query.
    const cap = options.maxRows + 1;
    settings.push(`limit = ${cap}`, `max_result_rows = ${cap}`, `max_result_bytes = ${limits.maxResultBytes}`, "result_overflow_mode = 'break'");
  }
  if (options.tenant !== undefined) {
    // Keyed by `db.table`: ClickHouse applies the filter to every read of the
    // table — joins, subqueries, CTEs, UNION branches, IN <table>, FINAL and
    // trivial count() alike (each verified on chdb 26.7 by the tests).
    // dead_letters is refused above; the `0` filter keeps it empty should it slip through.
    const filter = `tenant = ${quoteString(options.tenant)}`;
    const entries = [
      ...TENANT_TABLES.map((table) => `${quoteString(`${database}.${table}`)}: ${quoteString(filter)}`),
      `${quoteString(`${database}.dead_letters`)}: ${quoteString('0')}`,
    ];
    settings.push(`additional_table_filters = {${entries.join(', ')}}`);
  }
  return settings.join(', ');
}

// ---------------------------------------------------------------------------
// Errors.

/** ClickHouse codes of the limits set in {@link settingsClause}. */
const LIMIT_CODES: ReadonlyMap<string, QueryLimitExceeded['limit']> = new Map([
  ['159', 'max_seconds'], // TIMEOUT_EXCEEDED
  ['160', 'max_seconds'], // TOO_SLOW (estimated to exceed max_execution_time)
  ['158', 'max_rows_to_read'], // TOO_MANY_ROWS
  ['307', 'max_rows_to_read'], // TOO_MANY_BYTES
  ['396', 'max_rows_to_read'], // TOO_MANY_ROWS_OR_BYTES
  ['241', 'max_memory'], // MEMORY_LIMIT_EXCEEDED
]);

/** READONLY, ACCESS_DENIED: ClickHouse refused what the checks should have refused. */
const REFUSAL_CODES: ReadonlySet<string> = new Set(['164', '497']);

/**
 * Maps a failure of a check or of the query. A ClickHouse error that is not
 * a limit, a refusal or a transient condition is charged to the query (a
 * SELECT that reaches the engine fails almost only for reasons of its own);
 * anything else is a storage failure.
 */
function toQueryError(cause: unknown): Error {
  if (cause instanceof AgentwatchError) return cause;
  const message = cause instanceof Error ? cause.message : String(cause);
  const reported = (cause as { code?: unknown } | null)?.code;
  // chdb hands some errors over unparsed, as "Code: 62. DB::Exception: …".
  const code = typeof reported === 'string' && /^\d+$/.test(reported) ? reported : /^Code: (\d+)\./.exec(message)?.[1];
  if (code === undefined) return toStorageError('AW_STORAGE_QUERY_FAILED', 'running a read-only query', cause);
  const limit = LIMIT_CODES.get(code);
  if (limit !== undefined) return new QueryLimitExceeded(limit, `the query exceeded a limit: ${message}`, { cause });
  if (REFUSAL_CODES.has(code)) return new QueryRefused('not_read_only', `ClickHouse refused the query: ${message}`, { cause });
  const storage = toStorageError('AW_STORAGE_QUERY_FAILED', 'running a read-only query', cause);
  if (storage.retriable) return storage;
  const type = (cause as { type?: unknown }).type;
  return new QueryInvalid(`ClickHouse rejected the query: ${message}`, code, typeof type === 'string' ? type : undefined, { cause });
}
