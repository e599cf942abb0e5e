/**
 * The crash test you can run:
 * `npm run chaos -- [--events N] [--consumers C] [--kills K] [--stalls S] [--pauses P] [--sink server|embedded] …`.
 *
 * On PRIVATE instances (Kafka `kafka-chaos` on 19092, ClickHouse server `clickhouse-chaos` on 18123; the shared
 * registry), it produces N events with unique ids (one in ten a late event, 40 days old, so inserts span several
 * ClickHouse partitions) and a few undecodable records among them, while C `apilog consume` processes run. Faults,
 * on one timeline so that they overlap:
 * - kills: a random consumer SIGKILLed (K times), a new one started; every other replacement SIGKILLs itself at a
 *   crash point (before its intent, before or after its insert, after its commit);
 * - stalls: ClickHouse frozen (SIGSTOP) for longer than the insert timeout and the rebalance timeout, then resumed;
 *   during each stall one consumer is paused and another killed (the embedded engine lives in the consumer: a stall
 *   freezes that process);
 * - pauses: a consumer frozen (SIGSTOP) past the session timeout, then resumed;
 * - the ClickHouse server SIGKILLed and restarted once while rows flow, the broker once after production: each
 *   proven by a new pid (and the server's uptime).
 * Then it waits until the group has committed everything, stops the consumers, and checks: every offset of every
 * partition is stored once or dead-lettered (none out of range), every undecodable record is on the dead-letter
 * topic, and (where the table has rollups: the embedded engine's current series) every rollup equals the aggregates
 * of the raw rows group by group.
 *
 * Last line of output: {"produced","rows","unique","missing","duplicates","kills","stalls","pauses",
 * "rollup_mismatch","dead_letters_missing","sink"} (rollup_mismatch is null where there are no rollups).
 * Exit code 0 only when nothing is missing, doubled or out of range, every fault happened as asked, and the
 * rollups and dead letters are right.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, mkdirSync, mkdtempSync, openSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command } from 'commander';
import type { Kafka } from 'kafkajs';
import { ensureApiCallsTable, isLegacyServer } from '../../clickhouse/apiCallsTable.ts';
import { openSink } from '../../clickhouse/openSink.ts';
import { ClickHouseServerSink } from '../../clickhouse/serverSink.ts';
import { deadLetterTopicFor } from '../../consumer/deadLetters.ts';
import type { Sink } from '../../clickhouse/sink.ts';
import { ApiCallProducer } from '../../producer/apiCallProducer.ts';
import { SyntheticEvents, prng } from '../../producer/syntheticEvents.ts';
import { ensureTopic } from '../../producer/topic.ts';
import { createKafka } from '../../runtime/kafka.ts';
import { createLogger } from '../../runtime/log.ts';
import type { ApiCallEvent } from '../../schemas/apiCall.ts';
import { SchemaRegistryClient } from '../../schemas/registry.ts';
import { LOCAL_SCHEMA_REGISTRY_URL, PROJECT_ROOT, STACK_DIR, readStackEnv } from '../../stack/endpoints.ts';
import { livePid } from '../../stack/processes.ts';
import { clickhouseService, kafkaService, pidFileOf, type Service } from '../../stack/services.ts';
import { downCluster, startService, statusCluster, stopService, upCluster } from '../../stack/stack.ts';
import { clusterStack } from '../../stack/cluster.ts';
import { checkRollups, totalMismatch } from '../rollupCheck.ts';
import { ClusterFaults } from './clusterFaults.ts';

export type ChaosSink = 'server' | 'embedded';

export interface ChaosOptions {
  readonly events: number;
  readonly consumers: number;
  readonly kills: number;
  /** ClickHouse frozen for longer than the insert and rebalance timeouts. */
  readonly stalls: number;
  /** A consumer frozen past the session timeout. */
  readonly pauses: number;
  readonly topic: string;
  readonly sink: ChaosSink;
  readonly partitions: number;
  readonly seed: number;
  /** Seconds over which production is spread (data flows while consumers are killed). */
  readonly produceSeconds: number;
  readonly restartClickHouse: boolean;
  readonly restartKafka: boolean;
  /**
   * On the local cluster (stack/cluster.ts, which must run) instead of the private single instances: three brokers,
   * two ClickHouse replicas; the single instances' restarts give way to these cluster faults.
   */
  readonly cluster?: ClusterFaultsAsked;
  /** The consumers' rebalance timeout; stalls last longer. @default 20000 */
  readonly rebalanceTimeoutMs?: number;
  /** Undecodable records produced among the events. @default max(5, events / 2000) */
  readonly garbage?: number;
  /** Give up waiting for the group to catch up after this long. */
  readonly timeoutSeconds: number;
  readonly registry: string;
  /** Progress lines go here. */
  readonly say: (line: string) => void;
}

export interface ClusterFaultsAsked {
  /** A partition leader broker SIGKILLed and started again, during production. */
  readonly leaderKills: number;
  /** A ClickHouse replica SIGKILLed while rows flow into it, and started again (r1, r2, r1, …). */
  readonly replicaKills: number;
  /** ZooKeeper SIGKILLed and started again. */
  readonly zookeeperRestarts: number;
}

