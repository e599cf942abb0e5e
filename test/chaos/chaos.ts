/**
 * The crash test you can run: `npm run chaos -- [--events N] [--consumers C] [--kills K] [--topic T] [--sink server|embedded]`.
 *
 * On PRIVATE instances (Kafka `kafka-chaos` on 19092, ClickHouse server `clickhouse-chaos` on 18123; the shared
 * registry), it produces N events with unique ids (one in ten a late event, 40 days old, so inserts span several
 * ClickHouse partitions) while C `apilog consume` processes run; SIGKILLs a random consumer K times at random
 * moments and starts a new one; restarts the ClickHouse server (SIGKILL) once during the run and the broker (SIGKILL)
 * once after production; waits until the group has committed everything; stops the consumers; then checks in
 * ClickHouse that count() = N, uniqExact(event_id) = N and every offset of every partition is there exactly once.
 *
 * The embedded engine (chdb) allows one process per data directory: that run uses one consumer at a time, killed
 * and restarted (killing it is also the embedded "ClickHouse restart").
 *
 * Last line of output: {"produced": N, "rows": R, "unique": U, "missing": M, "duplicates": D, "kills": K, "sink": "..."}.
 * Exit code 0 only when nothing is missing or doubled.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, mkdirSync, mkdtempSync, openSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command } from 'commander';
import { ensureApiCallsTable } from '../../consumer/apiCallsTable.ts';
import { ChdbSink } from '../../consumer/chdbSink.ts';
import { ClickHouseServerSink } from '../../consumer/clickhouseServerSink.ts';
import { deadLetterTopicFor } from '../../consumer/deadLetters.ts';
import type { Sink } from '../../consumer/sink.ts';
import { ApiCallProducer } from '../../producer/apiCallProducer.ts';
import { SyntheticEvents, prng } from '../../producer/syntheticEvents.ts';
import { ensureTopic } from '../../producer/topic.ts';
import { createKafka } from '../../runtime/kafka.ts';
import { createLogger } from '../../runtime/log.ts';
import type { ApiCallEvent } from '../../schemas/apiCall.ts';
import { SchemaRegistryClient } from '../../schemas/registry.ts';
import { LOCAL_SCHEMA_REGISTRY_URL, PROJECT_ROOT, STACK_DIR, readStackEnv } from '../../stack/endpoints.ts';
import { clickhouseService, kafkaService, type Service } from '../../stack/services.ts';
import { startService, stopService } from '../../stack/stack.ts';

export type ChaosSink = 'server' | 'embedded';

export interface ChaosOptions {
  readonly events: number;
  readonly consumers: number;
  readonly kills: number;
  readonly topic: string;
  readonly sink: ChaosSink;
  readonly partitions: number;
  readonly seed: number;
  /** Seconds over which production is spread (data flows while consumers are killed). */
  readonly produceSeconds: number;
  readonly restartClickHouse: boolean;
  readonly restartKafka: boolean;
  /** Give up waiting for the group to catch up after this long. */
  readonly timeoutSeconds: number;
  readonly registry: string;
  /** Progress lines go here. */
  readonly say: (line: string) => void;
}

export interface ChaosResult {
  produced: number;
  rows: number;
  unique: number;
  missing: number;
  duplicates: number;
  kills: number;
  sink: ChaosSink;
}

export const CHAOS_KAFKA = kafkaService({ id: 'kafka-chaos', port: 19092, controllerPort: 19093 });
export const CHAOS_CLICKHOUSE = clickhouseService({ id: 'clickhouse-chaos', httpPort: 18123, tcpPort: 19000 });

const CRASH_POINTS = ['after-insert', 'before-insert', 'after-insert', 'after-commit'];
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Event ids unique per run and index: `<run>-0000-4000-8000-<index>`. */
function chaosEvents(count: number, seed: number, run: string): ApiCallEvent[] {
  const events = new SyntheticEvents({ seed, apis: 12, startMs: Date.UTC(2026, 9, 1), stepMs: 50 }).take(count);
  for (let i = 0; i < count; i++) {
    const e = events[i]!;
    e.event_id = `${run}-0000-4000-8000-${i.toString(16).padStart(12, '0')}`;
    // Late events: 40 days earlier, another day and month, so one insert becomes several parts.
    if (i % 10 === 3) e.ts -= 40 * 86_400_000;
  }
  return events;
}

