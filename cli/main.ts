import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { Command, InvalidArgumentError } from 'commander';
import pino, { type Logger } from 'pino';
import { AgentwatchError } from '../core/errors.js';
import { loadPolicyFile, PolicyValidationError } from '../detectors/policy-loader.js';
import { generateApiKey, hashApiKey, Roles, type Role } from '../api/auth.js';
import { loadConfig, type Config } from './config.js';
import { DemoTelemetry, DEMO_ATTACK_AGENTS, demoStartTime } from './demo/generator.js';
import { openClickHouse, startEmbeddedPipeline, Stages, type EmbeddedPipeline, type Stage } from './pipeline.js';
import { formatSummary, type SummarySnapshot } from './summary.js';
import { applyMigrations } from '../storage/clickhouse/migrations.js';
import { ClickHouseExportSource } from '../export/clickhouse/source.js';
import { destinationDir, resolveExportConfig } from '../export/config.js';
import { ExportError } from '../export/errors.js';
import { exportTenantPeriod, type ExportLogger } from '../export/exporter.js';
import { customPeriod, parseTimeArgument, periodsOverlapping, PeriodKinds, type Period, type PeriodKind } from '../export/periods.js';
import { formatProgress } from '../export/progress.js';
import { loadSigningKey } from '../export/service.js';
import { verifyExportDir } from '../export/verify.js';

const VERSION = '0.1.0';

function stageList(value: string): Stage[] {
  const stages = value.split(',').map((s) => s.trim());
  for (const s of stages) {
    if (!(Stages as readonly string[]).includes(s)) throw new InvalidArgumentError(`unknown stage "${s}" (stages: ${Stages.join(', ')})`);
  }
  return stages as Stage[];
}

function positiveNumber(value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError('must be a positive number');
  return n;
}

interface RunOptions {
  port?: string;
  host?: string;
  dataDir?: string;
  policies?: string;
  config?: string;
  logLevel?: string;
  demo?: boolean;
  demoSpeed: number;
  demoAgents: number;
  summary: boolean;
  stages?: Stage[];
}

const STAGE_HELP: Record<Stage, string> = {
  ingest: 'accept events over HTTP (POST /v1/events) and publish them to Kafka',
  worker: 'judge events from Kafka (window state in Redis when REDIS_URL is set) and store events, verdicts, audit rows and dead letters',
  alerter: 'turn verdicts from Kafka into deduplicated alerts and serve alert changes (ack, resolve)',
  api: 'serve the read API (alerts) and health endpoints',
};

function makeLogger(config: Config): Logger {
  // Logs go to stderr as JSON lines; stdout carries the live summary.
  return pino({ level: config.log_level, base: { service: 'agentwatch' } }, pino.destination({ fd: 2, sync: false }));
}

/** Drives the demo generator from a simulated clock; returns a stop function. */
function startDemo(pipeline: EmbeddedPipeline, options: RunOptions, logger: Logger): () => Promise<void> {
  const timezone = pipeline.engine().document.timezone;
  const start = demoStartTime(Date.now(), timezone);
  const telemetry = new DemoTelemetry({ start, timezone, agents: options.demoAgents });
  const realStart = Date.now();
  logger.info(
    { timezone, simulated_start: new Date(start).toISOString(), speed: options.demoSpeed, attacks: DEMO_ATTACK_AGENTS.map((a) => a.id) },
    'demo telemetry started',
  );
  let running = true;
  let inFlight: Promise<unknown> = Promise.resolve();
  const timer = setInterval(() => {
    if (!running) return;
    const simNow = start + (Date.now() - realStart) * options.demoSpeed;
    const events = telemetry.eventsUntil(simNow);
    if (events.length > 0) inFlight = pipeline.publishEvents(events);
  }, 100);
  return async () => {
    running = false;
    clearInterval(timer);
    await inFlight;
  };
}

