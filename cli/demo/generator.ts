import { DateTime, IANAZone } from 'luxon';
import type { AgentEventInput } from '../../core/event.js';

/**
 * Deterministic synthetic telemetry for `agentwatch run --demo`.
 *
 * Pure: no IO, no timers, no wall clock. The caller owns a simulated clock and
 * asks for the events up to it; the same options always yield the same events,
 * however the simulated time is sliced into calls.
 *
 * A fleet of normal coding agents works through one business day without
 * tripping any policy of `policies/default.yaml`; four dedicated agents each
 * stage one attack (see {@link DEMO_ATTACK_AGENTS}) and keep repeating it, so a
 * dashboard shows exactly one alert per attack with a rising count.
 */

/** Options of {@link DemoTelemetry}. */
export interface DemoOptions {
  /** PRNG seed; equal seeds give identical event streams. @default 1 */
  seed?: number;
  /** Number of normal agents (`agent-001`, `agent-002`, …). @default 48 */
  agents?: number;
  /** Simulated epoch ms at which the simulation begins (see {@link demoStartTime}). */
  start: number;
  /** IANA time zone that business hours are reckoned in: the policy document's `timezone`. */
  timezone: string;
  /** Include the four attack agents. @default true */
  attacks?: boolean;
  /** Tenant stamped on every event. @default 'default' */
  tenant?: string;
}

/** One staged attack: the agent that performs it and the default policy it should trip. */
export interface DemoAttackAgent {
  readonly id: string;
  readonly name: string;
  /** Id of the policy in `policies/default.yaml` that the attack trips. */
  readonly policyId: string;
  readonly description: string;
}

/** The four attack agents, one alert each under the default policies. */
export const DEMO_ATTACK_AGENTS: readonly DemoAttackAgent[] = Object.freeze(
  [
    {
      id: 'agent-burst-01',
      name: 'claude-code',
      policyId: 'api-rate-spike',
      description: 'bursts of 250 api_calls to api.openai.com within a minute, every 10 minutes',
    },
    {
      id: 'agent-nightowl-07',
      name: 'cursor',
      policyId: 'off-hours-activity',
      description: 'reads secrets (.env, SSH keys, cloud credentials) at 03:00–03:30 local time',
    },
    {
      id: 'agent-shadow-13',
      name: 'shadow-gpt',
      policyId: 'approved-agents',
      description: 'unapproved agent product "shadow-gpt" calling api.openai.com every ~30 seconds',
    },
    {
      id: 'agent-exfil-21',
      name: 'copilot',
      policyId: 'approved-egress',
      description: 'uploads to the unapproved domain paste.exfil-drop.net every ~2 minutes',
    },
  ].map((agent) => Object.freeze(agent)),
);

const [BURST_AGENT, NIGHT_OWL_AGENT, SHADOW_AGENT, EXFIL_AGENT] = DEMO_ATTACK_AGENTS as [
  DemoAttackAgent,
  DemoAttackAgent,
  DemoAttackAgent,
  DemoAttackAgent,
];

/** Agent products a normal agent may be; the default `approved-agents` list. */
export const DEMO_AGENT_NAMES = ['claude-code', 'cursor', 'copilot', 'codex', 'devin', 'internal-ops-agent'] as const;
type AgentName = (typeof DEMO_AGENT_NAMES)[number];

/** Domains normal agents talk to; each is covered by the default `approved-egress` list. */
export const DEMO_NORMAL_DOMAINS = [
  'api.anthropic.com',
  'api.openai.com',
  'api.github.com',
  'github.com',
  'registry.npmjs.org',
  'pypi.org',
  'build.internal.example.com',
] as const;

/** Normal agents work 09:00–18:00 local: well inside the default policy's 07:00–20:00. */
const WORKDAY_START_HOUR = 9;
const WORKDAY_END_HOUR = 18;
/** Mean gap between two events of one normal agent, drawn per agent from this range. */
const MIN_MEAN_GAP_MS = 8_000;
const MAX_MEAN_GAP_MS = 20_000;
/**
 * Gaps are Erlang-distributed (the mean of this many exponentials) rather than
 * plain exponential: the same mean rate, but window counts vary a sixth as
 * much as a Poisson stream's. Against the default baseline (median + 3.5 ·
 * √median, checked on every event's sliding window) plain exponential gaps
 * made about a dozen of 48 normal agents fire per simulated workday; with
 * shape 6 none did over 40 seeded workdays, the busiest window reaching 87% of its limit.
 */
