/**
 * `npm run bench:latency -- [--rate 10000] [--seconds 30] [--sink server|embedded|both] [--batch-age-ms MS] [--concurrency N]`
 *
 * How soon an API call is visible to the analysts: a steady `rate` of events/s logged through the SDK (in a process of
 * its own, bench/latencyLoad.ts), consumed by the consumer with its default settings (`--batch-age-ms` overrides the one
 * that trades latency for throughput, `--concurrency` the partitions processed at once), into each sink; every 100 ms the bench asks ClickHouse for the newest event
 * stored, and the *freshness* is now minus that event's `ts` (its log() time). p50, p99 and max over the run, after a
 * 5 s warm-up. The server sink's consumer is `apilog consume` as a process; the embedded engine's runs in this process
 * (one process per data directory), which is where the query comes from too.
 * Endpoints from KAFKA_BROKERS, SCHEMA_REGISTRY_URL, CLICKHOUSE_URL or `.stack/env` (bench/perfStack.ts starts
 * private ones). Last line: {"rate", "seconds", "results": [{"sink","p50_ms","p99_ms","max_ms","samples","rows"}]}.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { Command } from 'commander';
import { ApiCallConsumer } from '../consumer/apiCallConsumer.ts';
import { ensureApiCallsTable, isLegacyServer } from '../clickhouse/apiCallsTable.ts';
import { ChdbSink } from '../clickhouse/chdbSink.ts';
import { ClickHouseServerSink } from '../clickhouse/serverSink.ts';
import { deadLetterTopicFor } from '../consumer/deadLetters.ts';
import type { Sink } from '../clickhouse/sink.ts';
import { ensureTopic } from '../producer/topic.ts';
import { createKafka } from '../runtime/kafka.ts';
import { createLogger } from '../runtime/log.ts';
import { SchemaRegistryClient } from '../schemas/registry.ts';
import { LOCAL_CLICKHOUSE_SERVER_URL, LOCAL_KAFKA_BROKERS, LOCAL_SCHEMA_REGISTRY_URL, PROJECT_ROOT, readStackEnv } from '../stack/endpoints.ts';

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const WARM_UP_MS = 5000;

interface Result {
  sink: 'server' | 'embedded';
  p50_ms: number;
  p99_ms: number;
  max_ms: number;
  samples: number;
  rows: number;
}

const quantile = (sorted: readonly number[], q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? NaN;

/** Runs the load while polling `sink` for the newest stored event; returns freshness quantiles. */
async function measure(kind: Result['sink'], sink: Sink, table: string, load: () => Promise<void>): Promise<Result> {
  const newest = (await isLegacyServer(sink)) ? 'max(ts)' : 'toUnixTimestamp64Milli(max(ts))';
  const samples: number[] = [];
  let loading = true;
  const started = Date.now();
  const done = load().finally(() => (loading = false));
  while (loading) {
    await sleep(100);
    const [row] = await sink.query<{ t: string | number; n: string | number }>(`SELECT ${newest} AS t, count() AS n FROM ${table}`);
    const t = Number(row?.t ?? 0);
    if (Number(row?.n ?? 0) > 0 && Date.now() - started > WARM_UP_MS) samples.push(Date.now() - t);
  }
  await done;
  const [count] = await sink.query<{ n: string | number }>(`SELECT count() AS n FROM ${table}`);
  const sorted = samples.sort((a, b) => a - b);
  return { sink: kind, p50_ms: quantile(sorted, 0.5), p99_ms: quantile(sorted, 0.99), max_ms: sorted.at(-1) ?? NaN, samples: sorted.length, rows: Number(count?.n ?? 0) };
}

/** The SDK's load in a child process: resolves when it has logged everything and closed. */
function runLoad(brokers: string, registry: string, topic: string, rate: number, seconds: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', join(PROJECT_ROOT, 'bench', 'latencyLoad.ts'), brokers, registry, topic, String(rate), String(seconds)], {
      cwd: PROJECT_ROOT,
      stdio: ['ignore', 'inherit', 'inherit'],
    });
    child.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`the load exited with ${code}`))));
  });
}