/**
 * The consumer processes of a run. A consumer spawned "armed" SIGKILLs itself at a crash point of its own (between
 * insert and commit, before the insert, after the commit): the fleet counts that as a kill and starts a plain one.
 */
class ConsumerFleet {
  private readonly children = new Set<ChildProcess>();
  private readonly stopping = new Set<ChildProcess>();
  private started = 0;
  private closed = false;
  selfKills = 0;
  unexpectedExits = 0;

  constructor(
    private readonly args: string[],
    private readonly logDir: string,
    /** At most this many consumers at once (1 for the embedded engine, which locks its directory). */
    private readonly width: number,
  ) {
    // A run that fails (or is interrupted) must not leave consumers running: they are ours, stopped by pid.
    process.once('exit', () => {
      for (const child of this.children) child.kill('SIGKILL');
    });
  }

  get live(): ChildProcess[] {
    return [...this.children].filter((c) => !this.stopping.has(c));
  }

  /** Starts a consumer unless `width` are already running. */
  spawn(crashAt?: string): ChildProcess | undefined {
    if (this.live.length >= this.width) return undefined;
    const n = this.started++;
    const log = openSync(join(this.logDir, `consumer-${n}${crashAt ? '-armed' : ''}.log`), 'a');
    const args = crashAt ? [...this.args, '--crash-at', crashAt] : this.args;
    const child = spawn(process.execPath, [join(PROJECT_ROOT, 'bin', 'apilog.js'), 'consume', ...args], {
      cwd: PROJECT_ROOT,
      stdio: ['ignore', log, log],
      env: { ...process.env, APILOG_LOG_LEVEL: process.env['APILOG_LOG_LEVEL'] ?? 'info' },
    });
    closeSync(log);
    this.children.add(child);
    child.once('exit', (_code, signal) => {
      this.children.delete(child);
      const byUs = this.stopping.delete(child);
      if (byUs || this.closed || this.unexpectedExits > 20) return;
      // Killed at a crash point (SIGKILL), or died (a bug): either way a supervisor would start a new one.
      if (signal === 'SIGKILL') this.selfKills++;
      else this.unexpectedExits++;
      this.spawn();
    });
    return child;
  }

  /** Sends `signal` to one child (by its pid) and resolves when it has exited. */
  async stop(child: ChildProcess, signal: NodeJS.Signals, graceMs = 20_000): Promise<void> {
    if (child.exitCode !== null || child.signalCode !== null) return;
    this.stopping.add(child);
    const exited = new Promise<void>((r) => child.once('exit', () => r()));
    child.kill(signal);
    const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
    await exited;
    clearTimeout(timer);
  }

  async stopAll(signal: NodeJS.Signals): Promise<void> {
    this.closed = true;
    await Promise.all([...this.children].map((c) => this.stop(c, signal)));
  }
}

async function groupCaughtUp(kafka: ReturnType<typeof createKafka>, groupId: string, topic: string): Promise<{ done: boolean; lag: number }> {
  const admin = kafka.admin();
  try {
    await admin.connect();
    const [high, committed] = await Promise.all([admin.fetchTopicOffsets(topic), admin.fetchOffsets({ groupId, topics: [topic] })]);
    const committedBy = new Map((committed[0]?.partitions ?? []).map((p) => [p.partition, Number(p.offset)]));
    let lag = 0;
    for (const p of high) lag += Number(p.high) - Math.max(0, committedBy.get(p.partition) ?? 0);
    return { done: lag === 0, lag };
  } finally {
    await admin.disconnect();
  }
}

async function highWatermarks(kafka: ReturnType<typeof createKafka>, topic: string): Promise<Map<number, number>> {
  const admin = kafka.admin();
  try {
    await admin.connect();
    return new Map((await admin.fetchTopicOffsets(topic)).map((p) => [p.partition, Number(p.high)]));
  } finally {
    await admin.disconnect();
  }
}

interface Check {
  rows: number;
  unique: number;
  offsetsMissing: number;
  offsetsDuplicated: number;
  outOfRange: number;
}

