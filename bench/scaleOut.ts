/**
 * `npm run bench:scale-out -- [--events N] [--partitions P] [--consumers 1,2,3] [--rounds R]`
 *
 * How `apilog consume` throughput grows with consumer processes on the local cluster (stack/cluster.ts: three
 * brokers, two ClickHouse 18.16 replicas; started if it does not run, and stopped again afterwards). N events are
 * produced to a topic of P partitions first (RF 3), so the consumers are measured, not the producer. Then, for each
 * count k (in turn, R rounds), k `apilog consume` processes with their defaults and both replicas
 * (`--clickhouse r1,r2`) drain the topic into a fresh replicated table with a fresh group. Timed from spawning the
 * processes until the group has committed every offset ("wall": start-up and group join included) and from the
 * first committed offset to the last ("steady"). The machine's load average is reported with each run: the brokers,
 * the ClickHouse servers and the consumers share its cores; and the largest resident memory of a consumer process.
 * One JSON line per run, then a summary line:
 * {"events": N, "partitions": P, "eps": {"1": …, "2": …, "3": …}} (steady events/s, median of the rounds).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, mkdirSync, openSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { Command } from 'commander';
import { ensureApiCallsTable } from '../clickhouse/apiCallsTable.ts';
import { ClickHouseServerSink } from '../clickhouse/serverSink.ts';
import { openSink } from '../clickhouse/openSink.ts';
import { deadLetterTopicFor } from '../consumer/deadLetters.ts';
import { ApiCallProducer } from '../producer/apiCallProducer.ts';
import { SyntheticEvents } from '../producer/syntheticEvents.ts';
import { ensureTopic } from '../producer/topic.ts';
import { createKafka } from '../runtime/kafka.ts';
import { createLogger } from '../runtime/log.ts';
import { SchemaRegistryClient } from '../schemas/registry.ts';
import { clusterStack, residentBytes } from '../stack/cluster.ts';
import { PROJECT_ROOT, STACK_DIR } from '../stack/endpoints.ts';
import { downCluster, statusCluster, upCluster } from '../stack/stack.ts';

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const median = (xs: number[]) => {
  const sorted = [...xs].sort((a, b) => a - b);
  const mid = sorted.length / 2;
  return Number.isInteger(mid) ? Math.round((sorted[mid - 1]! + sorted[mid]!) / 2) : sorted[Math.floor(mid)]!;
};

interface Run {
  readonly consumers: number;
  readonly round: number;
  readonly events: number;
  readonly wall_s: number;
  readonly steady_s: number;
  readonly eps: number;
  readonly load: number;
  /** Largest resident memory of one consumer process seen during the run, MiB. */
  readonly max_rss_mib: number;
}

