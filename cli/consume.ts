/**
 * `apilog consume`: runs one member of the consumer group that lands the topic in ClickHouse exactly once
 * (consumer/apiCallConsumer.ts). Run several processes with the same --group to share the partitions (a ClickHouse
 * server; the embedded engine allows one process per directory).
 *
 * Serves /metrics, /healthz, /readyz on --metrics-port. SIGTERM or SIGINT: the batch in progress is flushed and
 * committed, the group is left, and the process exits within --shutdown-deadline-ms (exit 1 if it had to abandon).
 * Secrets come from the environment only: KAFKA_SASL_PASSWORD, CLICKHOUSE_PASSWORD (and CLICKHOUSE_USER).
 */
import type { Command } from 'commander';
import { InvalidArgumentError, Option } from 'commander';
import type { Kafka } from 'kafkajs';
import { ApiCallConsumer } from '../consumer/apiCallConsumer.ts';
import { retrying } from '../runtime/backoff.ts';
import { DEFAULT_TABLE, ensureApiCallsTable } from '../clickhouse/apiCallsTable.ts';
import { deadLetterTopicFor } from '../consumer/deadLetters.ts';
import { startHealthServer } from '../consumer/healthServer.ts';
import { ConsumerMetrics } from '../consumer/metrics.ts';
import { DEFAULT_TUNING, type ConsumerTuning } from '../consumer/options.ts';
import { CRASH_POINTS, type CrashPoint } from '../consumer/partitionIngest.ts';
import { ensureTopic } from '../producer/topic.ts';
import { ROW_FORMATS, checkTableName, type RowFormat, type Sink } from '../clickhouse/sink.ts';
import { locateUnreadableBatch } from '../consumer/unreadableBatch.ts';
import { ConfigError, describeError } from '../runtime/errors.ts';
import { createKafka, type KafkaTarget } from '../runtime/kafka.ts';
import { CODEC_IDS, refuseCodec, unreadableBatchIn } from '../runtime/kafkaCodecs.ts';
import { createLogger } from '../runtime/log.ts';
import { nonNegativeInt, positiveInt } from './arguments.ts';
import { registryFor, resolveEndpoints, sinkFor, withEndpoints, type EndpointFlags } from './endpoints.ts';
import { kafkaSecurity, withKafkaSecurity, type SecurityFlags as KafkaSecurityFlags } from './kafkaSecurity.ts';
import { EXIT, exitCodeFor } from './exitCodes.ts';
import { preflight } from './preflight.ts';

// Kept here too: tests and callers import it from consume.ts, where it began.
export { kafkaSecurity, type SecurityFlags } from './kafkaSecurity.ts';

/** A ClickHouse request taking longer is given up (and, for an insert, fenced or sent again whole). */
export const DEFAULT_CLICKHOUSE_TIMEOUT_MS = 20_000;

interface ConsumeFlags extends EndpointFlags, KafkaSecurityFlags {
  group: string;
  table: string;
  deadLetterTopic?: string;
  createTable: boolean;
  fromLatest: boolean;
  batchRows: number;
  batchBytes: number;
  rowFormat?: RowFormat;
  batchAgeMs: number;
  concurrency: number;
  sessionTimeoutMs: number;
  heartbeatIntervalMs: number;
  rebalanceTimeoutMs: number;
  shutdownDeadlineMs: number;
  clickhouseTimeoutMs?: number;
  metricsPort: number;
  metricsHost: string;
  crashAt?: CrashAt;
  refuseCodec?: keyof typeof CODEC_IDS;
}

interface CrashAt {
  readonly points: ReadonlySet<string>;
  readonly probability: number;
}

/** `--crash-at after-insert,before-insert:0.05`: crash points and the chance to SIGKILL this process at each. */
export function parseCrashAt(value: string): CrashAt {
  const [list = '', p = '0.05'] = value.split(':');
  const points = new Set(list.split(',').filter((x) => x.length > 0));
  for (const point of points) {
    if (!(CRASH_POINTS as readonly string[]).includes(point)) throw new InvalidArgumentError(`unknown crash point ${point}`);
  }
  const probability = Number(p);
  if (!(probability > 0 && probability <= 1)) throw new InvalidArgumentError('expected a probability in (0, 1]');
  return { points, probability };
}