async function runCommand(options: RunOptions, stages: readonly Stage[] = Stages): Promise<void> {
  const config = loadConfig(options.config ?? process.env.AGENTWATCH_CONFIG, process.env, {
    port: options.port,
    host: options.host,
    dataDir: options.dataDir,
    policies: options.policies,
    logLevel: options.logLevel,
  });
  const logger = makeLogger(config);
  const pipeline = await startEmbeddedPipeline(config, { logger, stages });
  const address = await pipeline.listen();
  const out = process.stdout;
  const adapters = [
    config.kafka.brokers.length > 0 ? `Kafka ${config.kafka.brokers.join(',')}` : 'in-process bus',
    config.redis.url === undefined ? 'memory state' : 'Redis state',
    config.clickhouse.url === undefined ? `ClickHouse in ${config.data_dir}` : 'ClickHouse server',
  ].join(', ');
  const what = stages.length === Stages.length ? '' : ` [${stages.join(', ')}]`;
  out.write(`agentwatch ${VERSION}${what} running on ${address} (${adapters})\n`);
  const created = pipeline.createdAdminKey;
  if (created !== undefined) {
    // Shown once, on the terminal only: the log never carries keys.
    out.write(`  admin API key (first start; only its hash is kept, the key is also in ${created.file}):\n    ${created.key}\n`);
  }
  const keyFile = path.join(config.data_dir, 'admin-api-key');
  const auth = `-H "Authorization: Bearer $(cat ${keyFile})"`;
  out.write(`  alerts:  curl -s ${auth} ${address}/v1/alerts\n  ingest:  curl -s ${auth} -XPOST ${address}/v1/events -H 'content-type: application/x-ndjson' --data-binary @events.ndjson\n  docs:    ${address}/docs\n`);
  const stopDemo = options.demo === true ? startDemo(pipeline, options, logger) : undefined;
  if (stopDemo !== undefined) out.write(`  demo:    ${options.demoAgents} normal agents + attacks (${DEMO_ATTACK_AGENTS.map((a) => a.id).join(', ')}), ${options.demoSpeed}× simulated time\n`);

  let previous: SummarySnapshot = pipeline.snapshot();
  let previousAt = Date.now();
  const summary = options.summary
    ? setInterval(() => {
        const current = pipeline.snapshot();
        const now = Date.now();
        const line = formatSummary(previous, current, now - previousAt);
        out.write(out.isTTY ? `\r\x1b[2K${line}` : `${line}\n`);
        previous = current;
        previousAt = now;
      }, 2000)
    : undefined;

  let stopping = false;
  const shutdown = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    if (summary !== undefined) clearInterval(summary);
    if (out.isTTY) out.write('\n');
    logger.info({ signal }, 'shutting down: finishing in-flight batches');
    await stopDemo?.();
    await pipeline.stop();
    logger.info('stopped');
    logger.flush();
    process.exit(0);
  };
  process.once('SIGINT', () => void shutdown('SIGINT'));
  process.once('SIGTERM', () => void shutdown('SIGTERM'));
}

interface ExportRunOptions {
  from: string;
  to: string;
  tenant?: string;
  dir?: string;
  period?: PeriodKind;
  timezone: string;
  config?: string;
  dataDir?: string;
}

/**
 * `agentwatch export run`: exports a range now, one export per tenant with
 * rows (and per period with --period), with a progress line on stderr when
 * it is a terminal. Prints one line per export on stdout.
 */
async function exportRunCommand(options: ExportRunOptions): Promise<void> {
  const config = loadConfig(options.config ?? process.env.AGENTWATCH_CONFIG, process.env, { dataDir: options.dataDir });
  const resolved = resolveExportConfig(config);
  const exportConfig = options.dir === undefined ? resolved : { ...resolved, dir: destinationDir(options.dir) };
  const from = parseTimeArgument(options.from, options.timezone, '--from');
  const to = parseTimeArgument(options.to, options.timezone, '--to');
  const periods: Period[] = options.period === undefined ? [customPeriod(from, to, options.timezone)] : periodsOverlapping(from, to, options.period, options.timezone);

  const err = process.stderr;
  const tty = err.isTTY === true;
  let progressShown = false;
  const clearProgress = (): void => {
    if (progressShown) err.write('\r\x1b[2K');
    progressShown = false;
  };
  const logger: ExportLogger = {
    info: () => undefined,
    warn: (fields, message) => {
      clearProgress();
      err.write(`agentwatch: ${message} ${JSON.stringify(fields)}\n`);
    },
    error: (fields, message) => {
      clearProgress();
      err.write(`agentwatch: ${message} ${JSON.stringify(fields)}\n`);
    },
  };

  const client = openClickHouse(config);
  try {
    await applyMigrations(client, config.clickhouse.database);
    const source = new ClickHouseExportSource(client, config.clickhouse.database);
    const key = loadSigningKey(exportConfig.keyFile, logger);
    // Plan first, so the bar knows the total.
    const plan: { period: Period; tenant: string; rows: number }[] = [];
    for (const period of periods) {
      const tenants = options.tenant === undefined ? await source.tenantsWithRows(period, exportConfig.include_events) : [options.tenant];
      for (const tenant of tenants) plan.push({ period, tenant, rows: tty ? await source.estimateRows(tenant, period, exportConfig.include_events) : 0 });
    }
    const totalRows = plan.reduce((sum, item) => sum + item.rows, 0);
    let rowsBefore = 0;
    let lastDraw = 0;
    const draw = (rows: number, done: number, current: string, force = false): void => {
      if (!tty || (!force && Date.now() - lastDraw < 100)) return;
      lastDraw = Date.now();
      err.write(`\r\x1b[2K${formatProgress({ rows, totalRows, exportsDone: done, exports: plan.length, current }, err.columns > 20 ? err.columns : 100)}`);
      progressShown = true;
    };
    let index = 0;
    for (const item of plan) {
      const label = `${item.tenant} ${item.period.id}`;
      draw(rowsBefore, index, label, true);
      const result = await exportTenantPeriod(item.period, item.tenant, {
        dir: exportConfig.dir,
        source,
        key,
        includeEvents: exportConfig.include_events,
        pageRows: exportConfig.page_rows,
        logger,
        onRows: (_tenant, rows) => draw(rowsBefore + rows, index, label),
      });
      rowsBefore += Object.values(result.rows).reduce((sum, n) => sum + n, 0) - (result.rows['alerts.csv'] ?? 0);
      index++;
      draw(rowsBefore, index, label, true);
      clearProgress();
      const counts = Object.entries(result.rows).map(([file, n]) => `${file.replace(/\.ndjson\.gz$/, '')} ${n}`).join(', ');
      process.stdout.write(`${result.outcome.padEnd(9)} ${result.path}  (${counts})\n`);
    }
    if (plan.length === 0) process.stdout.write('no tenant has rows in the range: nothing exported\n');
  } finally {
    clearProgress();
    await client.close();
  }
}