async function main(argv: string[]): Promise<void> {
  const program = new Command('bench:latency')
    .option('--rate <n>', 'events per second', (v) => Number(v), 10_000)
    .option('--seconds <n>', 'seconds of load', (v) => Number(v), 30)
    .option('--sink <kind>', 'server, embedded or both', 'both')
    .option('--batch-age-ms <ms>', "the consumer's --batch-age-ms (default: the consumer's)", (v) => Number(v))
    .option('--concurrency <n>', "the consumer's --concurrency (default: the consumer's)", (v) => Number(v));
  program.parse(argv, { from: 'user' });
  const o = program.opts<{ rate: number; seconds: number; sink: string; batchAgeMs?: number; concurrency?: number }>();
  const env = readStackEnv() ?? {};
  const brokers = process.env['KAFKA_BROKERS'] ?? env.KAFKA_BROKERS ?? LOCAL_KAFKA_BROKERS;
  const registry = process.env['SCHEMA_REGISTRY_URL'] ?? env.SCHEMA_REGISTRY_URL ?? LOCAL_SCHEMA_REGISTRY_URL;
  const clickhouse = process.env['CLICKHOUSE_URL'] ?? env.CLICKHOUSE_URL ?? LOCAL_CLICKHOUSE_SERVER_URL;
  const logger = createLogger('apilog-bench', 'error');
  const kafka = createKafka({ brokers: brokers.split(','), clientId: 'apilog-bench-latency', logger });
  const results: Result[] = [];
  const say = (line: string) => process.stderr.write(`${line}\n`);
  for (const kind of o.sink === 'both' ? (['server', 'embedded'] as const) : [o.sink as Result['sink']]) {
    const id = `${Date.now().toString(36)}${Math.floor(Math.random() * 1e6).toString(36)}`;
    const topic = `bench-latency-${id}`;
    const table = `latency_${id}`;
    await ensureTopic(kafka, { topic, partitions: 6 });
    await ensureTopic(kafka, { topic: deadLetterTopicFor(topic), partitions: 1 });
    const overrides = [o.batchAgeMs ? `--batch-age-ms ${o.batchAgeMs}` : '', o.concurrency ? `--concurrency ${o.concurrency}` : ''].filter(Boolean).join(' ');
    say(`${kind}: ${o.rate} events/s for ${o.seconds} s → ${topic}; consumer defaults${overrides ? ` but ${overrides}` : ''}`);
    if (kind === 'server') {
      const sink = new ClickHouseServerSink({ url: clickhouse });
      await ensureApiCallsTable(sink, table);
      const consumer = spawn(process.execPath, [
        join(PROJECT_ROOT, 'bin', 'apilog.js'), 'consume', '--brokers', brokers, '--registry', registry, '--clickhouse', clickhouse,
        '--topic', topic, '--table', table, '--group', `bench-${id}`, '--metrics-port', '0',
        ...(o.batchAgeMs ? ['--batch-age-ms', String(o.batchAgeMs)] : []),
        ...(o.concurrency ? ['--concurrency', String(o.concurrency)] : []),
      ], { cwd: PROJECT_ROOT, stdio: 'ignore' });
      try {
        await sleep(4000); // the consumer joins before the load starts
        results.push(await measure('server', sink, table, () => runLoad(brokers, registry, topic, o.rate, o.seconds)));
      } finally {
        consumer.kill('SIGTERM');
        await sink.close();
      }
    } else {
      const dir = mkdtempSync(join(tmpdir(), 'apilog-latency-'));
      const sink = new ChdbSink(dir);
      await ensureApiCallsTable(sink, table);
      const consumer = new ApiCallConsumer({
        kafka, registry: new SchemaRegistryClient({ url: registry }), sink, logger, topic, table, groupId: `bench-${id}`,
        deadLetterTopic: deadLetterTopicFor(topic),
        tuning: { ...(o.batchAgeMs ? { maxBatchAgeMs: o.batchAgeMs } : {}), ...(o.concurrency ? { partitionsConsumedConcurrently: o.concurrency } : {}) },
      });
      await consumer.start();
      try {
        await sleep(4000);
        results.push(await measure('embedded', sink, table, () => runLoad(brokers, registry, topic, o.rate, o.seconds)));
      } finally {
        await consumer.stop();
        await sink.close();
        rmSync(dir, { recursive: true, force: true });
      }
    }
    const r = results.at(-1)!;
    say(`  freshness p50 ${r.p50_ms} ms, p99 ${r.p99_ms} ms, max ${r.max_ms} ms over ${r.samples} samples; ${r.rows} rows`);
  }
  process.stdout.write(`${JSON.stringify({ rate: o.rate, seconds: o.seconds, ...(o.batchAgeMs ? { batch_age_ms: o.batchAgeMs } : {}), ...(o.concurrency ? { concurrency: o.concurrency } : {}), load: loadavg().map((l) => Number(l.toFixed(2))), results })}\n`);
}

main(process.argv.slice(2)).then(
  () => process.exit(0),
  (error: unknown) => {
    process.stderr.write(`bench:latency: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(2);
  },
);