export function registerConsume(program: Command): void {
  const d = DEFAULT_TUNING;
  withKafkaSecurity(withEndpoints(program.command('consume')))
    .description('consume the topic into ClickHouse exactly once, as one member of a consumer group')
    .option('--group <id>', 'consumer group id', 'apilog-consumer')
    .option('--table <name>', 'ClickHouse table (needs _topic, _partition, _offset columns)', DEFAULT_TABLE)
    .option('--dead-letter-topic <name>', 'topic for records that cannot be decoded or stored (default <topic>.dead-letter)')
    .option('--create-table', 'create the table (and the dead-letter topic) if missing', false)
    .option('--from-latest', 'a group without committed offsets starts at the end instead of the beginning', false)
    .option('--batch-rows <n>', 'flush a partition batch at this many rows', positiveInt, d.maxBatchRows)
    .option('--batch-bytes <n>', 'flush a partition batch at this many bytes of rows', positiveInt, d.maxBatchBytes)
    .addOption(
      new Option('--row-format <format>', 'rows sent to ClickHouse (default RowBinary from the Avro bytes; JSON lines as a fallback)')
        .choices(ROW_FORMATS),
    )
    .option('--batch-age-ms <ms>', 'flush a caught-up partition batch this old', positiveInt, d.maxBatchAgeMs)
    .option('--concurrency <n>', 'partitions processed at the same time', positiveInt, d.partitionsConsumedConcurrently)
    .option('--session-timeout-ms <ms>', 'Kafka group session timeout', positiveInt, d.sessionTimeoutMs)
    .option('--heartbeat-interval-ms <ms>', 'Kafka heartbeat interval', positiveInt, d.heartbeatIntervalMs)
    .option('--rebalance-timeout-ms <ms>', 'Kafka rebalance timeout (longer than any insert)', positiveInt, d.rebalanceTimeoutMs)
    .option('--shutdown-deadline-ms <ms>', 'exit at the latest this long after SIGTERM', positiveInt, d.shutdownDeadlineMs)
    .option('--clickhouse-timeout-ms <ms>', `give up on a ClickHouse request after this long, below the rebalance timeout (default ${DEFAULT_CLICKHOUSE_TIMEOUT_MS}, at most half the rebalance timeout)`, positiveInt)
    .option('--metrics-port <port>', 'port for /metrics, /healthz, /readyz (0: any free port)', nonNegativeInt, 9464)
    .option('--metrics-host <host>', 'address the metrics server listens on', '127.0.0.1')
    .addOption(
      new Option('--crash-at <points:probability>', 'crash tests only: SIGKILL this process at these crash points with this probability')
        .argParser(parseCrashAt)
        .hideHelp(),
    )
    .addOption(
      new Option('--refuse-codec <codec>', 'crash tests only: read batches in this codec as a codec this consumer does not know')
        .choices(Object.keys(CODEC_IDS))
        .hideHelp(),
    )
    .addHelpText(
      'after',
      '\nReplicas: --clickhouse http://replica-1:8123,http://replica-2:8123 (the replicas of one shard, a Replicated table on\n' +
        'each; `apilog migrate` with the same list makes it). Inserts go to one replica and move to the next when it fails.',
    )
    .action(async (flags: ConsumeFlags) => {
      process.exitCode = await runConsume(flags);
    });
}