const GAP_SHAPE = 6;
/**
 * Share of a normal agent's events that the default `api-rate-spike` policy
 * counts (api_call, tool_call, network_egress). Those come from one stream per
 * agent and file access / MCP sessions from another: drawing the type per
 * event instead would thin the steady stream back into a near-Poisson one.
 */
const RATED_SHARE = 0.7;

const BURST_FIRST_OFFSET_MS = 60_000;
const BURST_PERIOD_MS = 10 * 60_000;
const BURST_EVENTS = 250;
const BURST_SPAN_MS = 60_000;

const NIGHT_OWL_PERIOD_MS = 60_000;
const NIGHT_OWL_SPAN_MS = 30 * 60_000;
/** Simulated minutes per minute of the night owl's 03:00–03:30 timeline: 30 night minutes last 4 simulated hours. */
const NIGHT_OWL_COMPRESSION = 8;

const SHADOW_MIN_GAP_MS = 25_000;
const SHADOW_MAX_GAP_MS = 35_000;
const EXFIL_MIN_GAP_MS = 100_000;
const EXFIL_MAX_GAP_MS = 140_000;

/**
 * 09:30 local time, in `timezone`, on the latest business day on or before the
 * local date of `nowMs`: Monday–Friday and not Dec 24–26, Dec 31 or Jan 1 (the
 * default policy's holidays). The result may lie after `nowMs` (before 09:30 on
 * a business day): the simulated clock is independent of the wall clock.
 */
export function demoStartTime(nowMs: number, timezone: string): number {
  assertZone(timezone, 'timezone');
  if (!Number.isFinite(nowMs)) throw new RangeError(`nowMs: must be a finite number of epoch milliseconds, got ${nowMs}`);
  let day = DateTime.fromMillis(nowMs, { zone: timezone }).startOf('day');
  // A business day is never more than four days back (Dec 24–26 plus a weekend).
  while (!isBusinessDay(day)) day = day.minus({ days: 1 });
  return day.set({ hour: 9, minute: 30, second: 0, millisecond: 0 }).toMillis();
}

/** Monday–Friday and not one of the default policy's end-of-year holidays. */
function isBusinessDay(day: DateTime): boolean {
  if (day.weekday > 5) return false;
  if (day.month === 12 && (day.day === 24 || day.day === 25 || day.day === 26 || day.day === 31)) return false;
  return !(day.month === 1 && day.day === 1);
}

function assertZone(zone: string, key: string): void {
  if (typeof zone !== 'string' || !IANAZone.isValidZone(zone)) {
    throw new RangeError(`${key}: must be an IANA time zone name, got ${JSON.stringify(zone)}`);
  }
}

// ---------------------------------------------------------------------------
// Randomness

/** A uniform number in [0, 1). */
type Random = () => number;