export interface ChaosResult {
  produced: number;
  rows: number;
  unique: number;
  missing: number;
  duplicates: number;
  kills: number;
  stalls: number;
  pauses: number;
  /** Rollup groups that differ from the raw rows' aggregates; null where the table has no rollups (18.16). */
  rollup_mismatch: number | null;
  /** Undecodable records not found on the dead-letter topic. */
  dead_letters_missing: number;
  sink: ChaosSink;
  /** The cluster's faults, proven by new pids (cluster runs only). */
  leader_kills?: number;
  replica_kills?: number;
  zookeeper_restarts?: number;
}

export const CHAOS_KAFKA = kafkaService({ id: 'kafka-chaos', port: 19092, controllerPort: 19093 });
export const CHAOS_CLICKHOUSE = clickhouseService({ id: 'clickhouse-chaos', httpPort: 18123, tcpPort: 19000 });

const CRASH_POINTS = ['after-insert', 'before-insert', 'before-intent', 'after-commit'];
const SESSION_TIMEOUT_MS = 6000;
/** A consumer is hit by faults only once it has been up this long (and has had partitions assigned). */
const VICTIM_MIN_AGE_MS = 3000;
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const pidOf = (service: Service) => livePid(pidFileOf(service.id), service.marker);

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
  private readonly paused = new Set<ChildProcess>();
  /** Consumers that will SIGKILL themselves at a crash point: spared by the random kills so that they get there. */
  private readonly armed = new Set<ChildProcess>();
  private readonly bornAt = new Map<ChildProcess, number>();
  private readonly logOf = new Map<ChildProcess, string>();
  private started = 0;
  private closed = false;
  selfKills = 0;
  unexpectedExits = 0;
  /** For each unexpected exit, the consumer's log file and its last error line. */
  readonly exitReasons: string[] = [];

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

  /** Whether a consumer has been up for a while and has had partitions assigned (it says so in its log). */
  private grown(child: ChildProcess, now: number): boolean {
    if (now - (this.bornAt.get(child) ?? now) < VICTIM_MIN_AGE_MS) return false;
    const log = this.logOf.get(child);
    return log !== undefined && readFileSync(log, 'utf8').includes('"msg":"partitions assigned"');
  }

  /** Consumers a fault may hit: live, not paused, and working (a fault on a process still starting tests little). */
  get running(): ChildProcess[] {
    const now = Date.now();
    return this.live.filter((c) => !this.paused.has(c) && this.grown(c, now));
  }

  /**
   * Working and not armed, paused or not (random kills pick from these, when there are any; a process frozen by a
   * stall or a pause can be killed too).
   */
  get unarmed(): ChildProcess[] {
    const now = Date.now();
    const grown = this.live.filter((c) => this.grown(c, now));
    const list = grown.filter((c) => !this.armed.has(c));
    return list.length > 0 ? list : grown;
  }

  /** Starts a consumer unless `width` are already running. */
  spawn(crashAt?: string): ChildProcess | undefined {
    if (this.closed || this.live.length >= this.width) return undefined;
    const n = this.started++;
    const logFile = join(this.logDir, `consumer-${n}${crashAt ? '-armed' : ''}.log`);
    const log = openSync(logFile, 'a');
    const args = crashAt ? [...this.args, '--crash-at', crashAt] : this.args;
    const child = spawn(process.execPath, [join(PROJECT_ROOT, 'bin', 'apilog.js'), 'consume', ...args], {
      cwd: PROJECT_ROOT,
      stdio: ['ignore', log, log],
      env: { ...process.env, APILOG_LOG_LEVEL: process.env['APILOG_LOG_LEVEL'] ?? 'info' },
    });
    closeSync(log);
    this.children.add(child);
    if (crashAt) this.armed.add(child);
    this.bornAt.set(child, Date.now());
    this.logOf.set(child, logFile);
    child.once('exit', (code, signal) => {
      this.children.delete(child);
      this.paused.delete(child);
      this.armed.delete(child);
      this.bornAt.delete(child);
      this.logOf.delete(child);
      const byUs = this.stopping.delete(child);
      if (byUs || this.closed || this.unexpectedExits > 20) return;
      // Killed at a crash point (SIGKILL), or died (a bug): either way a supervisor would start a new one.
      if (signal === 'SIGKILL') this.selfKills++;
      else {
        this.unexpectedExits++;
        // Why, in the run's output: CI keeps the output, not the logs.
        const said = readFileSync(logFile, 'utf8').split('\n').filter((l) => l.startsWith('apilog:') || l.includes('"level":50'));
        this.exitReasons.push(`${logFile.split('/').pop()} exited (code ${code}, signal ${signal}): ${(said.at(-1) ?? 'nothing logged').slice(0, 600)}`);
      }
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
    if (this.paused.delete(child)) child.kill('SIGCONT'); // a frozen process cannot act on SIGTERM
    const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
    await exited;
    clearTimeout(timer);
  }

  /** Freezes a child for `ms` (SIGSTOP, then SIGCONT), unless it exits meanwhile. */
  async pause(child: ChildProcess, ms: number): Promise<void> {
    this.paused.add(child);
    child.kill('SIGSTOP');
    await sleep(ms);
    if (this.paused.delete(child) && child.exitCode === null && child.signalCode === null) child.kill('SIGCONT');
  }

  async stopAll(signal: NodeJS.Signals): Promise<void> {
    this.closed = true;
    await Promise.all([...this.children].map((c) => this.stop(c, signal)));
  }
}

async function groupCaughtUp(kafka: Kafka, groupId: string, topic: string): Promise<{ done: boolean; lag: number }> {
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

async function highWatermarks(kafka: Kafka, topic: string): Promise<Map<number, number>> {
  const admin = kafka.admin();
  try {
    await admin.connect();
    return new Map((await admin.fetchTopicOffsets(topic)).map((p) => [p.partition, Number(p.high)]));
  } finally {
    await admin.disconnect();
  }
}

/** Every record of a topic: its value and headers (read until each partition's end, as it is now). */
async function readTopic(kafka: Kafka, topic: string): Promise<{ value: Buffer | null; headers: Record<string, string> }[]> {
  const high = await highWatermarks(kafka, topic);
  const total = [...high.values()].reduce((a, b) => a + b, 0);
  const out: { value: Buffer | null; headers: Record<string, string> }[] = [];
  if (total === 0) return out;
  const consumer = kafka.consumer({ groupId: `chaos-read-${randomBytes(4).toString('hex')}` });
  await consumer.connect();
  try {
    await consumer.subscribe({ topic, fromBeginning: true });
    await consumer.run({
      eachMessage: async ({ message }) => {
        const headers: Record<string, string> = {};
        for (const [k, v] of Object.entries(message.headers ?? {})) headers[k] = String(v);
        out.push({ value: message.value, headers });
      },
    });
    const deadline = Date.now() + 60_000;
    while (out.length < total && Date.now() < deadline) await sleep(200);
  } finally {
    await consumer.disconnect();
  }
  return out;
}

interface Check {
  rows: number;
  unique: number;
  offsetsMissing: number;
  offsetsDuplicated: number;
  outOfRange: number;
  /** Offsets both stored and dead-lettered. */
  storedAndLettered: number;
}

/**
 * Offsets per partition: each of [0, high) stored once or dead-lettered (`lettered`, by partition), none beyond.
 */
async function check(sink: Sink, table: string, high: Map<number, number>, lettered: Map<number, Set<number>>): Promise<Check> {
  const [totals] = await sink.query<{ rows: string | number; ids: string | number; coords: string | number }>(
    `SELECT count() AS rows, uniqExact(event_id) AS ids, uniqExact(_partition, _offset) AS coords FROM ${table}`,
  );
  const perPartition = await sink.query<{ p: number; u: string | number; hi: string | number }>(
    `SELECT _partition AS p, uniqExact(_offset) AS u, max(_offset) AS hi FROM ${table} GROUP BY p`,
  );
  let offsetsMissing = 0;
  let outOfRange = 0;
  let storedAndLettered = 0;
  const seen = new Map(perPartition.map((r) => [Number(r.p), r]));
  for (const [partition, hw] of high) {
    const r = seen.get(partition);
    const letters = lettered.get(partition) ?? new Set<number>();
    const unique = r ? Number(r.u) : 0;
    offsetsMissing += Math.max(0, hw - unique - letters.size);
    if (r && Number(r.hi) >= hw) outOfRange++;
    if (letters.size > 0) {
      const [both] = await sink.query<{ n: string | number }>(
        `SELECT count() AS n FROM ${table} WHERE _partition = ${partition} AND _offset IN (${[...letters].join(',')})`,
      );
      storedAndLettered += Number(both?.n ?? 0);
    }
  }
  for (const partition of seen.keys()) if (!high.has(partition)) outOfRange++;
  const rows = Number(totals?.rows ?? 0);
  return { rows, unique: Number(totals?.ids ?? 0), offsetsMissing, offsetsDuplicated: rows - Number(totals?.coords ?? 0), outOfRange, storedAndLettered };
}

/**
 * What the consumers' JSON logs say happened: records found already stored and skipped on recovery, retries (of
 * inserts, stored-offset reads, commits, fences), partitions abandoned, recoveries by ledger kind, batches sent again,
 * moves to another ClickHouse replica.
 */
function evidenceFromLogs(dir: string): Record<string, number> {
  const out = {
    skippedStoredOnRecovery: 0, insertRetries: 0, storedOffsetRetries: 0, commitRetries: 0, fenceRetries: 0, partitionsAbandoned: 0,
    recoveredClean: 0, recoveredFromIntent: 0, recoveredByScan: 0, batchesSentAgain: 0, replicaSwitches: 0,
  };
  for (const file of readdirSync(dir)) {
    for (const line of readFileSync(join(dir, file), 'utf8').split('\n')) {
      if (!line.startsWith('{')) continue;
      let entry: { msg?: string; count?: number; operation?: string; ledger?: string; reformTo?: number };
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
      else if (entry.msg === 'retrying' && entry.operation === 'fence') out.fenceRetries++;
      else if (entry.msg === 'partition abandoned') out.partitionsAbandoned++;
      else if (entry.msg === 'ClickHouse: requests move to another replica') out.replicaSwitches++;
      else if (entry.msg === 'partition recovered from ClickHouse') {
        if (entry.ledger === 'clean') out.recoveredClean++;
        else if (entry.ledger === 'intent') out.recoveredFromIntent++;
        else out.recoveredByScan++;
        if (entry.reformTo !== undefined) out.batchesSentAgain++;
      }
    }
  }
  return out;
}

/** One fault at a time offset from the start of the fault window. */
interface Fault {
  readonly at: number;
  readonly run: () => Promise<void>;
}

/** Runs the chaos scenario against private Kafka (and ClickHouse server) instances, which must be started. */
export async function runChaos(o: ChaosOptions): Promise<ChaosResult & { details: Record<string, unknown> }> {
  const t0 = Date.now();
  const run = randomBytes(4).toString('hex');
  const rand = prng(o.seed);
  const logger = createLogger('apilog-chaos', 'silent');
  const cluster = o.cluster ? clusterStack() : undefined;
  if (cluster && o.sink !== 'server') throw new Error('--cluster runs the server sink (the replicas of a shard)');
  const brokers = cluster ? [...cluster.endpoints.brokers] : [CHAOS_KAFKA.endpoint];
  const kafka = createKafka({ brokers, clientId: 'apilog-chaos', logger });
  const topic = o.topic;
  const group = `chaos-${run}`;
  const table = `chaos_${run}`;
  const logDir = join(STACK_DIR, 'logs', `chaos-${run}`);
  const rebalanceTimeoutMs = o.rebalanceTimeoutMs ?? 20_000;
  const garbage = o.garbage ?? Math.max(5, Math.floor(o.events / 2000));
  mkdirSync(logDir, { recursive: true });
  await ensureTopic(kafka, { topic, partitions: o.partitions });
  await ensureTopic(kafka, { topic: deadLetterTopicFor(topic), partitions: 1 });

  let chdbDir: string | undefined;
  let clickhouse: string;
  if (o.sink === 'server') {
    // The cluster's replicas take the replicated series (every replica, one ZooKeeper path).
    clickhouse = cluster ? cluster.endpoints.clickhouse.join(',') : CHAOS_CLICKHOUSE.endpoint;
    const sink = await openSink(clickhouse);
    await ensureApiCallsTable(sink, table);
    await sink.close();
  } else {
    chdbDir = mkdtempSync(join(tmpdir(), 'apilog-chaos-chdb-'));
    clickhouse = chdbDir;
  }
  const admin = kafka.admin();
  await admin.connect();
  const clusterFaults = cluster ? new ClusterFaults(cluster, admin, topic, table, rand, o.say) : undefined;
  const width = o.sink === 'embedded' ? 1 : o.consumers;
  const fleet = new ConsumerFleet(
    [
      '--brokers', brokers.join(','), '--registry', o.registry, '--clickhouse', clickhouse, '--topic', topic,
      '--group', group, '--table', table, '--metrics-port', '0',
      ...(o.sink === 'embedded' ? ['--create-table'] : []),
      // Small sessions so a killed member is noticed quickly; small batches so kills land mid-stream. ClickHouse
      // requests give up after half the rebalance timeout (the consumer's default).
      '--session-timeout-ms', String(SESSION_TIMEOUT_MS), '--heartbeat-interval-ms', '1000', '--rebalance-timeout-ms', String(rebalanceTimeoutMs),
      '--batch-rows', '4000', '--batch-age-ms', '300', '--shutdown-deadline-ms', '15000',
    ],
    logDir,
    width,
  );
  for (let i = 0; i < width; i++) fleet.spawn();
  o.say(
    `chaos ${run}: ${o.events} events (+${garbage} undecodable) → ${topic} (${o.partitions} partitions), ${width} consumer(s), ` +
      `${o.kills} kills, ${o.stalls} stalls, ${o.pauses} pauses, sink ${o.sink}` +
      (o.cluster ? `, cluster: ${o.cluster.leaderKills} leader kills, ${o.cluster.replicaKills} replica kills, ${o.cluster.zookeeperRestarts} ZooKeeper restarts` : '') +
      `; logs in ${logDir}`,
  );

  // Production, paced over produceSeconds, concurrently with the faults; undecodable records in between.
  let producerRetries = 0;
  let produced = 0;
  let productionOver = false;
  const events = chaosEvents(o.events, o.seed, run);
  const garbageIds = Array.from({ length: garbage }, (_, i) => `chaos-garbage-${run}-${i}`);
  const producing = (async () => {
    try {
      await produceAll();
    } finally {
      productionOver = true;
    }
  })();
  async function produceAll(): Promise<void> {
    const producer = new ApiCallProducer({ kafka, registry: new SchemaRegistryClient({ url: o.registry }), topic });
    await producer.connect();
    const raw = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
    await raw.connect();
    const chunk = 500;
    const chunks = Math.ceil(o.events / chunk);
    const pause = (o.produceSeconds * 1000) / chunks;
    let g = 0;
    for (let c = 0; c < chunks; c++) {
      await producer.send(events.slice(c * chunk, (c + 1) * chunk));
      produced = Math.min(o.events, (c + 1) * chunk);
      // Spread the undecodable records over the run: no magic byte, dead-letter material.
      while (g < garbage && g * chunks <= c * garbage) await sendGarbage(g++);
      await sleep(pause);
    }
    for (; g < garbage; g++) await sendGarbage(g);
    producerRetries += producer.retries;
    await raw.disconnect();
    await producer.disconnect();

    /** One undecodable record (one partition: one request), sent again until acknowledged, as a leader may be gone. */
    async function sendGarbage(i: number): Promise<void> {
      const message = { key: `api-${i % 12}`, value: Buffer.from(garbageIds[i]!) };
      for (let attempt = 0; ; attempt++) {
        try {
          await raw.send({ topic, acks: -1, messages: [message] });
          return;
        } catch (error) {
          if (attempt >= 60) throw error;
          producerRetries++;
          await sleep(1000);
        }
      }
    }
  }

  let kills = 0;
  let stalls = 0;
  let pauses = 0;
  let clickhouseRestarts = 0;
  let kafkaRestarts = 0;
  let stalled: number | undefined; // the ClickHouse server pid while it is frozen
  process.once('exit', () => {
    if (stalled !== undefined) process.kill(stalled, 'SIGCONT');
  });
  const pauseMs = SESSION_TIMEOUT_MS + 4000;
  // Longer than the consumers' ClickHouse timeout (half the rebalance timeout) and than the rebalance timeout.
  const stallMs = rebalanceTimeoutMs + 4000;
  const pick = <T>(list: readonly T[]): T | undefined => list[Math.floor(rand() * list.length)];

  /**
   * A consumer from `list()`, waiting for one while another fault has just killed or frozen the only one: up to a
   * stall and a pause back to back and 30 s more (with the embedded sink's single consumer, a stall that waited only
   * 30 s behind another stall's 24 s freeze and the kill after it was sometimes dropped, and the run failed its count).
   */
  const victimOf = async (list: () => ChildProcess[]): Promise<ChildProcess | undefined> => {
    for (let i = 0; i < (stallMs + pauseMs + 30_000) / 100; i++) {
      const victim = pick(list());
      if (victim !== undefined) return victim;
      await sleep(100);
    }
    return undefined;
  };
  const kill = async (armed: boolean) => {
    const victim = await victimOf(() => fleet.unarmed);
    if (victim === undefined) return;
    await fleet.stop(victim, 'SIGKILL');
    kills++;
    await sleep(rand() * 800);
    // Every other replacement is armed: it kills itself at a crash point, so those points are hit for sure.
    fleet.spawn(armed ? `${CRASH_POINTS[kills % CRASH_POINTS.length]}:0.5` : undefined);
  };
  const pauseOne = async () => {
    const victim = await victimOf(() => fleet.running);
    if (victim === undefined) return;
    pauses++;
    await fleet.pause(victim, pauseMs);
  };
  const stall = async () => {
    if (o.sink === 'embedded') {
      // The engine runs inside the consumer: freeze that process past the rebalance timeout, then kill it soon
      // after it resumes (recovering from the freeze).
      const victim = await victimOf(() => fleet.running);
      if (victim === undefined) return;
      stalls++;
      await fleet.pause(victim, stallMs);
      await sleep(1000 + rand() * 2000);
      if (victim.exitCode === null && victim.signalCode === null) await fleet.stop(victim, 'SIGKILL').then(() => void kills++).then(() => fleet.spawn());
      return;
    }
    if (clusterFaults) await clusterFaults.exclusive(() => freeze(clusterFaults.stallTarget()));
    else await freeze(CHAOS_CLICKHOUSE);
  };
  /** The ClickHouse server `server` frozen past the timeouts, a consumer paused and another killed meanwhile. */
  const freeze = async (server: Service) => {
    const pid = pidOf(server);
    if (pid === undefined) throw new Error(`${server.id} is not running: cannot stall it`);
    stalled = pid;
    process.kill(pid, 'SIGSTOP');
    stalls++;
    o.say(`  ${server.id} frozen for ${stallMs} ms (SIGSTOP)`);
    // Overlapping faults: a consumer paused, another killed while their inserts wait at the frozen server.
    const overlap = (async () => {
      await sleep(1500);
      const paused = pauseOne();
      await sleep(1500);
      await kill(false);
      await paused;
    })();
    await sleep(stallMs);
    process.kill(pid, 'SIGCONT');
    stalled = undefined;
    await overlap;
  };

  if (o.restartClickHouse && o.sink === 'server' && !cluster) {
    // While rows are flowing (not during a rebalance stall after a kill), so the restart lands on inserts.
    const sink = new ClickHouseServerSink({ url: clickhouse });
    const until = Date.now() + 30_000;
    const target = Math.min(2000, Math.floor(o.events / 10));
    while (Date.now() < until && Number((await sink.query<{ n: string }>(`SELECT count() AS n FROM ${table}`))[0]?.n ?? 0) < target) await sleep(100);
    o.say('  restarting the ClickHouse server (SIGKILL) while rows flow');
    const before = pidOf(CHAOS_CLICKHOUSE);
    const restartedAt = Date.now();
    await stopService(CHAOS_CLICKHOUSE, 'SIGKILL');
    await sleep(1000);
    await startService(CHAOS_CLICKHOUSE, { verbose: false });
    const after = pidOf(CHAOS_CLICKHOUSE);
    const [up] = await sink.query<{ s: string | number }>('SELECT uptime() AS s');
    await sink.close();
    // Proven: another process, up for no longer than since the kill.
    if (before !== undefined && after !== undefined && after !== before && Number(up?.s ?? Infinity) * 1000 <= Date.now() - restartedAt + 1000) clickhouseRestarts++;
  }

  // The fault timeline: stalls spread over the window, each with a pause and a kill inside it; the other kills
  // and pauses at random moments, overlapping as they fall.
  const windowMs = Math.max(o.produceSeconds * 1000, o.kills * 2500, o.stalls * (stallMs + 3000));
  const faults: Fault[] = [];
  for (let i = 0; i < o.stalls; i++) faults.push({ at: (windowMs * (i + 0.3 * rand())) / Math.max(1, o.stalls), run: stall });
  const overlapped = o.sink === 'server' ? o.stalls : 0; // a server stall brings one pause and one kill
  for (let i = overlapped; i < o.kills; i++) {
    const armed = i % 2 === 0;
    faults.push({ at: rand() * windowMs, run: () => kill(armed) });
  }
  for (let i = overlapped; i < o.pauses; i++) faults.push({ at: rand() * windowMs, run: pauseOne });
  // The cluster's faults, while events are produced: each once a share of the events is produced (production on the
  // cluster is slower than its pace), one at a time (the cluster survives one broker or one replica down, not two).
  const clusterRun = (async () => {
    if (!clusterFaults || !o.cluster) return;
    const steps: (() => Promise<void>)[] = [
      ...Array.from({ length: o.cluster.leaderKills }, () => () => clusterFaults.killLeader()),
      ...Array.from({ length: o.cluster.replicaKills }, () => () => clusterFaults.killReplica()),
      ...Array.from({ length: o.cluster.zookeeperRestarts }, () => () => clusterFaults.restartZooKeeper()),
    ];
    for (let i = steps.length - 1; i > 0; i--) {
      const j = Math.floor(rand() * (i + 1));
      [steps[i], steps[j]] = [steps[j]!, steps[i]!];
    }
    for (const [i, step] of steps.entries()) {
      const share = (i + 0.5 + (rand() - 0.5) * 0.5) / steps.length;
      while (!productionOver && produced < share * o.events * 0.9) await sleep(200);
      await step();
    }
  })();
  const faultStart = Date.now();
  await Promise.all(
    faults.map(async (f) => {
      await sleep(Math.max(0, faultStart + f.at - Date.now()));
      await f.run();
    }),
  );
  await clusterRun;
  await producing;
  o.say(`  produced ${o.events} in ${((Date.now() - t0) / 1000).toFixed(1)} s; ${kills} kills, ${stalls} stalls, ${pauses} pauses so far`);
  if (o.restartKafka && !cluster) {
    o.say('  restarting the Kafka broker (SIGKILL)');
    const before = pidOf(CHAOS_KAFKA);
    await stopService(CHAOS_KAFKA, 'SIGKILL');
    await sleep(500);
    await startService(CHAOS_KAFKA, { verbose: false });
    const after = pidOf(CHAOS_KAFKA);
    if (before !== undefined && after !== undefined && after !== before) kafkaRestarts++;
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

  // Dead letters: every undecodable record, by its source coordinates.
  const letters = await readTopic(kafka, deadLetterTopicFor(topic));
  const lettered = new Map<number, Set<number>>();
  const letteredValues = new Set<string>();
  for (const l of letters) {
    const p = Number(l.headers['apilog.source.partition']);
    const off = Number(l.headers['apilog.source.offset']);
    if (!lettered.has(p)) lettered.set(p, new Set());
    lettered.get(p)!.add(off);
    if (l.value) letteredValues.add(l.value.toString('utf8'));
  }
  const deadLettersMissing = garbageIds.filter((id) => !letteredValues.has(id)).length;

  // On replicas: once each has fetched the others' parts, each is checked (a row doubled on one is doubled).
  const replicasAgree = clusterFaults ? await clusterFaults.converge() : true;
  const perReplica: Check[] = [];
  if (cluster) {
    for (const replica of cluster.clickhouse) {
      const one = new ClickHouseServerSink({ url: replica.endpoint });
      try {
        perReplica.push(await check(one, table, high, lettered));
      } finally {
        await one.close();
      }
    }
  }
  const sink: Sink = await openSink(o.sink === 'server' ? clickhouse : chdbDir!);
  let c: Check;
  let rollupMismatch: number | null = null;
  let rollups: unknown;
  try {
    c = await check(sink, table, high, lettered);
    if (!(await isLegacyServer(sink))) {
      const r = await checkRollups(sink, table);
      rollups = r;
      rollupMismatch = totalMismatch(r);
    }
  } finally {
    await sink.close();
  }
  await admin.disconnect();
  if (chdbDir) rmSync(chdbDir, { recursive: true, force: true });
  const worst = (f: (x: Check) => number) => Math.max(f(c), ...perReplica.map(f));
  const result: ChaosResult = {
    produced: o.events,
    rows: c.rows,
    unique: c.unique,
    missing: worst((x) => Math.max(o.events - x.unique, x.offsetsMissing)),
    duplicates: worst((x) => Math.max(x.rows - x.unique, x.offsetsDuplicated)),
    kills: kills + fleet.selfKills,
    stalls,
    pauses,
    rollup_mismatch: rollupMismatch,
    dead_letters_missing: deadLettersMissing,
    sink: o.sink,
    ...(clusterFaults ? clusterFaults.counts : {}),
  };
  const evidence = evidenceFromLogs(logDir);
  const details = {
    ...evidence,
    killedFromOutside: kills,
    killedAtCrashPoints: fleet.selfKills,
    consumerExits: fleet.unexpectedExits,
    ...(fleet.exitReasons.length > 0 ? { exitReasons: fleet.exitReasons } : {}),
    topicMessages: inTopic,
    undecodable: garbage,
    deadLetters: letters.length,
    offsetsMissing: c.offsetsMissing,
    offsetsDuplicated: c.offsetsDuplicated,
    offsetsOutOfRange: worst((x) => x.outOfRange),
    offsetsStoredAndDeadLettered: worst((x) => x.storedAndLettered),
    ...(cluster ? { replicasAgree, rowsPerReplica: perReplica.map((x) => x.rows), producerRetries } : { producerRetries }),
    clickhouseRestarts,
    kafkaRestarts,
    rollups,
    finalLag: lag,
    seconds: Math.round((Date.now() - t0) / 100) / 10,
    logs: logDir,
  };
  return { ...result, details };
}

/** Whether a run did all it was asked to and found nothing wrong. */
export function chaosPassed(result: ChaosResult & { details: Record<string, unknown> }, asked: Pick<ChaosOptions, 'stalls' | 'pauses' | 'kills' | 'restartClickHouse' | 'restartKafka' | 'sink' | 'cluster'>): boolean {
  const d = result.details;
  return (
    result.missing === 0 && result.duplicates === 0 && result.rows === result.produced &&
    (result.rollup_mismatch ?? 0) === 0 && result.dead_letters_missing === 0 &&
    d['offsetsOutOfRange'] === 0 && d['offsetsStoredAndDeadLettered'] === 0 &&
    result.stalls === asked.stalls && result.pauses >= asked.pauses && result.kills >= asked.kills &&
    (asked.cluster
      ? d['replicasAgree'] === true && result.leader_kills === asked.cluster.leaderKills && result.replica_kills === asked.cluster.replicaKills &&
        result.zookeeper_restarts === asked.cluster.zookeeperRestarts
      : (!asked.restartClickHouse || asked.sink !== 'server' || d['clickhouseRestarts'] === 1) && (!asked.restartKafka || d['kafkaRestarts'] === 1))
  );
}

async function main(argv: string[]): Promise<number> {
  const program = new Command('chaos')
    .description('kill, freeze and restart consumers, ClickHouse and Kafka while events flow; check every event landed exactly once')
    .option('--events <n>', 'events to produce', (v) => Number(v), 100_000)
    .option('--consumers <n>', 'concurrent consumer processes (server sink; the embedded sink runs one)', (v) => Number(v), 3)
    .option('--kills <n>', 'SIGKILLs of consumer processes', (v) => Number(v), 12)
    .option('--stalls <n>', 'ClickHouse frozen (SIGSTOP) past the insert and rebalance timeouts (default 0; with --cluster 2, a replica each)', (v) => Number(v))
    .option('--pauses <n>', 'consumer processes frozen (SIGSTOP) past the session timeout (default 0; with --cluster 3)', (v) => Number(v))
    .option('--topic <name>', 'topic (created on the private broker)', `chaos-${Date.now().toString(36)}`)
    .option('--sink <kind>', 'server (ClickHouse server over HTTP) or embedded (chdb)', 'server')
    .option('--partitions <n>', 'partitions of the topic', (v) => Number(v), 6)
    .option('--seed <n>', 'random seed (fault timing, events)', (v) => Number(v), Date.now() % 100_000)
    .option('--produce-seconds <n>', 'spread production over this long', (v) => Number(v), 30)
    .option('--rebalance-timeout-ms <ms>', "the consumers' rebalance timeout (stalls last 4 s longer)", (v) => Number(v), 20_000)
    .option('--no-clickhouse-restart', 'do not restart the ClickHouse server')
    .option('--no-kafka-restart', 'do not restart the broker')
    .option('--timeout <seconds>', 'give up waiting for the group after this long', (v) => Number(v), 600)
    .option('--keep-services', 'leave the private Kafka and ClickHouse running afterwards', false)
    .option('--cluster', 'on the local cluster (three brokers, two ClickHouse replicas, ZooKeeper; started if need be) with its faults', false)
    .option('--leader-kills <n>', '--cluster: partition leader brokers SIGKILLed and restarted while events are produced', (v) => Number(v), 2)
    .option('--replica-kills <n>', '--cluster: ClickHouse replicas SIGKILLed and restarted while rows flow into them', (v) => Number(v), 2)
    .option('--zookeeper-restarts <n>', '--cluster: ZooKeeper SIGKILLed and restarted', (v) => Number(v), 1);
  program.parse(argv, { from: 'user' });
  const f = program.opts<{
    events: number; consumers: number; kills: number; stalls?: number; pauses?: number; topic: string; sink: string; partitions: number; seed: number;
    produceSeconds: number; rebalanceTimeoutMs: number; clickhouseRestart: boolean; kafkaRestart: boolean; timeout: number; keepServices: boolean;
    cluster: boolean; leaderKills: number; replicaKills: number; zookeeperRestarts: number;
  }>();
  // On the cluster, consumer pauses and frozen replicas by default: the single-node run's faults and the cluster's.
  f.stalls ??= f.cluster ? 2 : 0;
  f.pauses ??= f.cluster ? 3 : 0;
  if (f.sink !== 'server' && f.sink !== 'embedded') throw new Error(`--sink must be server or embedded, not ${f.sink}`);
  for (const [name, v] of Object.entries({ events: f.events, consumers: f.consumers, partitions: f.partitions, timeout: f.timeout })) {
    if (!Number.isInteger(v) || v <= 0) throw new Error(`--${name} must be a positive integer`);
  }
  for (const [name, v] of Object.entries({ kills: f.kills, stalls: f.stalls, pauses: f.pauses, 'leader-kills': f.leaderKills, 'replica-kills': f.replicaKills, 'zookeeper-restarts': f.zookeeperRestarts })) {
    if (!Number.isInteger(v) || v < 0) throw new Error(`--${name} must be a whole number`);
  }
  if (f.cluster && f.sink !== 'server') throw new Error('--cluster runs the server sink (the replicas of a shard)');
  const say = (line: string) => process.stderr.write(`${line}\n`);
  // The cluster: started unless it runs, and stopped afterwards only if started here.
  const clusterWasUp = f.cluster && (await statusCluster()).every((s) => s.healthy);
  const services: Service[] = f.cluster ? [] : f.sink === 'server' ? [CHAOS_KAFKA, CHAOS_CLICKHOUSE] : [CHAOS_KAFKA];
  if (f.cluster && !clusterWasUp) {
    say('starting the local cluster (npm run stack -- up --cluster)');
    await upCluster({ verbose: false });
  }
  for (const s of services) await startService(s, { verbose: false });
  try {
    const options: ChaosOptions = {
      events: f.events, consumers: f.consumers, kills: f.kills, stalls: f.stalls, pauses: f.pauses, topic: f.topic, sink: f.sink,
      partitions: f.partitions, seed: f.seed, produceSeconds: f.produceSeconds, restartClickHouse: f.clickhouseRestart, restartKafka: f.kafkaRestart,
      rebalanceTimeoutMs: f.rebalanceTimeoutMs, timeoutSeconds: f.timeout,
      registry: f.cluster ? clusterStack().endpoints.registry : (process.env['SCHEMA_REGISTRY_URL'] ?? readStackEnv()?.SCHEMA_REGISTRY_URL ?? LOCAL_SCHEMA_REGISTRY_URL),
      say,
      ...(f.cluster ? { cluster: { leaderKills: f.leaderKills, replicaKills: f.replicaKills, zookeeperRestarts: f.zookeeperRestarts } } : {}),
    };
    const result = await runChaos(options);
    const { details, ...line } = result;
    say(`  details: ${JSON.stringify(details)}`);
    process.stdout.write(`${JSON.stringify(line)}\n`);
    return chaosPassed(result, options) ? 0 : 1;
  } finally {
    if (!f.keepServices) for (const s of [...services].reverse()) await stopService(s, 'SIGTERM');
    if (f.cluster && !clusterWasUp && !f.keepServices) await downCluster({ verbose: false });
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