async function runConsume(flags: ConsumeFlags): Promise<number> {
  const endpoints = resolveEndpoints(flags);
  // eachBatch must end within the rebalance timeout: a ClickHouse request may not take longer.
  const clickhouseTimeoutMs = flags.clickhouseTimeoutMs ?? Math.min(DEFAULT_CLICKHOUSE_TIMEOUT_MS, Math.floor(flags.rebalanceTimeoutMs / 2));
  if (clickhouseTimeoutMs >= flags.rebalanceTimeoutMs) {
    throw new ConfigError(`--clickhouse-timeout-ms (${clickhouseTimeoutMs}) must be below --rebalance-timeout-ms (${flags.rebalanceTimeoutMs})`);
  }
  const tuning: ConsumerTuning = {
    maxBatchRows: flags.batchRows,
    maxBatchBytes: flags.batchBytes,
    maxBatchAgeMs: flags.batchAgeMs,
    partitionsConsumedConcurrently: flags.concurrency,
    sessionTimeoutMs: flags.sessionTimeoutMs,
    heartbeatIntervalMs: flags.heartbeatIntervalMs,
    rebalanceTimeoutMs: flags.rebalanceTimeoutMs,
    shutdownDeadlineMs: flags.shutdownDeadlineMs,
  };
  const logger = createLogger('apilog-consume', process.env['APILOG_LOG_LEVEL'] ?? 'info');
  // One Kafka target, TLS and SASL included, for the preflight and for the consumer's own client.
  const kafkaTarget: KafkaTarget = { brokers: endpoints.brokers, ...kafkaSecurity(flags) };
  const sink = await sinkFor(endpoints, flags, { requestTimeoutMs: clickhouseTimeoutMs });
  const registry = registryFor(endpoints, flags);
  if (flags.refuseCodec) refuseCodec(flags.refuseCodec);
  const kafka = createKafka({ ...kafkaTarget, clientId: 'apilog-consume', logger });
  const deadLetterTopic = flags.deadLetterTopic ?? deadLetterTopicFor(endpoints.topic);
  // A consumer started while Kafka, the registry or ClickHouse is down waits for them (a restart loop under a
  // supervisor would do the same, slower); until then nothing is fetched and nothing committed. A broker that
  // refuses the TLS/SASL settings is a ConfigError: not waited on.
  // The table check runs in the same loop: a ClickHouse that answered the preflight and then went away (restarted,
  // frozen) is waited for too. A missing table is a ConfigError: said at once.
  await retrying({ initialMs: 500, maxMs: 10_000 }, async () => {
    await preflight({ ...kafkaTarget, registry, sink });
    if (flags.createTable) {
      await ensureApiCallsTable(sink, flags.table);
      await ensureTopic(kafka, { topic: deadLetterTopic, partitions: 1 });
    } else {
      await requireTable(sink, flags.table);
    }
  }, {
    onRetry: (error, attempt, delayMs) => logger.warn({ attempt, delayMs, error: describeError(error) }, 'waiting for the services'),
  });
  const metrics = new ConsumerMetrics();
  let fatal: Error | undefined;
  let wake: () => void = () => undefined;
  const stopped = new Promise<string>((resolve) => {
    wake = () => resolve('fatal');
    process.once('SIGTERM', () => resolve('SIGTERM'));
    process.once('SIGINT', () => resolve('SIGINT'));
  });
  const consumer = new ApiCallConsumer({
    kafka, registry, sink, logger, metrics, tuning, deadLetterTopic,
    topic: endpoints.topic,
    groupId: flags.group,
    table: flags.table,
    fromBeginning: !flags.fromLatest,
    ...(flags.rowFormat ? { rowFormat: flags.rowFormat } : {}),
    ...(flags.crashAt ? { crashPoint: crashPointKiller(flags.crashAt, logger) } : {}),
    onFatal: (error) => {
      fatal = error;
      wake();
    },
  });
  const server = await startHealthServer(flags.metricsPort, flags.metricsHost, metrics.registry, {
    healthy: () => consumer.healthy,
    ready: () => consumer.ready,
  });
  logger.info(
    { topic: endpoints.topic, group: flags.group, table: flags.table, sink: sink.kind, clickhouse: sink.address, metricsPort: server.port, tuning: consumer.tuning },
    'consumer starting',
  );
  await consumer.start();
  const reason = await stopped;
  logger.info({ reason }, 'stopping');
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<'deadline'>((resolve) => {
    timer = setTimeout(() => resolve('deadline'), consumer.tuning.shutdownDeadlineMs);
  });
  const outcome = await Promise.race([
    (async () => {
      await consumer.stop();
      await sink.close();
      return 'clean' as const;
    })(),
    deadline,
  ]).catch((error: unknown) => {
    logger.error({ error: describeError(error) }, 'error while stopping');
    return 'error' as const;
  });
  clearTimeout(timer);
  await server.close();
  logger.info({ outcome, stats: consumer.stats }, 'stopped');
  if (fatal !== undefined) {
    const line = unreadableBatchIn(fatal) ? await unreadableLine(kafka, fatal, endpoints.topic, flags.group, !flags.fromLatest) : describeError(fatal);
    process.stderr.write(`apilog: ${line}\n`);
    return exitCodeFor(fatal);
  }
  // A deadline exit abandons buffered rows: nothing uncommitted is lost, the next owner reads it again.
  // Exit even if a client library still holds a socket open.
  const code = outcome === 'clean' ? EXIT.ok : EXIT.failed;
  setTimeout(() => process.exit(code), 500).unref();
  return code;
}

/** The fatal line for a batch the consumer cannot read: the codec, and the partition it is on (found by a probe). */
async function unreadableLine(kafka: Kafka, fatal: Error, topic: string, groupId: string, fromBeginning: boolean): Promise<string> {
  const at = await locateUnreadableBatch(kafka, { topic, groupId, fromBeginning }).catch(() => undefined);
  const where = at ? `topic ${topic} partition ${at.partition}` : `topic ${topic} (the partition could not be found within 20 s)`;
  const committed = at ? `nothing from offset ${at.from} on is committed` : 'nothing of it is committed';
  return `${where}: ${describeError(fatal)}; ${committed}. Upgrade apilog, or have the producer use a codec it reads`;
}

/** Fails with an actionable message when the table is missing (the schema is the migrations' job, not the consumer's). */
async function requireTable(sink: Sink, table: string): Promise<void> {
  // EXISTS TABLE also resolves a db.table name (checkTableName allows one db. prefix).
  const rows = await sink.query<{ result: number | string }>(`EXISTS TABLE ${checkTableName(table)}`);
  if (Number(rows[0]?.result ?? 0) === 0) {
    throw new ConfigError(`table ${table} does not exist in ClickHouse at ${sink.address}: run \`apilog migrate\` first, or pass --create-table`);
  }
}

function crashPointKiller(crashAt: CrashAt, logger: ReturnType<typeof createLogger>): (point: CrashPoint) => void {
  return (point) => {
    if (!crashAt.points.has(point) || Math.random() >= crashAt.probability) return;
    logger.warn({ point }, 'crash point: SIGKILL');
    logger.flush();
    process.kill(process.pid, 'SIGKILL');
  };
}