/** mulberry32: a tiny, fast 32-bit PRNG; plenty for synthetic telemetry. */
function mulberry32(seed: number): Random {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

/**
 * Independent generator per (seed, stream): each stream draws only from its
 * own sequence, so the events do not depend on how calls interleave streams.
 */
function streamRandom(seed: number, stream: number): Random {
  let h = Math.imul(seed ^ 0x9e3779b9, 0x85ebca6b) ^ Math.imul(stream + 1, 0xc2b2ae35);
  h = Math.imul(h ^ (h >>> 16), 0x7feb352d);
  h = Math.imul(h ^ (h >>> 15), 0x846ca68b);
  return mulberry32(h ^ (h >>> 16));
}

function pick<T>(random: Random, items: readonly T[]): T {
  const item = items[Math.floor(random() * items.length)];
  if (item === undefined) throw new Error('pick from an empty list');
  return item;
}

function intBetween(random: Random, min: number, max: number): number {
  return min + Math.floor(random() * (max - min + 1));
}

/** Erlang-distributed gap with the given mean, in whole milliseconds (at least 1). */
function erlangGap(random: Random, meanMs: number): number {
  let sum = 0;
  for (let i = 0; i < GAP_SHAPE; i++) sum -= Math.log(1 - random());
  return Math.max(1, Math.round((sum / GAP_SHAPE) * meanMs));
}

/** Log-normal-ish latency around `medianMs`. */
function latency(random: Random, medianMs: number): number {
  return Math.max(1, Math.round(medianMs * Math.exp((random() + random() + random() - 1.5) * 1.2)));
}

// ---------------------------------------------------------------------------
// The fleet

interface AgentProfile {
  id: string;
  name: string;
  version: string;
  ip: string;
  host: string;
  user: string;
  repo: Repo;
  workspace: string;
}

interface Repo {
  name: string;
  org: string;
  files: readonly string[];
  registry: 'registry.npmjs.org' | 'pypi.org';
  packages: readonly string[];
}

const NPM_PACKAGES = ['zod', 'fastify', 'vitest', 'typescript', 'pino', 'react', 'luxon', 'undici', 'eslint'];
const PYPI_PACKAGES = ['requests', 'pydantic', 'numpy', 'pandas', 'pytest', 'fastapi', 'sqlalchemy', 'boto3'];

const REPOS: readonly Repo[] = [
  {
    name: 'payments-api',
    org: 'example-corp',
    registry: 'registry.npmjs.org',
    packages: NPM_PACKAGES,
    files: [
      'src/handlers/refund.ts',
      'src/handlers/refund.test.ts',
      'src/services/ledger.ts',
      'src/models/invoice.ts',
      'src/routes/webhooks.ts',
      'package.json',
      'tsconfig.json',
      'README.md',
    ],
  },
  {
    name: 'web-dashboard',
    org: 'example-corp',
    registry: 'registry.npmjs.org',
    packages: NPM_PACKAGES,
    files: [
      'src/components/AlertTable.tsx',
      'src/components/AlertTable.test.tsx',
      'src/pages/settings.tsx',
      'src/hooks/useSession.ts',
      'src/api/client.ts',
      'vite.config.ts',
      'package.json',
    ],
  },
  {
    name: 'data-pipeline',
    org: 'example-corp',
    registry: 'pypi.org',
    packages: PYPI_PACKAGES,
    files: [
      'pipeline/jobs/daily_rollup.py',
      'pipeline/storage/parquet_writer.py',
      'pipeline/models/schema.py',
      'tests/test_daily_rollup.py',
      'pyproject.toml',
      'README.md',
    ],
  },
  {
    name: 'auth-service',
    org: 'example-corp',
    registry: 'registry.npmjs.org',
    packages: NPM_PACKAGES,
    files: [
      'src/session/store.ts',
      'src/session/store.test.ts',
      'src/oauth/callback.ts',
      'src/middleware/csrf.ts',
      'package.json',
      'CHANGELOG.md',
    ],
  },
  {
    name: 'ml-feature-store',
    org: 'example-corp',
    registry: 'pypi.org',
    packages: PYPI_PACKAGES,
    files: [
      'feature_store/registry.py',
      'feature_store/online/redis_backend.py',
      'feature_store/offline/backfill.py',
      'tests/test_registry.py',
      'pyproject.toml',
      'docs/architecture.md',
    ],
  },
  {
    name: 'billing-worker',
    org: 'example-corp',
    registry: 'registry.npmjs.org',
    packages: NPM_PACKAGES,
    files: [
      'src/jobs/retry-failed-charges.ts',
      'src/jobs/monthly-invoices.ts',
      'src/queue/consumer.ts',
      'src/queue/consumer.test.ts',
      'package.json',
    ],
  },
];

const USERS = [
  'akhan', 'bschmidt', 'cnguyen', 'dmueller', 'eoconnor', 'fweber', 'gsilva', 'hyamamoto',
  'ijones', 'jfischer', 'kwagner', 'lmartin', 'mrossi', 'nkowalski', 'opatel', 'pbecker',
];

const VERSIONS: Record<AgentName, readonly string[]> = {
  'claude-code': ['1.0.71', '1.0.83', '2.0.14'],
  cursor: ['1.4.5', '1.5.11'],
  copilot: ['1.350.0', '1.362.0'],
  codex: ['0.21.0', '0.29.0'],
  devin: ['2025.9.1'],
  'internal-ops-agent': ['3.2.0'],
};

/** Model endpoints per product: `[domain, path]`. */
const MODEL_ENDPOINTS: Record<AgentName, readonly (readonly [string, string])[]> = {
  'claude-code': [['api.anthropic.com', '/v1/messages']],
  cursor: [
    ['api.anthropic.com', '/v1/messages'],
    ['api.openai.com', '/v1/chat/completions'],
  ],
  copilot: [['api.openai.com', '/v1/chat/completions']],
  codex: [['api.openai.com', '/v1/responses']],
  devin: [
    ['api.anthropic.com', '/v1/messages'],
    ['api.openai.com', '/v1/responses'],
  ],
  'internal-ops-agent': [
    ['api.anthropic.com', '/v1/messages'],
    ['build.internal.example.com', '/api/v1/pipelines'],
  ],
};

const MODELS: Record<string, readonly string[]> = {
  'api.anthropic.com': ['claude-sonnet-4-5', 'claude-opus-4-1', 'claude-haiku-4-5'],
  'api.openai.com': ['gpt-5', 'gpt-5-mini', 'gpt-4.1'],
};

/** MCP servers and their tools, with the pinned version agents report. */
const MCP_SERVERS: readonly { server: string; version: string; tools: readonly string[] }[] = [
  { server: 'filesystem', version: '2025.8.21', tools: ['read_file', 'write_file', 'list_directory', 'search_files'] },
  { server: 'git', version: '0.6.2', tools: ['git_status', 'git_diff', 'git_log', 'git_commit'] },
  { server: 'github', version: '0.13.0', tools: ['get_file_contents', 'list_issues', 'create_pull_request'] },
  { server: 'terminal', version: '1.2.0', tools: ['run_command'] },
];

const NIGHT_OWL_TARGETS: readonly (readonly [path: string, outcome: 'success' | 'denied'])[] = [
  ['/srv/app/.env', 'success'],
  ['/srv/app/.env.production', 'success'],
  ['~/.ssh/id_rsa', 'success'],
  ['~/.ssh/id_ed25519', 'success'],
  ['~/.aws/credentials', 'success'],
  ['~/.kube/config', 'success'],
  ['/srv/app/config/secrets.yaml', 'success'],
  ['~/.docker/config.json', 'success'],
  ['~/.npmrc', 'success'],
  ['/etc/shadow', 'denied'],
];

/** Event as built by a stream; the generator adds `event_id` and `tenant` in output order. */
type EventDraft = Omit<AgentEventInput, 'event_id' | 'tenant'> & { time: number };

function agentPart(profile: AgentProfile): AgentEventInput['agent'] {
  return { id: profile.id, name: profile.name, type: 'coding-assistant', version: profile.version };
}

function sourcePart(profile: AgentProfile): NonNullable<AgentEventInput['source']> {
  return { ip: profile.ip, host: profile.host, user: profile.user };
}

function makeProfile(random: Random, id: string, name: string, version?: string): AgentProfile {
  const productName = (DEMO_AGENT_NAMES as readonly string[]).includes(name) ? (name as AgentName) : undefined;
  const user = pick(random, USERS);
  const ci = productName === 'devin' || productName === 'internal-ops-agent';
  const host = ci ? `ci-runner-${intBetween(random, 10, 99)}` : `ws-${user}-${intBetween(random, 1, 9)}`;
  const repo = pick(random, REPOS);
  return {
    id,
    name,
    version: version ?? (productName === undefined ? '0.1.0' : pick(random, VERSIONS[productName])),
    // Ten private /16s stand for office floors and CI networks.
    ip: `10.${intBetween(random, 20, 29)}.${intBetween(random, 0, 255)}.${intBetween(random, 2, 254)}`,
    host,
    user: ci ? 'svc-agents' : user,
    repo,
    workspace: ci ? `/builds/${repo.org}/${repo.name}` : `/home/${user}/src/${repo.name}`,
  };
}

// ---------------------------------------------------------------------------
// Event streams

/**
 * A lazily generated, time-ordered sequence of one agent's events. `nextAt`
 * is the simulated time at which the next event is emitted (Infinity when the
 * stream is done); for every stream but the night owl it is also the event time.
 */
interface EventStream {
  readonly rank: number;
  nextAt: number;
  take(): EventDraft;
}

/**
 * Ordinary work of one agent, in one of two strands: `rated` (model and API
 * calls, tool calls, dependency downloads) or `workspace` (file access, MCP sessions).
 */
class NormalWork implements EventStream {
  nextAt: number;

  constructor(
    readonly rank: number,
    private readonly random: Random,
    private readonly profile: AgentProfile,
    private readonly strand: 'rated' | 'workspace',
    /** Mean gap between this strand's events. */
    private readonly meanGapMs: number,
    from: number,
    private readonly until: number,
  ) {
    this.nextAt = from;
    this.advance();
  }

  private advance(): void {
    const at = this.nextAt + erlangGap(this.random, this.meanGapMs);
    this.nextAt = at < this.until ? at : Number.POSITIVE_INFINITY;
  }

  take(): EventDraft {
    const time = this.nextAt;
    this.advance();
    const r = this.random();
    // Overall mix: ~36% model/API calls, 26% tool calls, 8% downloads, 28% file access, 2% MCP sessions.
    if (this.strand === 'workspace') return r < 0.93 ? this.fileAccess(time) : this.mcpConnect(time);
    if (r < 0.51) return this.apiCall(time);
    if (r < 0.88) return this.toolCall(time);
    return this.egress(time);
  }

  private base(time: number): Pick<EventDraft, 'time' | 'agent' | 'source'> {
    return { time, agent: agentPart(this.profile), source: sourcePart(this.profile) };
  }

  private apiCall(time: number): EventDraft {
    const random = this.random;
    const { repo } = this.profile;
    if (random() < 0.25) {
      const path = pick(random, [
        `/repos/${repo.org}/${repo.name}/pulls`,
        `/repos/${repo.org}/${repo.name}/issues`,
        `/repos/${repo.org}/${repo.name}/actions/runs`,
        `/repos/${repo.org}/${repo.name}/commits`,
      ]);
      return {
        ...this.base(time),
        type: 'api_call',
        action: 'GET',
        resource: path,
        network: { domain: 'api.github.com', url: `https://api.github.com${path}`, method: 'GET', port: 443 },
        outcome: random() < 0.98 ? 'success' : 'failure',
        duration_ms: latency(random, 180),
      };
    }
    const name = this.profile.name as AgentName;
    const [domain, path] = pick(random, MODEL_ENDPOINTS[name]);
    const models = MODELS[domain];
    return {
      ...this.base(time),
      type: 'api_call',
      action: 'POST',
      resource: path,
      network: { domain, url: `https://${domain}${path}`, method: 'POST', port: 443 },
      outcome: random() < 0.97 ? 'success' : 'failure',
      duration_ms: latency(random, 2_400),
      attributes:
        models === undefined
          ? { pipeline: repo.name }
          : { model: pick(random, models), input_tokens: intBetween(random, 800, 60_000), output_tokens: intBetween(random, 50, 4_000) },
    };
  }

  private toolCall(time: number): EventDraft {
    const random = this.random;
    const server = pick(random, MCP_SERVERS);
    const tool = pick(random, server.tools);
    const { repo, workspace } = this.profile;
    const resource =
      server.server === 'filesystem'
        ? `${workspace}/${pick(random, repo.files)}`
        : server.server === 'terminal'
          ? pick(random, repo.registry === 'pypi.org' ? ['pytest -q', 'ruff check .'] : ['npm test', 'npm run lint', 'npx tsc --noEmit'])
          : `${repo.org}/${repo.name}`;
    return {
      ...this.base(time),
      type: 'tool_call',
      action: 'tools/call',
      resource,
      tool: { name: tool, server: server.server, version: server.version },
      outcome: random() < 0.96 ? 'success' : 'failure',
      duration_ms: latency(random, server.server === 'terminal' ? 4_000 : 60),
    };
  }

  private fileAccess(time: number): EventDraft {
    const random = this.random;
    const { repo, workspace } = this.profile;
    const r = random();
    return {
      ...this.base(time),
      type: 'resource_access',
      action: r < 0.7 ? 'file_read' : r < 0.95 ? 'file_write' : 'directory_list',
      resource: r < 0.95 ? `${workspace}/${pick(random, repo.files)}` : workspace,
      outcome: 'success',
      duration_ms: latency(random, 3),
    };
  }

  private egress(time: number): EventDraft {
    const random = this.random;
    const { repo } = this.profile;
    const r = random();
    let domain: string;
    let path: string;
    let method = 'GET';
    if (r < 0.35) {
      domain = 'github.com';
      path = `/${repo.org}/${repo.name}.git/info/refs`;
    } else if (r < 0.8) {
      domain = repo.registry;
      const pkg = pick(random, repo.packages);
      path = domain === 'pypi.org' ? `/simple/${pkg}/` : `/${pkg}`;
    } else {
      domain = 'build.internal.example.com';
      path = `/api/v1/artifacts/${repo.name}`;
      method = 'POST';
    }
    return {
      ...this.base(time),
      type: 'network_egress',
      action: method,
      resource: path,
      network: { domain, url: `https://${domain}${path}`, method, port: 443 },
      outcome: 'success',
      duration_ms: latency(random, 350),
    };
  }

  private mcpConnect(time: number): EventDraft {
    const random = this.random;
    const server = pick(random, MCP_SERVERS);
    return {
      ...this.base(time),
      type: 'mcp_connect',
      action: 'initialize',
      resource: `mcp://${server.server}`,
      mcp: {
        server_id: server.server,
        url: `stdio://mcp-server-${server.server}`,
        trust_score: intBetween(random, 82, 97),
        tools: [...server.tools],
        capabilities: ['tools'],
      },
      outcome: 'success',
      duration_ms: latency(random, 120),
    };
  }
}

/** Attack 1: every 10 simulated minutes, 250 model calls to api.openai.com within one minute. */
class RateBurst implements EventStream {
  nextAt = Number.POSITIVE_INFINITY;
  private burstStart: number;
  private index = 0;

  constructor(
    readonly rank: number,
    private readonly random: Random,
    private readonly profile: AgentProfile,
    start: number,
    private readonly from: number,
    private readonly until: number,
  ) {
    this.burstStart = start + BURST_FIRST_OFFSET_MS;
    // Bursts stay inside business hours, so this agent trips the rate policy and nothing else.
    while (this.burstStart < from) this.burstStart += BURST_PERIOD_MS;
    this.schedule();
  }

  private schedule(): void {
    if (this.index === BURST_EVENTS) {
      this.index = 0;
      this.burstStart += BURST_PERIOD_MS;
    }
    if (this.burstStart < this.from || this.burstStart + BURST_SPAN_MS > this.until) {
      this.nextAt = Number.POSITIVE_INFINITY;
      return;
    }
    // One slot per event, jittered within it: strictly increasing and evenly spread.
    const slot = BURST_SPAN_MS / BURST_EVENTS;
    this.nextAt = this.burstStart + Math.floor(this.index * slot + this.random() * slot);
  }

  take(): EventDraft {
    const time = this.nextAt;
    this.index++;
    this.schedule();
    const random = this.random;
    const path = '/v1/chat/completions';
    return {
      time,
      agent: agentPart(this.profile),
      source: sourcePart(this.profile),
      type: 'api_call',
      action: 'POST',
      resource: path,
      network: { domain: 'api.openai.com', url: `https://api.openai.com${path}`, method: 'POST', port: 443 },
      outcome: random() < 0.9 ? 'success' : 'failure',
      duration_ms: latency(random, 900),
      attributes: { model: 'gpt-5-mini', input_tokens: intBetween(random, 20_000, 120_000), output_tokens: intBetween(random, 10, 200) },
    };
  }
}

/**
 * Attack 2: secrets read at 03:00–03:30 local time.
 *
 * The events belong to the early morning of the simulation's day, but the demo
 * starts at 09:30, and a replay of the night all at once would show one
 * instant spike. So the night owl is drip-fed: roughly once a simulated minute
 * (when the clock passes `start + k·1 min`, plus jitter) one event is emitted,
 * stamped with its own 03:xx time. Its own timeline runs eight times slower
 * than the simulated clock and is monotonic, so its 30 night minutes last the
 * first four simulated hours. Detectors see an agent whose clock is hours
 * behind everyone else's; per-agent windows keep that harmless.
 */
class NightOwl implements EventStream {
  nextAt: number;
  private k = 0;

  constructor(
    readonly rank: number,
    private readonly random: Random,
    private readonly profile: AgentProfile,
    private readonly start: number,
    private readonly nightStart: number,
  ) {
    this.nextAt = this.emitTime();
  }

  private emitTime(): number {
    const at = this.start + this.k * NIGHT_OWL_PERIOD_MS + intBetween(this.random, 1, 20_000);
    return this.stampFor(at) < this.nightStart + NIGHT_OWL_SPAN_MS ? at : Number.POSITIVE_INFINITY;
  }

  private stampFor(emitAt: number): number {
    return this.nightStart + Math.floor((emitAt - this.start) / NIGHT_OWL_COMPRESSION);
  }

  take(): EventDraft {
    const time = this.stampFor(this.nextAt);
    this.k++;
    this.nextAt = this.emitTime();
    const [resource, outcome] = pick(this.random, NIGHT_OWL_TARGETS);
    return {
      time,
      agent: agentPart(this.profile),
      source: sourcePart(this.profile),
      type: 'resource_access',
      action: 'file_read',
      resource,
      outcome,
      duration_ms: latency(this.random, 2),
    };
  }
}

/** Evenly paced events with a uniformly jittered gap, inside `[from, until)`. */
abstract class PacedStream implements EventStream {
  nextAt: number;

  constructor(
    readonly rank: number,
    protected readonly random: Random,
    protected readonly profile: AgentProfile,
    from: number,
    private readonly until: number,
    private readonly minGapMs: number,
    private readonly maxGapMs: number,
  ) {
    this.nextAt = from;
    this.advance();
  }

  private advance(): void {
    const at = this.nextAt + intBetween(this.random, this.minGapMs, this.maxGapMs);
    this.nextAt = at < this.until ? at : Number.POSITIVE_INFINITY;
  }

  take(): EventDraft {
    const time = this.nextAt;
    this.advance();
    return this.build(time);
  }

  protected abstract build(time: number): EventDraft;
}

/** Attack 3: an unapproved agent product, otherwise unremarkable model calls. */
class ShadowAgent extends PacedStream {
  protected build(time: number): EventDraft {
    const path = '/v1/chat/completions';
    return {
      time,
      agent: agentPart(this.profile),
      source: sourcePart(this.profile),
      type: 'api_call',
      action: 'POST',
      resource: path,
      network: { domain: 'api.openai.com', url: `https://api.openai.com${path}`, method: 'POST', port: 443 },
      outcome: 'success',
      duration_ms: latency(this.random, 1_800),
      attributes: { model: 'gpt-4.1', input_tokens: intBetween(this.random, 500, 8_000), output_tokens: intBetween(this.random, 50, 1_500) },
    };
  }
}

/** Attack 4: uploads to a paste site outside the approved egress domains. */
class Exfiltration extends PacedStream {
  protected build(time: number): EventDraft {
    const domain = 'paste.exfil-drop.net';
    return {
      time,
      agent: agentPart(this.profile),
      source: sourcePart(this.profile),
      type: 'network_egress',
      action: 'POST',
      resource: '/upload',
      network: { domain, url: `https://${domain}/upload`, method: 'POST', port: 443 },
      outcome: 'success',
      duration_ms: latency(this.random, 700),
      attributes: { bytes_out: intBetween(this.random, 20_000, 900_000) },
    };
  }
}

/** Binary min-heap of streams by (nextAt, rank): a total order, so merging is deterministic. */
class StreamQueue {
  private readonly heap: EventStream[] = [];

  push(stream: EventStream): void {
    if (stream.nextAt === Number.POSITIVE_INFINITY) return;
    const heap = this.heap;
    heap.push(stream);
    let i = heap.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!before(heap[i]!, heap[parent]!)) break;
      [heap[i], heap[parent]] = [heap[parent]!, heap[i]!];
      i = parent;
    }
  }

  peek(): EventStream | undefined {
    return this.heap[0];
  }

  pop(): EventStream | undefined {
    const heap = this.heap;
    const top = heap[0];
    const last = heap.pop();
    if (top === undefined || last === undefined || heap.length === 0) return top;
    heap[0] = last;
    let i = 0;
    for (;;) {
      const left = 2 * i + 1;
      const right = left + 1;
      let smallest = i;
      if (left < heap.length && before(heap[left]!, heap[smallest]!)) smallest = left;
      if (right < heap.length && before(heap[right]!, heap[smallest]!)) smallest = right;
      if (smallest === i) break;
      [heap[i], heap[smallest]] = [heap[smallest]!, heap[i]!];
      i = smallest;
    }
    return top;
  }
}