async function check(sink: Sink, table: string, high: Map<number, number>): Promise<Check> {
  const [totals] = await sink.query<{ rows: string | number; ids: string | number; coords: string | number }>(
    `SELECT count() AS rows, uniqExact(event_id) AS ids, uniqExact(_partition, _offset) AS coords FROM ${table}`,
  );
  const perPartition = await sink.query<{ p: number; n: string | number; u: string | number; hi: string | number }>(
    `SELECT _partition AS p, count() AS n, uniqExact(_offset) AS u, max(_offset) AS hi FROM ${table} GROUP BY p`,
  );
  let offsetsMissing = 0;
  let outOfRange = 0;
  const seen = new Map(perPartition.map((r) => [Number(r.p), r]));
  for (const [partition, hw] of high) {
    const r = seen.get(partition);
    const unique = r ? Number(r.u) : 0;
    offsetsMissing += hw - Math.min(unique, hw);
    if (r && Number(r.hi) >= hw) outOfRange++;
  }
  const rows = Number(totals?.rows ?? 0);
  return { rows, unique: Number(totals?.ids ?? 0), offsetsMissing, offsetsDuplicated: rows - Number(totals?.coords ?? 0), outOfRange };
}

/**
 * What the consumers' JSON logs say happened: records found already stored and skipped on recovery, retries of
 * inserts and of stored-offset reads (ClickHouse down), partitions abandoned on a lost lease.
 */
function evidenceFromLogs(dir: string): Record<string, number> {
  const out = { skippedStoredOnRecovery: 0, insertRetries: 0, storedOffsetRetries: 0, commitRetries: 0, partitionsAbandoned: 0 };
  for (const file of readdirSync(dir)) {
    for (const line of readFileSync(join(dir, file), 'utf8').split('\n')) {
      if (!line.startsWith('{')) continue;
      let entry: { msg?: string; count?: number; operation?: string };
      try {
        entry = JSON.parse(line) as typeof entry;
      } catch (error) {
        if (error instanceof SyntaxError) continue; // a line cut short by SIGKILL
        throw error;
      }
      if (entry.msg === 'records already stored in ClickHouse: skipped') out.skippedStoredOnRecovery += entry.count ?? 0;
      else if (entry.msg === 'retrying' && entry.operation === 'insert') out.insertRetries++;
      else if (entry.msg === 'retrying' && entry.operation === 'stored-offsets') out.storedOffsetRetries++;
      else if (entry.msg === 'retrying' && entry.operation === 'commit') out.commitRetries++;
      else if (entry.msg === 'partition abandoned') out.partitionsAbandoned++;
    }
  }
  return out;
}