/** `agentwatch export verify`: prints every problem with its path; exit code 1 when there is one. */
async function exportVerifyCommand(dir: string, options: { publicKey?: string }): Promise<void> {
  let publicKeyPem: string | undefined;
  if (options.publicKey !== undefined) {
    try {
      publicKeyPem = readFileSync(options.publicKey, 'utf8');
    } catch (cause) {
      throw new ExportError('AW_EXPORT_INVALID_CONFIG', `cannot read --public-key ${options.publicKey}: ${(cause as Error).message}`, { cause });
    }
  }
  const report = await verifyExportDir(path.resolve(dir), publicKeyPem === undefined ? {} : { publicKeyPem });
  const out = process.stdout;
  for (const problem of report.problems) out.write(`FAIL ${problem.path}: ${problem.message}\n`);
  const scope = `${report.exports} export(s) of ${report.tenants} tenant(s) in ${dir}`;
  if (report.ok) out.write(`OK   ${scope}: signatures, file hashes, audit chains and export chains verified\n`);
  else out.write(`${report.problems.length} problem(s) in ${scope}\n`);
  if (report.keySource === 'directory') {
    out.write('note: signatures were checked against the public key stored in the directory; pass --public-key with a copy kept elsewhere to rule out a re-signed directory\n');
  }
  if (!report.ok) process.exitCode = 1;
}

