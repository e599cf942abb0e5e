/**
 * `npm run bench:consumer -- [--events N] [--sink embedded|server] [--rounds R] [--topic T] [--compare-formats]
 *  [--server-pid PID] [--partitions P] [--concurrency C] [--batch-rows N] [--batch-age-ms MS] [--fetch-bytes B]
 *  [--row-format F] [--no-passthrough] [--null-table]`
 *
 * On one topic (produced here, or --topic), R rounds; each round runs every path once, in turn, with the same fetch
 * sizes (medians reported):
 * - baseline: a kafkajs consumer group that fetches and counts, nothing else (eachBatch), with kafkajs's own record
 *   decoding: what a plain kafkajs loop costs;
 * - the same loop with the lean record decoding every apilog client gets from createKafka (runtime/kafkajsFetch.ts):
 *   what the consumer's kafkajs costs, so the full path less this is the consumer's own work;
 * - full path: ApiCallConsumer — fetch, decode (registry), rows, insert into ClickHouse, commit — until the group's
 *   committed offsets reach the end of the topic; into a fresh production table (rollups) and a fresh raw table alone;
 * - passthrough (embedded only): kafkajs fetches, the Confluent-framed values are concatenated per partition batch and
 *   ClickHouse decodes them itself (AvroConfluent input format, schemas from the registry's ccompat API), then commit.
 * Events/s and CPU microseconds per event (this process: user + system, which includes the embedded engine's inserts;
 * a server's own CPU only with --server-pid) side by side, with ratios. Endpoints from KAFKA_BROKERS,
 * SCHEMA_REGISTRY_URL, CLICKHOUSE_URL (bench/perfStack.ts starts private ones). Last line:
 * {"events": N, "full_eps": …, "baseline_eps": …, "ratio": …, "cpu_us_per_event": …, "baseline_cpu_us_per_event": …, "cpu_ratio": …,
 *  "main_thread_cpu_us_per_event": …, "baseline_main_thread_cpu_us_per_event": …, "joined_cpu_us_per_event": …,
 *  "baseline_joined_cpu_us_per_event": …, "joined_cpu_ratio": …, "fetch_decoding": "lean", "lean_baseline_cpu_us_per_event": …,
 *  "own_cpu_us_per_event": …}
 * where cpu_ratio is the full path's CPU per event in this process over the kafkajs fetch-only baseline's, in the same
 * run (with the server sink, ClickHouse's own CPU is not in it), and own_cpu_us_per_event the full path's less the
 * lean-decoding loop's: the consumer's cost beyond its Kafka client's.
 * Each path's CPU is also split into the main thread's and the other threads' (V8's GC and compiler helpers), with
 * the main thread's garbage collections counted (Linux: per-thread CPU from /proc), and counted from the moment the
 * path's consumer joined its group (joined_cpu_ratio: the start-up, which does not grow with the events, left out).
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Command } from 'commander';
import type { Kafka } from 'kafkajs';
import { ApiCallConsumer } from '../consumer/apiCallConsumer.ts';
import { ensureApiCallsTable, isLegacyServer } from '../clickhouse/apiCallsTable.ts';
import { ChdbSink } from '../clickhouse/chdbSink.ts';
import { ClickHouseServerSink } from '../clickhouse/serverSink.ts';
import { deadLetterTopicFor } from '../consumer/deadLetters.ts';
import { DEFAULT_TUNING, fetchSizes, type ConsumerTuning } from '../consumer/options.ts';
import { ROW_FORMATS, type RowFormat, type Sink } from '../clickhouse/sink.ts';
import { ApiCallProducer } from '../producer/apiCallProducer.ts';
import { SyntheticEvents } from '../producer/syntheticEvents.ts';
import { ensureTopic } from '../producer/topic.ts';
import { createKafka } from '../runtime/kafka.ts';
import { leanFetchDecoding, useLeanFetchDecoding } from '../runtime/kafkajsFetch.ts';
import { createLogger } from '../runtime/log.ts';
import { apiCallTypeV1 } from '../schemas/apiCall.ts';
import { SchemaRegistryClient } from '../schemas/registry.ts';
import { gcCounter, mainThreadCpuUs, median, type GcCounts } from './measure.ts';
import { LOCAL_CLICKHOUSE_SERVER_URL, LOCAL_KAFKA_BROKERS, LOCAL_SCHEMA_REGISTRY_URL, readStackEnv } from '../stack/endpoints.ts';

interface Measured {
  readonly seconds: number;
  readonly cpuUs: number;
  /** The main thread's share of cpuUs (the rest: V8's helper threads, libuv's pool). */
  readonly mainCpuUs: number;
  readonly gc: GcCounts;
  /** CPU (all threads) from the moment the path's consumer joined its group: start-up (connecting, reading the table) left out. */
  readonly joinedCpuUs: number;
  /** CPU of the ClickHouse server process over the same interval, when its pid is given. */
  readonly serverCpuUs?: number;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const id = () => `${Date.now().toString(36)}${Math.floor(Math.random() * 1e6).toString(36)}`;