/** Runs the chaos scenario against private Kafka (and ClickHouse server) instances, which must be started. */
export async function runChaos(o: ChaosOptions): Promise<ChaosResult & { details: Record<string, unknown> }> {
  const t0 = Date.now();
  const run = randomBytes(4).toString('hex');
  const rand = prng(o.seed);
  const logger = createLogger('apilog-chaos', 'silent');
  const kafka = createKafka({ brokers: [CHAOS_KAFKA.endpoint], clientId: 'apilog-chaos', logger });
  const topic = o.topic;
  const group = `chaos-${run}`;
  const table = `chaos_${run}`;
  const logDir = join(STACK_DIR, 'logs', `chaos-${run}`);
  mkdirSync(logDir, { recursive: true });
  await ensureTopic(kafka, { topic, partitions: o.partitions });
  await ensureTopic(kafka, { topic: deadLetterTopicFor(topic), partitions: 1 });

  let chdbDir: string | undefined;
  let clickhouse: string;
  if (o.sink === 'server') {
    clickhouse = CHAOS_CLICKHOUSE.endpoint;
    const sink = new ClickHouseServerSink({ url: clickhouse });
    await ensureApiCallsTable(sink, table);
    await sink.close();
  } else {
    chdbDir = mkdtempSync(join(tmpdir(), 'apilog-chaos-chdb-'));
    clickhouse = chdbDir;
  }
  const width = o.sink === 'embedded' ? 1 : o.consumers;
  const fleet = new ConsumerFleet(
    [
      '--brokers', CHAOS_KAFKA.endpoint, '--registry', o.registry, '--clickhouse', clickhouse, '--topic', topic,
      '--group', group, '--table', table, '--metrics-port', '0',
      ...(o.sink === 'embedded' ? ['--create-table'] : []),
      // Small sessions so a killed member is noticed quickly; small batches so kills land mid-stream.
      '--session-timeout-ms', '6000', '--heartbeat-interval-ms', '1000', '--rebalance-timeout-ms', '20000',
      '--batch-rows', '4000', '--batch-age-ms', '300', '--shutdown-deadline-ms', '15000',
    ],
    logDir,
    width,
  );
  for (let i = 0; i < width; i++) fleet.spawn();
  o.say(`chaos ${run}: ${o.events} events → ${topic} (${o.partitions} partitions), ${width} consumer(s), ${o.kills} kills, sink ${o.sink}; logs in ${logDir}`);

  // Production, paced over produceSeconds, concurrently with the kills.
  const events = chaosEvents(o.events, o.seed, run);
  const producing = (async () => {
    const producer = new ApiCallProducer({ kafka, registry: new SchemaRegistryClient({ url: o.registry }), topic });
    await producer.connect();
    const chunk = 500;
    const chunks = Math.ceil(o.events / chunk);
    const pause = (o.produceSeconds * 1000) / chunks;
    for (let i = 0; i < o.events; i += chunk) {
      await producer.send(events.slice(i, i + chunk));
      await sleep(pause);
    }
    await producer.disconnect();
  })();

  let kills = 0;
  let clickhouseRestarts = 0;
  let kafkaRestarts = 0;
  const killWindowMs = Math.max(o.produceSeconds * 1000, o.kills * 2500);
  const gap = killWindowMs / (o.kills + 1);
  if (o.restartClickHouse && o.sink === 'server') {
    // While rows are flowing (not during a rebalance stall after a kill), so the restart lands on inserts.
    const sink = new ClickHouseServerSink({ url: clickhouse });
    const until = Date.now() + 30_000;
    const target = Math.min(2000, Math.floor(o.events / 10));
    while (Date.now() < until && Number((await sink.query<{ n: string }>(`SELECT count() AS n FROM ${table}`))[0]?.n ?? 0) < target) await sleep(100);
    await sink.close();
    o.say('  restarting the ClickHouse server (SIGKILL) while rows flow');
    await stopService(CHAOS_CLICKHOUSE, 'SIGKILL');
    await sleep(1000);
    await startService(CHAOS_CLICKHOUSE, { verbose: false });
    clickhouseRestarts++;
  }
  for (let k = 0; k < o.kills; k++) {
    await sleep(gap * (0.5 + rand()));
    const live = fleet.live;
    const victim = live[Math.floor(rand() * live.length)];
    if (victim !== undefined) {
      await fleet.stop(victim, 'SIGKILL');
      kills++;
      if (o.sink === 'embedded') clickhouseRestarts++; // the engine lives in the consumer process
      await sleep(rand() * 800);
      // Every other replacement is armed: it kills itself at a crash point, so those points are hit for sure.
      fleet.spawn(k % 2 === 0 ? `${CRASH_POINTS[(k / 2) % CRASH_POINTS.length]}:0.25` : undefined);
    }
  }
  await producing;
  o.say(`  produced ${o.events} in ${((Date.now() - t0) / 1000).toFixed(1)} s; ${kills} kills so far`);
  if (o.restartKafka) {
    o.say('  restarting the Kafka broker (SIGKILL)');
    await stopService(CHAOS_KAFKA, 'SIGKILL');
    await sleep(500);
    await startService(CHAOS_KAFKA, { verbose: false });
    kafkaRestarts++;
  }
  const high = await highWatermarks(kafka, topic);
  const inTopic = [...high.values()].reduce((a, b) => a + b, 0);
  const deadline = Date.now() + o.timeoutSeconds * 1000;
  let lag = -1;
  for (;;) {
    const state = await groupCaughtUp(kafka, group, topic).catch(() => ({ done: false, lag: -1 }));
    lag = state.lag;
    if (state.done || Date.now() > deadline) break;
    await sleep(1000);
  }
  o.say(`  group ${lag === 0 ? 'caught up' : `still lagging by ${lag}`} after ${((Date.now() - t0) / 1000).toFixed(1)} s; stopping consumers`);
  await fleet.stopAll('SIGTERM');

  const sink: Sink = o.sink === 'server' ? new ClickHouseServerSink({ url: clickhouse }) : new ChdbSink(chdbDir!);
  let c: Check;
  try {
    c = await check(sink, table, high);
  } finally {
    await sink.close();
  }
  if (chdbDir) rmSync(chdbDir, { recursive: true, force: true });
  const result: ChaosResult = {
    produced: o.events,
    rows: c.rows,
    unique: c.unique,
    missing: Math.max(o.events - c.unique, c.offsetsMissing),
    duplicates: Math.max(c.rows - c.unique, c.offsetsDuplicated),
    kills: kills + fleet.selfKills,
    sink: o.sink,
  };
  const evidence = evidenceFromLogs(logDir);
  const details = {
    ...evidence,
    killedFromOutside: kills,
    killedAtCrashPoints: fleet.selfKills,
    consumerExits: fleet.unexpectedExits,
    topicMessages: inTopic,
    offsetsMissing: c.offsetsMissing,
    offsetsDuplicated: c.offsetsDuplicated,
    offsetsOutOfRange: c.outOfRange,
    clickhouseRestarts,
    kafkaRestarts,
    finalLag: lag,
    seconds: Math.round((Date.now() - t0) / 100) / 10,
    logs: logDir,
  };
  return { ...result, details };
}