/** Builds the command tree; exported for tests of `--help` and argument errors. */
export function buildProgram(): Command {
  const program = new Command('agentwatch')
    .description('Streaming detection pipeline for AI-agent security telemetry')
    .version(VERSION)
    .showHelpAfterError();

  /** Options every process command shares. */
  const withProcessOptions = (command: Command): Command =>
    command
      .option('-p, --port <port>', 'HTTP port (env AGENTWATCH_PORT)', undefined)
      .option('--host <host>', 'interface to listen on (env AGENTWATCH_HOST)', undefined)
      .option('-d, --data-dir <dir>', 'data directory for embedded ClickHouse (env AGENTWATCH_DATA_DIR)', undefined)
      .option('--policies <file>', 'policy document, YAML or JSON (env AGENTWATCH_POLICIES)', undefined)
      .option('-c, --config <file>', 'config file, YAML (env AGENTWATCH_CONFIG)', undefined)
      .option('--log-level <level>', 'fatal|error|warn|info|debug|trace|silent (env AGENTWATCH_LOG_LEVEL)', undefined)
      .option('--no-summary', 'do not print the live summary line')
      .addHelpText(
        'after',
        '\nDefaults: port 8080, data dir ./data, policies policies/default.yaml.\nPrecedence: command line > environment > config file > defaults.',
      );

  withProcessOptions(
    program.command('run').description('run every stage (ingest, detectors, alerting, API) in one process; embedded defaults, or Kafka/Redis when KAFKA_BROKERS/REDIS_URL are set'),
  )
    .option('--demo', 'generate synthetic telemetry: normal agents plus injected attacks')
    .option('--demo-speed <factor>', 'simulated seconds per real second in the demo', positiveNumber, 10)
    .option('--demo-agents <n>', 'normal agents in the demo', positiveNumber, 48)
    .option('--stages <list>', `run only these stages, comma-separated (${Stages.join(', ')}); needs KAFKA_BROKERS`, stageList)
    .action(async (opts: RunOptions) => runCommand(opts, opts.stages ?? Stages));

  for (const stage of Stages) {
    withProcessOptions(program.command(stage).description(`run only the ${stage} stage: ${STAGE_HELP[stage]} (needs KAFKA_BROKERS)`)).action(
      async (opts: RunOptions) => runCommand({ ...opts, demoSpeed: 1, demoAgents: 0 }, [stage]),
    );
  }

  const policies = program.command('policies').description('work with policy documents');
  policies
    .command('validate')
    .description('validate a policy document and print every problem with its path')
    .argument('<file>', 'policy document (YAML or JSON)')
    .action((file: string) => {
      const doc = loadPolicyFile(file);
      process.stdout.write(`${file}: valid — ${doc.policies.length} policies, mode ${doc.mode}, timezone ${doc.timezone}\n`);
    });

  const keys = program.command('keys').description('API keys');
  keys
    .command('create')
    .description('create an API key: prints the key once and the config entry holding only its hash')
    .requiredOption('--role <role>', `${Roles.join(' | ')}`, (value: string) => {
      if (!(Roles as readonly string[]).includes(value)) throw new InvalidArgumentError(`must be one of ${Roles.join(', ')}`);
      return value;
    })
    .option('--id <id>', 'name of the key (recorded as the author of changes)')
    .option('--tenant <tenant>', 'bind the key to one tenant')
    .action((opts: { role: Role; id?: string; tenant?: string }) => {
      const key = generateApiKey();
      // Never derived from the key: the id is logged and shown as the author of changes.
      const id = opts.id ?? `${opts.role}-${randomBytes(4).toString('hex')}`;
      const entry = [`    - id: ${JSON.stringify(id)}`, `      role: ${opts.role}`, ...(opts.tenant === undefined ? [] : [`      tenant: ${JSON.stringify(opts.tenant)}`]), `      hash: ${hashApiKey(key)}`];
      process.stdout.write(`key (shown once, give it to its user): ${key}\n\nadd to the config file under api.keys:\n\napi:\n  keys:\n${entry.join('\n')}\n`);
    });
  const exports = program.command('export').description('signed, hash-chained exports of audit log, verdicts and alerts (scheduled by export.schedules in the config)');
  exports
    .command('run')
    .description('export a range now (backfill): per tenant with rows, one export of the range, or one per day/week/month overlapping it with --period')
    .requiredOption('--from <time>', 'start, inclusive: a date (midnight in --timezone) or an ISO date-time')
    .requiredOption('--to <time>', 'end, exclusive: a date or an ISO date-time')
    .option('--tenant <tenant>', 'only this tenant')
    .option('--dir <dir>', 'export directory or file:// URL (default: export.destination, else <data_dir>/exports)')
    .option('--period <kind>', `split the range into calendar periods (${PeriodKinds.join(', ')}), named and chained like scheduled exports`, (value: string) => {
      if (!(PeriodKinds as readonly string[]).includes(value)) throw new InvalidArgumentError(`must be one of ${PeriodKinds.join(', ')}`);
      return value;
    })
    .option('--timezone <zone>', 'IANA zone of dates without offset and of period boundaries', 'UTC')
    .option('-c, --config <file>', 'config file, YAML (env AGENTWATCH_CONFIG)', undefined)
    .option('-d, --data-dir <dir>', 'data directory for embedded ClickHouse (env AGENTWATCH_DATA_DIR)', undefined)
    .action(async (opts: ExportRunOptions) => exportRunCommand(opts));
  exports
    .command('verify')
    .description('check signatures, file hashes, audit chains and the chain of exports; prints every problem, exit code 1 if any')
    .argument('<dir>', 'export directory')
    .option('--public-key <file>', 'trust only this ed25519 public key (PEM), not the key file in the directory')
    .action(async (dir: string, opts: { publicKey?: string }) => exportVerifyCommand(dir, opts));
  return program;
}

/** Runs the CLI; errors with a code print one clear line and exit 2. */
export async function runCli(argv: readonly string[]): Promise<void> {
  try {
    await buildProgram().parseAsync([...argv]);
  } catch (error) {
    if (error instanceof PolicyValidationError) {
      process.stderr.write(`agentwatch: ${error.source} is not a valid policy document:\n${error.problems.map((p) => `  ${p.path}: ${p.message}`).join('\n')}\n`);
      process.exit(2);
    }
    if (error instanceof AgentwatchError) {
      process.stderr.write(`agentwatch: ${error.message}\n`);
      process.exit(2);
    }
    throw error;
  }
}