async function main(argv: string[]): Promise<void> {
  const program = new Command('bench:scale-out')
    .option('--events <n>', 'events on the topic', (v) => Number(v), 300_000)
    .option('--partitions <n>', 'partitions of the topic', (v) => Number(v), 6)
    .option('--consumers <list>', 'consumer process counts, comma-separated', '1,2,3')
    .option('--rounds <n>', 'rounds; each runs every count once, in turn (medians reported)', (v) => Number(v), 3);
  program.parse(argv, { from: 'user' });
  const f = program.opts<{ events: number; partitions: number; consumers: string; rounds: number }>();
  const counts = f.consumers.split(',').map(Number);
  for (const [name, v] of Object.entries({ events: f.events, partitions: f.partitions, rounds: f.rounds, ...Object.fromEntries(counts.map((c, i) => [`consumers[${i}]`, c])) })) {
    if (!Number.isInteger(v) || v <= 0) throw new Error(`--${name} must be a positive integer`);
  }
  const say = (line: string) => process.stderr.write(`${line}\n`);
  const wasUp = (await statusCluster()).every((s) => s.healthy);
  if (!wasUp) {
    say('starting the local cluster (npm run stack -- up --cluster)');
    await upCluster({ verbose: false });
  }
  try {
    const cluster = clusterStack();
    const run = Date.now().toString(36);
    const topic = `bench-scale-${run}`;
    const logger = createLogger('apilog-bench', 'silent');
    const kafka = createKafka({ brokers: [...cluster.endpoints.brokers], clientId: 'apilog-bench', logger });
    await ensureTopic(kafka, { topic, partitions: f.partitions });
    await ensureTopic(kafka, { topic: deadLetterTopicFor(topic), partitions: 1 });
    const producer = new ApiCallProducer({ kafka, registry: new SchemaRegistryClient({ url: cluster.endpoints.registry }), topic });
    await producer.connect();
    const events = new SyntheticEvents({ seed: 7, apis: 40 });
    const t0 = performance.now();
    for (let sent = 0; sent < f.events; sent += 10_000) await producer.send(events.take(Math.min(10_000, f.events - sent)));
    await producer.disconnect();
    say(`produced ${f.events} events to ${topic} (${f.partitions} partitions, RF 3) in ${((performance.now() - t0) / 1000).toFixed(1)} s`);

    const admin = kafka.admin();
    await admin.connect();
    const logDir = join(STACK_DIR, 'logs', `bench-scale-${run}`);
    mkdirSync(logDir, { recursive: true });
    const runs: Run[] = [];
    try {
      for (let round = 1; round <= f.rounds; round++) {
        for (const k of counts) {
          const table = `scale_${run}_${round}_${k}`;
          const group = `bench-scale-${run}-${round}-${k}`;
          const sink = await openSink(cluster.endpoints.clickhouse.join(','));
          await ensureApiCallsTable(sink, table);
          await sink.close();
          const args = [
            join(PROJECT_ROOT, 'bin', 'apilog.js'), 'consume', '--brokers', cluster.endpoints.brokers.join(','), '--registry', cluster.endpoints.registry,
            '--clickhouse', cluster.endpoints.clickhouse.join(','), '--topic', topic, '--group', group, '--table', table, '--metrics-port', '0',
          ];
          const load = loadavg()[0]!;
          const started = performance.now();
          const children: ChildProcess[] = Array.from({ length: k }, (_, i) => {
            const log = openSync(join(logDir, `${round}-${k}-${i}.log`), 'a');
            const child = spawn(process.execPath, args, { cwd: PROJECT_ROOT, stdio: ['ignore', log, log] });
            closeSync(log);
            return child;
          });
          let first: number | undefined;
          let maxRss = 0;
          try {
            for (;;) {
              for (const c of children) maxRss = Math.max(maxRss, (c.pid === undefined ? undefined : residentBytes(c.pid)) ?? 0);
              const [t] = await admin.fetchOffsets({ groupId: group, topics: [topic] });
              const committed = (t?.partitions ?? []).reduce((sum, p) => sum + Math.max(0, Number(p.offset)), 0);
              if (committed > 0 && first === undefined) first = performance.now();
              if (committed >= f.events) break;
              if (children.some((c) => c.exitCode !== null)) throw new Error(`a consumer exited; see ${logDir}`);
              if (performance.now() - started > 600_000) throw new Error(`${k} consumer(s) did not finish within 600 s; see ${logDir}`);
              await sleep(100);
            }
          } finally {
            for (const c of children) c.kill('SIGTERM');
            await Promise.all(children.map((c) => (c.exitCode !== null ? undefined : new Promise((r) => c.once('exit', r)))));
          }
          const end = performance.now();
          const steady = (end - first!) / 1000;
          const result: Run = {
            consumers: k, round, events: f.events, wall_s: Number(((end - started) / 1000).toFixed(1)), steady_s: Number(steady.toFixed(1)),
            eps: Math.round(f.events / steady), load: Number(load.toFixed(1)), max_rss_mib: Math.round(maxRss / 1048576),
          };
          runs.push(result);
          process.stdout.write(`${JSON.stringify(result)}\n`);
          // The table's rows are not needed again: dropped on every replica (its ZooKeeper nodes go with the last).
          for (const url of cluster.endpoints.clickhouse) {
            const replica = new ClickHouseServerSink({ url });
            await replica.command(`DROP TABLE IF EXISTS ${table}`).finally(() => replica.close());
          }
        }
      }
    } finally {
      await admin.disconnect();
    }
    const eps = Object.fromEntries(counts.map((k) => [String(k), median(runs.filter((r) => r.consumers === k).map((r) => r.eps))]));
    process.stdout.write(`${JSON.stringify({ events: f.events, partitions: f.partitions, eps })}\n`);
  } finally {
    if (!wasUp) await downCluster({ verbose: false });
  }
}

main(process.argv.slice(2)).catch((error: unknown) => {
  process.stderr.write(`bench:scale-out: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
