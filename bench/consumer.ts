/**
 * `npm run bench:consumer -- [--events N] [--sink embedded|server] [--partitions P] [--no-passthrough]`
 *
 * On one freshly produced topic (local stack's Kafka and registry), in the same run:
 * - baseline: a kafkajs consumer group that fetches and counts, nothing else (eachBatch);
 * - full path: ApiCallConsumer — fetch, decode (registry), rows, insert into ClickHouse, commit — until the group's
 *   committed offsets reach the end of the topic;
 * - passthrough (embedded only): kafkajs fetches, the Confluent-framed values are concatenated per partition batch and
 *   ClickHouse decodes them itself (AvroConfluent input format, schemas from the registry's ccompat API), then commit.
 * Events/s and CPU microseconds per event (this process: user + system, which includes the embedded engine's inserts;
 * a server's own CPU is not counted) side by side, with ratios. Last line:
 * {"events": N, "full_eps": …, "baseline_eps": …, "ratio": …, "cpu_us_per_event": …}
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Command } from 'commander';
import type { Kafka } from 'kafkajs';
import { ApiCallConsumer } from '../consumer/apiCallConsumer.ts';
import { ensureApiCallsTable } from '../consumer/apiCallsTable.ts';
import { ChdbSink } from '../consumer/chdbSink.ts';
import { ClickHouseServerSink } from '../consumer/clickhouseServerSink.ts';
import { deadLetterTopicFor } from '../consumer/deadLetters.ts';
import { DEFAULT_TUNING, type ConsumerTuning } from '../consumer/options.ts';
import type { Sink } from '../consumer/sink.ts';
import { ApiCallProducer } from '../producer/apiCallProducer.ts';
import { SyntheticEvents } from '../producer/syntheticEvents.ts';
import { ensureTopic } from '../producer/topic.ts';
import { createKafka } from '../runtime/kafka.ts';
import { createLogger } from '../runtime/log.ts';
import { apiCallTypeV1 } from '../schemas/apiCall.ts';
import { SchemaRegistryClient } from '../schemas/registry.ts';
import { LOCAL_CLICKHOUSE_SERVER_URL, LOCAL_KAFKA_BROKERS, LOCAL_SCHEMA_REGISTRY_URL, readStackEnv } from '../stack/endpoints.ts';

interface Measured {
  readonly seconds: number;
  readonly cpuUs: number;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const id = () => `${Date.now().toString(36)}${Math.floor(Math.random() * 1e6).toString(36)}`;

/** Times `run` up to the moment it resolves with its stop function; stopping (leaving the group) is not timed. */
async function measure(run: () => Promise<() => Promise<void>>): Promise<Measured> {
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const stop = await run();
  const cpu = process.cpuUsage(cpu0);
  const seconds = (performance.now() - t0) / 1000;
  await stop();
  return { seconds, cpuUs: cpu.user + cpu.system };
}

async function committedAll(kafka: Kafka, groupId: string, topic: string): Promise<boolean> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const [high, committed] = await Promise.all([admin.fetchTopicOffsets(topic), admin.fetchOffsets({ groupId, topics: [topic] })]);
    const c = new Map((committed[0]?.partitions ?? []).map((p) => [p.partition, p.offset]));
    return high.every((p) => c.get(p.partition) === p.high);
  } finally {
    await admin.disconnect();
  }
}

/** Fetch and count, nothing else. */
async function baseline(kafka: Kafka, topic: string, events: number): Promise<() => Promise<void>> {
  const consumer = kafka.consumer({ groupId: `bench-baseline-${id()}`, maxBytesPerPartition: DEFAULT_TUNING.maxBytesPerPartition, maxBytes: 16 * 1024 * 1024 });
  let count = 0;
  let done: () => void = () => undefined;
  const finished = new Promise<void>((r) => (done = r));
  await consumer.connect();
  await consumer.subscribe({ topics: [topic], fromBeginning: true });
  await consumer.run({
    autoCommit: false,
    partitionsConsumedConcurrently: DEFAULT_TUNING.partitionsConsumedConcurrently,
    eachBatch: async ({ batch }) => {
      count += batch.messages.length;
      if (count >= events) done();
    },
  });
  await finished;
  return () => consumer.disconnect();
}