function before(a: EventStream, b: EventStream): boolean {
  return a.nextAt < b.nextAt || (a.nextAt === b.nextAt && a.rank < b.rank);
}

// ---------------------------------------------------------------------------

/**
 * Deterministic synthetic telemetry for the demo: a fleet of normal agents plus
 * the four {@link DEMO_ATTACK_AGENTS}, generated lazily against a simulated clock.
 *
 * Normal agents act between 09:00 and 18:00 local time on the business day of
 * `start` (see {@link demoStartTime}) and then fall silent; if `start` is not
 * on a business day, or after 18:00, only the night owl emits.
 */
export class DemoTelemetry {
  /** Simulated time after which normal agents (and the burst, shadow and exfiltration attacks) are silent. */
  readonly workdayEnd: number;
  private readonly tenant: string;
  private readonly idPrefix: string;
  private readonly queue = new StreamQueue();
  private cursor: number;
  private counter = 0;

  constructor(options: DemoOptions) {
    const seed = options.seed ?? 1;
    if (!Number.isSafeInteger(seed)) throw new RangeError(`seed: must be an integer, got ${seed}`);
    const agents = options.agents ?? 48;
    if (!Number.isSafeInteger(agents) || agents < 0 || agents > 9_999) {
      throw new RangeError(`agents: must be an integer from 0 to 9999, got ${agents}`);
    }
    if (!Number.isSafeInteger(options.start) || options.start < 0) {
      throw new RangeError(`start: must be a non-negative integer of epoch milliseconds, got ${options.start}`);
    }
    assertZone(options.timezone, 'timezone');
    const tenant = options.tenant ?? 'default';
    if (tenant.length < 1 || tenant.length > 128) throw new RangeError('tenant: must be 1–128 characters');

    this.tenant = tenant;
    // The start time is part of the id: demos of different days never collide
    // in a persistent store, while a rerun of the same demo replays idempotently.
    this.idPrefix = `demo-${seed}-${options.start.toString(36)}-`;
    this.cursor = options.start;

    const start = options.start;
    const local = DateTime.fromMillis(start, { zone: options.timezone });
    const day = local.startOf('day');
    const dayOpen = day.set({ hour: WORKDAY_START_HOUR }).toMillis();
    const dayClose = day.set({ hour: WORKDAY_END_HOUR }).toMillis();
    const workday = isBusinessDay(day) && start < dayClose;
    const from = workday ? Math.max(start, dayOpen) : start;
    const until = workday ? dayClose : start;
    this.workdayEnd = until;

    // Stream ranks double as PRNG stream numbers, fixed per agent whatever the
    // fleet size: agent i owns ranks 2i and 2i+1, the attacks ranks from 100 000 on.
    const roster = streamRandom(seed, 0);
    const addNormalWork = (rank: number, profile: AgentProfile): void => {
      const random = streamRandom(seed, rank);
      const meanGapMs = MIN_MEAN_GAP_MS + random() * (MAX_MEAN_GAP_MS - MIN_MEAN_GAP_MS);
      this.queue.push(new NormalWork(rank, random, profile, 'rated', meanGapMs / RATED_SHARE, from, until));
      const rank2 = rank + 1;
      const workspaceGapMs = meanGapMs / (1 - RATED_SHARE);
      this.queue.push(new NormalWork(rank2, streamRandom(seed, rank2), profile, 'workspace', workspaceGapMs, from, until));
    };
    for (let i = 1; i <= agents; i++) {
      addNormalWork(2 * i, makeProfile(roster, `agent-${String(i).padStart(3, '0')}`, pick(roster, DEMO_AGENT_NAMES)));
    }
    if (options.attacks ?? true) {
      const attackRandom = streamRandom(seed, 100_000);
      const burst = makeProfile(attackRandom, BURST_AGENT.id, BURST_AGENT.name);
      const night = makeProfile(attackRandom, NIGHT_OWL_AGENT.id, NIGHT_OWL_AGENT.name);
      const shadow = makeProfile(attackRandom, SHADOW_AGENT.id, SHADOW_AGENT.name, '0.3.1');
      const exfil = makeProfile(attackRandom, EXFIL_AGENT.id, EXFIL_AGENT.name);
      // The latest 03:00 whose half hour is over by `start`, so the night owl never runs ahead of the clock.
      let night3 = day.set({ hour: 3 });
      if (night3.toMillis() + NIGHT_OWL_SPAN_MS > start) night3 = day.minus({ days: 1 }).set({ hour: 3 });
      const ranked = (n: number): [number, Random] => [100_000 + n, streamRandom(seed, 100_000 + n)];
      addNormalWork(100_001, burst);
      this.queue.push(new RateBurst(...ranked(3), burst, start, from, until));
      this.queue.push(new NightOwl(...ranked(4), night, start, night3.toMillis()));
      this.queue.push(new ShadowAgent(...ranked(5), shadow, from, until, SHADOW_MIN_GAP_MS, SHADOW_MAX_GAP_MS));
      addNormalWork(100_006, exfil);
      this.queue.push(new Exfiltration(...ranked(8), exfil, from, until, EXFIL_MIN_GAP_MS, EXFIL_MAX_GAP_MS));
    }
  }

  /** Simulated time up to which events have been handed out (`start` before the first call). */
  get simTime(): number {
    return this.cursor;
  }

  /**
   * Every event emitted in `(previous simTime, simTimeMs]`, ordered by emission
   * time. That is event time for all agents except the night owl, whose events
   * carry 03:xx timestamps (see `NightOwl`). A `simTimeMs` at or before the
   * previous one returns nothing. Event ids are `demo-<seed>-<start base36>-<n>`,
   * numbered in output order, so they are the same however the time is sliced.
   */
  eventsUntil(simTimeMs: number): AgentEventInput[] {
    if (Number.isNaN(simTimeMs)) throw new RangeError('simTimeMs: must be a number');
    const out: AgentEventInput[] = [];
    if (simTimeMs <= this.cursor) return out;
    this.cursor = simTimeMs;
    for (;;) {
      const stream = this.queue.peek();
      if (stream === undefined || stream.nextAt > simTimeMs) break;
      this.queue.pop();
      const draft = stream.take();
      this.queue.push(stream);
      out.push({ event_id: `${this.idPrefix}${this.counter++}`, tenant: this.tenant, ...draft });
    }
    return out;
  }
}