/** Times `run` up to the moment it resolves with its stop function; stopping (leaving the group) is not timed. */
async function measure(run: (joined: () => void) => Promise<() => Promise<void>>, serverPid?: number): Promise<Measured> {
  const server0 = processCpuUs(serverPid);
  const gc = gcCounter();
  const main0 = mainThreadCpuUs();
  const cpu0 = process.cpuUsage();
  let atJoin: NodeJS.CpuUsage | undefined;
  const t0 = performance.now();
  const stop = await run(() => (atJoin ??= process.cpuUsage()));
  const cpu = process.cpuUsage(cpu0);
  const sinceJoin = process.cpuUsage(atJoin ?? cpu0);
  const mainCpuUs = mainThreadCpuUs() - main0;
  const seconds = (performance.now() - t0) / 1000;
  const server1 = processCpuUs(serverPid);
  const gcCounts = await gc.stop();
  await stop();
  const serverCpuUs = server0 === undefined || server1 === undefined ? undefined : server1 - server0;
  return { seconds, cpuUs: cpu.user + cpu.system, mainCpuUs, gc: gcCounts, joinedCpuUs: sinceJoin.user + sinceJoin.system, ...(serverCpuUs === undefined ? {} : { serverCpuUs }) };
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

/** Fetch and count, nothing else (with the consumer's fetch sizes, like every path). */
async function baseline(kafka: Kafka, topic: string, events: number, fetchBytes: number, joined: () => void): Promise<() => Promise<void>> {
  const consumer = kafka.consumer({ groupId: `bench-baseline-${id()}`, ...fetchSizes(fetchBytes) });
  consumer.on(consumer.events.GROUP_JOIN, joined);
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

async function fullPath(
  kafka: Kafka, registry: SchemaRegistryClient, sink: Sink, topic: string, table: string, events: number, tuning: ConsumerTuning,
  joined: () => void, rowFormat?: RowFormat,
): Promise<() => Promise<void>> {
  const groupId = `bench-full-${id()}`;
  const consumer = new ApiCallConsumer({
    kafka, registry, sink, topic, table, groupId, deadLetterTopic: deadLetterTopicFor(topic), logger: createLogger('bench', 'error'), tuning,
    ...(rowFormat ? { rowFormat } : {}),
  });
  await consumer.start();
  // Joined once an assignment came (the rebalances counter); polled, as the consumer keeps its kafkajs consumer to itself.
  while ((await consumer.metrics.rebalances.get()).values.every((v) => v.value === 0)) await sleep(2);
  joined();
  while (consumer.stats.rows < events) await sleep(20);
  while (!(await committedAll(kafka, groupId, topic))) await sleep(50);
  return () => consumer.stop();
}

/**
 * ClickHouse decodes the Confluent frames itself. Values of a partition batch are concatenated into one file that an
 * INSERT … SELECT FROM file(…, 'AvroConfluent') reads (the embedded engine's raw insert takes text formats only).
 * A parse error fails the whole body: there is no per-message dead-lettering, and the rows carry no Kafka coordinates.
 */
async function passthrough(
  kafka: Kafka, registryUrl: string, sink: ChdbSink, topic: string, table: string, columns: string, events: number, fetchBytes: number,
  joined: () => void,
): Promise<() => Promise<void>> {
  const groupId = `bench-passthrough-${id()}`;
  const consumer = kafka.consumer({ groupId, ...fetchSizes(fetchBytes) });
  consumer.on(consumer.events.GROUP_JOIN, joined);
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

/** CPU seconds a process has used so far (user + system), from /proc; undefined when it cannot be read. */
function processCpuUs(pid: number | undefined): number | undefined {
  if (pid === undefined) return undefined;
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return ((Number(fields[11]) + Number(fields[12])) / 100) * 1e6; // utime, stime in clock ticks (100 Hz)
  } catch {
    return undefined; // not Linux or not our process: the server's CPU is not reported
  }
}

interface Variant {
  readonly label: string;
  readonly run: () => Promise<Measured>;
  readonly results: { eps: number; us: number; joinedUs: number; mainUs: number; minor: number; major: number; serverUs: number | undefined }[];
}

async function main(argv: string[]): Promise<void> {
  const program = new Command('bench:consumer')
    .option('--events <n>', 'events on the topic', (v) => Number(v), 200_000)
    .option('--sink <kind>', 'embedded (chdb, in this process) or server (CLICKHOUSE_URL)', 'embedded')
    .option('--partitions <n>', 'partitions of the topic', (v) => Number(v), 6)
    .option('--rounds <n>', 'rounds; each runs every path once, in turn (medians reported)', (v) => Number(v), 3)
    .option('--topic <name>', 'an existing topic holding exactly --events API-call events (skips producing)')
    .option('--concurrency <n>', 'partitionsConsumedConcurrently of the full path', (v) => Number(v), DEFAULT_TUNING.partitionsConsumedConcurrently)
    .option('--batch-rows <n>', 'maxBatchRows of the full path', (v) => Number(v), DEFAULT_TUNING.maxBatchRows)
    .option('--batch-age-ms <n>', 'maxBatchAgeMs of the full path: how long the last, partial batches wait once the topic is consumed', (v) => Number(v), 100)
    .option('--fetch-bytes <n>', 'maxBytesPerPartition of every path (baseline included)', (v) => Number(v), DEFAULT_TUNING.maxBytesPerPartition)
    .option('--row-format <format>', 'row format of the full path (default: the consumer\'s choice for the engine)')
    .option('--compare-formats', 'also run the full path with JSON lines (JSONCompactEachRow, or JSONEachRow on 18.16) instead of RowBinary')
    .option('--server-pid <pid>', 'pid of the ClickHouse server, to report its CPU per event too', (v) => Number(v))
    .option('--no-passthrough', 'skip the AvroConfluent passthrough (embedded only)')
    .option('--null-table', 'also run the full path into an ENGINE = Null table: what storing the rows costs ClickHouse');
  program.parse(argv, { from: 'user' });
  const f = program.opts<{
    events: number; sink: string; partitions: number; rounds: number; topic?: string; passthrough: boolean; concurrency: number;
    batchRows: number; batchAgeMs: number; fetchBytes: number; rowFormat?: string; compareFormats?: boolean; serverPid?: number; nullTable?: boolean;
  }>();
  const tuning = { partitionsConsumedConcurrently: f.concurrency, maxBatchRows: f.batchRows, maxBatchAgeMs: f.batchAgeMs, maxBytesPerPartition: f.fetchBytes };
  if (f.sink !== 'embedded' && f.sink !== 'server') throw new Error('--sink must be embedded or server');
  if (f.rowFormat !== undefined && !(ROW_FORMATS as readonly string[]).includes(f.rowFormat)) throw new Error(`--row-format must be one of ${ROW_FORMATS.join(', ')}`);
  const env = readStackEnv() ?? {};
  const brokers = (process.env['KAFKA_BROKERS'] ?? env.KAFKA_BROKERS ?? LOCAL_KAFKA_BROKERS).split(',');
  const registryUrl = process.env['SCHEMA_REGISTRY_URL'] ?? env.SCHEMA_REGISTRY_URL ?? LOCAL_SCHEMA_REGISTRY_URL;
  const say = (line: string) => process.stderr.write(`${line}\n`);
  const kafka = createKafka({ brokers, clientId: 'apilog-bench' });
  const fetchDecoding = leanFetchDecoding(); // installed by createKafka; its answer says whether it took
  const registry = new SchemaRegistryClient({ url: registryUrl });
  const topic = f.topic ?? `bench-consumer-${id()}`;
  if (f.topic === undefined) {
    await ensureTopic(kafka, { topic, partitions: f.partitions });
    const producer = new ApiCallProducer({ kafka, registry, topic });
    await producer.connect();
    const gen = new SyntheticEvents({ seed: 3, startMs: Date.UTC(2026, 10, 3), stepMs: 3 });
    for (let i = 0; i < f.events; i += 5000) await producer.send(gen.take(Math.min(5000, f.events - i)));
    await producer.disconnect();
  }
  await ensureTopic(kafka, { topic: deadLetterTopicFor(topic), partitions: 1 });
  say(`${f.events} events on ${topic}; sink ${f.sink}; ${f.rounds} rounds; full path: ${JSON.stringify(tuning)}`);

  const chdbDir = f.sink === 'embedded' ? mkdtempSync(join(tmpdir(), 'apilog-bench-chdb-')) : undefined;
  const sink: Sink = chdbDir ? new ChdbSink(chdbDir) : new ClickHouseServerSink({ url: process.env['CLICKHOUSE_URL'] ?? env.CLICKHOUSE_URL ?? LOCAL_CLICKHOUSE_SERVER_URL });
  await sink.query('SELECT 1'); // open the engine before timing
  const legacy = await isLegacyServer(sink);

  /** A fresh table per run (the production one: migrations with rollups; or its raw table alone). */
  const freshTable = async (rollups: boolean): Promise<string> => {
    const table = `bench_consumer_${id()}`;
    await ensureApiCallsTable(sink, table);
    if (!rollups && !legacy) for (const mv of ['_1m_mv', '_1h_mv', '_clients_1h_mv']) await sink.command(`DROP VIEW ${table}${mv}`);
    return table;
  };
  const checked = async (table: string, m: Measured): Promise<Measured> => {
    const rows = Number((await sink.query<{ n: string }>(`SELECT count() AS n FROM ${table}`))[0]?.n ?? 0);
    if (rows !== f.events) throw new Error(`full path stored ${rows} rows in ${table} for ${f.events} events`);
    return m;
  };
  const full = (rollups: boolean, rowFormat?: RowFormat) => async (): Promise<Measured> => {
    const table = await freshTable(rollups);
    return checked(table, await measure((joined) => fullPath(kafka, registry, sink, topic, table, f.events, tuning, joined, rowFormat), f.serverPid));
  };
  const format = f.rowFormat as RowFormat | undefined;
  /** kafkajs's own record decoding for the run (the baseline: a plain kafkajs loop), the lean one otherwise. */
  const kafkajsDecoding = async (run: () => Promise<Measured>): Promise<Measured> => {
    useLeanFetchDecoding(false);
    try {
      return await run();
    } finally {
      useLeanFetchDecoding(true);
    }
  };
  const variants: Variant[] = [
    { label: 'baseline (kafkajs fetch + count)', run: () => kafkajsDecoding(() => measure((joined) => baseline(kafka, topic, f.events, f.fetchBytes, joined))), results: [] },
  ];
  // The consumer runs kafkajs with the lean record decoder (runtime/kafkajsFetch.ts): its fetch alone, for what is ours.
  const lean = fetchDecoding === 'lean';
  if (lean) variants.push({ label: 'fetch + count, lean decoding', run: () => measure((joined) => baseline(kafka, topic, f.events, f.fetchBytes, joined)), results: [] });
  /**
   * The full path into a table of the raw table's columns with ENGINE = Null: ClickHouse parses every row and stores
   * nothing. Not a way to run: it shows what storing rows costs (the difference to the raw table).
   */
  const nullTable = async (): Promise<Measured> => {
    const raw = await freshTable(false);
    const table = `${raw}_null`;
    await sink.command(`CREATE TABLE ${table} AS ${raw} ENGINE = Null`);
    return measure((joined) => fullPath(kafka, registry, sink, topic, table, f.events, tuning, joined, format), f.serverPid);
  };
  if (legacy) {
    variants.push({ label: 'full, raw table (legacy: no rollups)', run: full(false, format), results: [] });
    if (f.compareFormats) variants.push({ label: 'full, raw table, JSONEachRow', run: full(false, 'JSONEachRow'), results: [] });
  } else {
    variants.push({ label: 'full, production table (rollups)', run: full(true, format), results: [] });
    variants.push({ label: 'full, raw table alone', run: full(false, format), results: [] });
    if (f.compareFormats) variants.push({ label: 'full, rollups, JSONCompactEachRow', run: full(true, 'JSONCompactEachRow'), results: [] });
  }
  if (f.nullTable) variants.push({ label: 'full, Null table (parsed, not stored)', run: nullTable, results: [] });
  if (f.passthrough && sink instanceof ChdbSink) {
    variants.push({
      label: 'passthrough (AvroConfluent)',
      run: async () => {
        const ptTable = await freshTable(true);
        // The columns the Avro record fills (a table column the schema lacks keeps its default).
        const fields = new Set((apiCallTypeV1 as unknown as { fields: { name: string }[] }).fields.map((x) => x.name));
        const columns = (await sink.describe(ptTable)).filter((c) => fields.has(c.name)).map((c) => c.name).join(', ');
        return checked(ptTable, await measure((joined) => passthrough(kafka, registryUrl, sink, topic, ptTable, columns, f.events, f.fetchBytes, joined), f.serverPid));
      },
      results: [],
    });
  }
  for (let round = 1; round <= f.rounds; round++) {
    for (const v of variants) {
      const m = await v.run();
      const result = {
        eps: f.events / m.seconds, us: m.cpuUs / f.events, joinedUs: m.joinedCpuUs / f.events, mainUs: m.mainCpuUs / f.events, minor: m.gc.minor, major: m.gc.major,
        serverUs: m.serverCpuUs === undefined ? undefined : m.serverCpuUs / f.events,
      };
      v.results.push(result);
      say(
        `round ${round}: ${v.label}: ${Math.round(result.eps)} events/s, ${result.us.toFixed(2)} CPU µs/event (main thread ${result.mainUs.toFixed(2)}; from the group join ${result.joinedUs.toFixed(2)})` +
          `${result.serverUs === undefined ? '' : ` + server ${result.serverUs.toFixed(2)}`}; GC ${m.gc.minor} scavenges ${m.gc.minorMs.toFixed(0)} ms, ${m.gc.major} mark-compacts ${m.gc.majorMs.toFixed(0)} ms`,
      );
    }
  }
  const summary = variants.map((v) => ({
    label: v.label,
    eps: Math.round(median(v.results.map((r) => r.eps))),
    us: Math.round(median(v.results.map((r) => r.us)) * 100) / 100,
    mainUs: Math.round(median(v.results.map((r) => r.mainUs)) * 100) / 100,
    joinedUs: Math.round(median(v.results.map((r) => r.joinedUs)) * 100) / 100,
    minor: median(v.results.map((r) => r.minor)),
    major: median(v.results.map((r) => r.major)),
    serverUs: v.results[0]!.serverUs === undefined ? undefined : Math.round(median(v.results.map((r) => r.serverUs!)) * 100) / 100,
  }));
  const base = summary[0]!;
  const leanBase = lean ? summary[1]! : undefined;
  const main = summary[lean ? 2 : 1]!;
  say(`medians of ${f.rounds} rounds (CPU: this process${f.serverPid ? ' + the server process' : legacy || f.sink === 'server' ? '; the server\'s own CPU not counted' : ', engine included'}):`);
  say(`${'path'.padEnd(40)} ${'events/s'.padStart(9)} ${'CPU µs/event'.padStart(13)} ${'main'.padStart(6)} ${'helpers'.padStart(8)} ${'joined'.padStart(7)} ${'GC minor/major'.padStart(15)} ${'vs baseline'.padStart(12)} ${'CPU vs baseline'.padStart(16)}`);
  for (const r of summary) {
    const cpu = r.serverUs === undefined ? r.us.toFixed(2) : `${r.us.toFixed(2)}+${r.serverUs.toFixed(2)}`;
    say(
      `${r.label.padEnd(40)} ${String(r.eps).padStart(9)} ${cpu.padStart(13)} ${r.mainUs.toFixed(2).padStart(6)} ${(r.us - r.mainUs).toFixed(2).padStart(8)} ${r.joinedUs.toFixed(2).padStart(7)} ` +
        `${`${r.minor}/${r.major}`.padStart(15)} ${(r.eps / base.eps).toFixed(2).padStart(12)} ${(r.us / base.us).toFixed(2).padStart(16)}`,
    );
  }
  say('main: the main thread (JavaScript, and its share of GC); helpers: the other threads (V8\'s parallel and concurrent GC and compilers, libuv\'s pool);');
  say('vs baseline: events/s over the baseline\'s; CPU vs baseline: this process\'s CPU per event over the baseline\'s');
  say('joined: all threads, from the moment the group was joined (start-up left out); GC: counts on the main thread per run');
  await sink.close();
  if (chdbDir) rmSync(chdbDir, { recursive: true, force: true });
  process.stdout.write(
    `${JSON.stringify({ events: f.events, full_eps: main.eps, baseline_eps: base.eps, ratio: Math.round((main.eps / base.eps) * 100) / 100, cpu_us_per_event: main.us, baseline_cpu_us_per_event: base.us, cpu_ratio: Math.round((main.us / base.us) * 100) / 100, main_thread_cpu_us_per_event: main.mainUs, baseline_main_thread_cpu_us_per_event: base.mainUs, joined_cpu_us_per_event: main.joinedUs, baseline_joined_cpu_us_per_event: base.joinedUs, joined_cpu_ratio: Math.round((main.joinedUs / base.joinedUs) * 100) / 100, fetch_decoding: fetchDecoding, ...(leanBase === undefined ? {} : { lean_baseline_cpu_us_per_event: leanBase.us, own_cpu_us_per_event: Math.round((main.us - leanBase.us) * 100) / 100 }), ...(main.serverUs === undefined ? {} : { server_cpu_us_per_event: main.serverUs }) })}\n`,
  );
}

main(process.argv.slice(2)).then(
  () => process.exit(0),
  (error: unknown) => {
    process.stderr.write(`bench:consumer: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(1);
  },
);