async function fullPath(kafka: Kafka, registry: SchemaRegistryClient, sink: Sink, topic: string, table: string, events: number, tuning: ConsumerTuning): Promise<() => Promise<void>> {
  const groupId = `bench-full-${id()}`;
  const consumer = new ApiCallConsumer({
    kafka, registry, sink, topic, table, groupId, deadLetterTopic: deadLetterTopicFor(topic), logger: createLogger('bench', 'error'), tuning,
  });
  await consumer.start();
  while (consumer.stats.rows < events) await sleep(20);
  while (!(await committedAll(kafka, groupId, topic))) await sleep(50);
  return () => consumer.stop();
}

/**
 * ClickHouse decodes the Confluent frames itself. Values of a partition batch are concatenated into one file that an
 * INSERT … SELECT FROM file(…, 'AvroConfluent') reads (the embedded engine's raw insert takes text formats only).
 * A parse error fails the whole body: there is no per-message dead-lettering, and the rows carry no Kafka coordinates.
 */
async function passthrough(kafka: Kafka, registryUrl: string, sink: ChdbSink, topic: string, table: string, columns: string, events: number): Promise<() => Promise<void>> {
  const groupId = `bench-passthrough-${id()}`;
  const consumer = kafka.consumer({ groupId, maxBytesPerPartition: DEFAULT_TUNING.maxBytesPerPartition, maxBytes: 16 * 1024 * 1024 });
  const dir = mkdtempSync(join(tmpdir(), 'apilog-avro-'));
  let inserted = 0;
  const pending = new Map<number, Buffer[]>();
  let failure: Error | undefined;
  consumer.on(consumer.events.CRASH, (event) => {
    failure = event.payload.error;
  });
  await consumer.connect();
  await consumer.subscribe({ topics: [topic], fromBeginning: true });
  await consumer.run({
    autoCommit: false,
    eachBatchAutoResolve: false,
    partitionsConsumedConcurrently: 1,
    eachBatch: async ({ batch, resolveOffset, commitOffsetsIfNecessary }) => {
      const frames = pending.get(batch.partition) ?? [];
      for (const m of batch.messages) if (m.value) frames.push(m.value);
      pending.set(batch.partition, frames);
      resolveOffset(batch.lastOffset());
      const caughtUp = Number(batch.highWatermark) <= Number(batch.lastOffset()) + 1;
      if (frames.length < DEFAULT_TUNING.maxBatchRows && !caughtUp) return;
      const file = join(dir, `p${batch.partition}.avro`);
      writeFileSync(file, Buffer.concat(frames));
      await sink.command(
        `INSERT INTO ${table} (${columns}) SELECT ${columns} FROM file('${file}', 'AvroConfluent') SETTINGS format_avro_schema_registry_url = '${registryUrl}'`,
      );
      inserted += frames.length;
      pending.set(batch.partition, []);
      await commitOffsetsIfNecessary({ topics: [{ topic, partitions: [{ partition: batch.partition, offset: String(Number(batch.lastOffset()) + 1) }] }] });
    },
  });
  while (inserted < events) {
    if (failure !== undefined) throw failure;
    await sleep(20);
  }
  while (!(await committedAll(kafka, groupId, topic))) {
    if (failure !== undefined) throw failure;
    await sleep(50);
  }
  return async () => {
    await consumer.disconnect();
    rmSync(dir, { recursive: true, force: true });
  };
}