async function main(argv: string[]): Promise<number> {
  const program = new Command('chaos')
    .description('kill consumers, ClickHouse and Kafka while events flow; check every event landed exactly once')
    .option('--events <n>', 'events to produce', (v) => Number(v), 100_000)
    .option('--consumers <n>', 'concurrent consumer processes (server sink; the embedded sink runs one)', (v) => Number(v), 3)
    .option('--kills <n>', 'SIGKILLs of consumer processes', (v) => Number(v), 12)
    .option('--topic <name>', 'topic (created on the private broker)', `chaos-${Date.now().toString(36)}`)
    .option('--sink <kind>', 'server (ClickHouse server over HTTP) or embedded (chdb)', 'server')
    .option('--partitions <n>', 'partitions of the topic', (v) => Number(v), 6)
    .option('--seed <n>', 'random seed (kill timing, events)', (v) => Number(v), Date.now() % 100_000)
    .option('--produce-seconds <n>', 'spread production over this long', (v) => Number(v), 30)
    .option('--no-clickhouse-restart', 'do not restart the ClickHouse server')
    .option('--no-kafka-restart', 'do not restart the broker')
    .option('--timeout <seconds>', 'give up waiting for the group after this long', (v) => Number(v), 300)
    .option('--keep-services', 'leave the private Kafka and ClickHouse running afterwards', false);
  program.parse(argv, { from: 'user' });
  const f = program.opts<{
    events: number; consumers: number; kills: number; topic: string; sink: string; partitions: number; seed: number;
    produceSeconds: number; clickhouseRestart: boolean; kafkaRestart: boolean; timeout: number; keepServices: boolean;
  }>();
  if (f.sink !== 'server' && f.sink !== 'embedded') throw new Error(`--sink must be server or embedded, not ${f.sink}`);
  for (const [name, v] of Object.entries({ events: f.events, consumers: f.consumers, partitions: f.partitions, timeout: f.timeout })) {
    if (!Number.isInteger(v) || v <= 0) throw new Error(`--${name} must be a positive integer`);
  }
  const say = (line: string) => process.stderr.write(`${line}\n`);
  const services: Service[] = f.sink === 'server' ? [CHAOS_KAFKA, CHAOS_CLICKHOUSE] : [CHAOS_KAFKA];
  for (const s of services) await startService(s, { verbose: false });
  try {
    const result = await runChaos({
      events: f.events, consumers: f.consumers, kills: f.kills, topic: f.topic, sink: f.sink, partitions: f.partitions,
      seed: f.seed, produceSeconds: f.produceSeconds, restartClickHouse: f.clickhouseRestart, restartKafka: f.kafkaRestart,
      timeoutSeconds: f.timeout, registry: process.env['SCHEMA_REGISTRY_URL'] ?? readStackEnv()?.SCHEMA_REGISTRY_URL ?? LOCAL_SCHEMA_REGISTRY_URL, say,
    });
    const { details, ...line } = result;
    say(`  details: ${JSON.stringify(details)}`);
    process.stdout.write(`${JSON.stringify(line)}\n`);
    return line.missing === 0 && line.duplicates === 0 && line.rows === line.produced ? 0 : 1;
  } finally {
    if (!f.keepServices) for (const s of [...services].reverse()) await stopService(s, 'SIGTERM');
  }
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === resolve(process.argv[1])) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (error: unknown) => {
      process.stderr.write(`chaos: ${error instanceof Error ? error.message : String(error)}\n`);
      process.exit(2);
    },
  );
}