async function main(argv: string[]): Promise<void> {
  const program = new Command('bench:consumer')
    .option('--events <n>', 'events on the topic', (v) => Number(v), 200_000)
    .option('--sink <kind>', 'embedded (chdb, in this process) or server (the local ClickHouse server)', 'embedded')
    .option('--partitions <n>', 'partitions of the topic', (v) => Number(v), 6)
    .option('--concurrency <n>', 'partitionsConsumedConcurrently of the full path', (v) => Number(v), DEFAULT_TUNING.partitionsConsumedConcurrently)
    .option('--batch-rows <n>', 'maxBatchRows of the full path', (v) => Number(v), DEFAULT_TUNING.maxBatchRows)
    .option('--no-passthrough', 'skip the AvroConfluent passthrough (embedded only)');
  program.parse(argv, { from: 'user' });
  const f = program.opts<{ events: number; sink: string; partitions: number; passthrough: boolean; concurrency: number; batchRows: number }>();
  const tuning = { partitionsConsumedConcurrently: f.concurrency, maxBatchRows: f.batchRows };
  if (f.sink !== 'embedded' && f.sink !== 'server') throw new Error('--sink must be embedded or server');
  const env = readStackEnv() ?? {};
  const brokers = (process.env['KAFKA_BROKERS'] ?? env.KAFKA_BROKERS ?? LOCAL_KAFKA_BROKERS).split(',');
  const registryUrl = process.env['SCHEMA_REGISTRY_URL'] ?? env.SCHEMA_REGISTRY_URL ?? LOCAL_SCHEMA_REGISTRY_URL;
  const say = (line: string) => process.stderr.write(`${line}\n`);
  const kafka = createKafka({ brokers, clientId: 'apilog-bench' });
  const registry = new SchemaRegistryClient({ url: registryUrl });
  const topic = `bench-consumer-${id()}`;
  await ensureTopic(kafka, { topic, partitions: f.partitions });
  await ensureTopic(kafka, { topic: deadLetterTopicFor(topic), partitions: 1 });
  const producer = new ApiCallProducer({ kafka, registry, topic });
  await producer.connect();
  const gen = new SyntheticEvents({ seed: 3, startMs: Date.UTC(2026, 10, 3), stepMs: 3 });
  for (let i = 0; i < f.events; i += 5000) await producer.send(gen.take(Math.min(5000, f.events - i)));
  await producer.disconnect();
  say(`${f.events} events on ${topic} (${f.partitions} partitions); sink ${f.sink}; full path: ${JSON.stringify(tuning)}`);

  const chdbDir = f.sink === 'embedded' ? mkdtempSync(join(tmpdir(), 'apilog-bench-chdb-')) : undefined;
  const sink: Sink = chdbDir ? new ChdbSink(chdbDir) : new ClickHouseServerSink({ url: process.env['CLICKHOUSE_URL'] ?? env.CLICKHOUSE_URL ?? LOCAL_CLICKHOUSE_SERVER_URL });
  const table = `bench_consumer_${id()}`;
  await ensureApiCallsTable(sink, table);
  await sink.query('SELECT 1'); // open the engine before timing

  const base = await measure(() => baseline(kafka, topic, f.events));
  say(`baseline: ${base.seconds.toFixed(2)} s`);
  const full = await measure(() => fullPath(kafka, registry, sink, topic, table, f.events, tuning));
  say(`full path: ${full.seconds.toFixed(2)} s`);
  const rows = Number((await sink.query<{ n: string }>(`SELECT count() AS n FROM ${table}`))[0]?.n ?? 0);
  if (rows !== f.events) throw new Error(`full path stored ${rows} rows for ${f.events} events`);

  const eps = (m: Measured) => Math.round(f.events / m.seconds);
  const us = (m: Measured) => Math.round((m.cpuUs / f.events) * 100) / 100;
  const lines = [['path', 'events/s', 'CPU µs/event', 'vs baseline'], ['baseline (fetch + count)', eps(base), us(base), '1.00'], ['full (decode, insert, commit)', eps(full), us(full), (eps(full) / eps(base)).toFixed(2)]];
  if (f.passthrough && sink instanceof ChdbSink) {
    const ptTable = `bench_passthrough_${id()}`;
    await ensureApiCallsTable(sink, ptTable);
    // The columns the Avro record fills (a table column the schema lacks keeps its default).
    const fields = new Set((apiCallTypeV1 as unknown as { fields: { name: string }[] }).fields.map((x) => x.name));
    const columns = (await sink.describe(ptTable)).filter((c) => fields.has(c.name)).map((c) => c.name).join(', ');
    const pt = await measure(() => passthrough(kafka, registryUrl, sink, topic, ptTable, columns, f.events));
    const ptRows = Number((await sink.query<{ n: string }>(`SELECT count() AS n FROM ${ptTable}`))[0]?.n ?? 0);
    if (ptRows !== f.events) throw new Error(`passthrough stored ${ptRows} rows for ${f.events} events`);
    lines.push(['passthrough (AvroConfluent)', eps(pt), us(pt), (eps(pt) / eps(base)).toFixed(2)]);
  }
  for (const l of lines) say(`${String(l[0]).padEnd(32)} ${String(l[1]).padStart(10)} ${String(l[2]).padStart(13)} ${String(l[3]).padStart(12)}`);
  await sink.close();
  if (chdbDir) rmSync(chdbDir, { recursive: true, force: true });
  process.stdout.write(
    `${JSON.stringify({ events: f.events, full_eps: eps(full), baseline_eps: eps(base), ratio: Math.round((eps(full) / eps(base)) * 100) / 100, cpu_us_per_event: us(full) })}\n`,
  );
}

main(process.argv.slice(2)).then(
  () => process.exit(0),
  (error: unknown) => {
    process.stderr.write(`bench:consumer: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(1);
  },
);
