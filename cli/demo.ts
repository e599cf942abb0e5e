/**
 * `apilog demo`: the whole pipeline once, on local defaults. Starts the local stack if it is not up,
 * creates the topic, produces synthetic API-call events, consumes them into ClickHouse (embedded by default)
 * and prints what landed, per API, read back from ClickHouse. Last line: {"produced": N, "rows": R}.
 */
import { randomUUID } from 'node:crypto';
import { ApiCallConsumer } from '../consumer/apiCallConsumer.ts';
import { ensureApiCallsTable } from '../clickhouse/apiCallsTable.ts';
import { deadLetterTopicFor } from '../consumer/deadLetters.ts';
import { isServerUrl } from '../clickhouse/openSink.ts';
import { createApiLogger } from '../producer/apiLogger.ts';
import { SyntheticEvents } from '../producer/syntheticEvents.ts';
import { ensureTopic } from '../producer/topic.ts';
import { ApilogError } from '../runtime/errors.ts';
import { createKafka } from '../runtime/kafka.ts';
import { createLogger } from '../runtime/log.ts';
import { LOCAL_CLICKHOUSE_SERVER_URL } from '../stack/endpoints.ts';
import type { ServiceName } from '../stack/services.ts';
import { status, up } from '../stack/stack.ts';
import type { Command } from 'commander';
import { DEFAULT_TABLE } from '../clickhouse/apiCallsTable.ts';
import { positiveInt } from './arguments.ts';
import { registryFor, resolveEndpoints, sinkFor, withEndpoints, type EndpointFlags, type Endpoints } from './endpoints.ts';
import { preflight } from './preflight.ts';

export interface DemoOptions {
  readonly endpoints: Endpoints;
  readonly count: number;
  readonly apis: number;
  readonly partitions: number;
  readonly table: string;
  readonly timeoutMs: number;
  /** --registry-ca, --clickhouse-ca: the CAs of an https:// registry and ClickHouse. */
  readonly registryCa?: string;
  readonly clickhouseCa?: string;
}

export interface DemoResult {
  readonly produced: number;
  readonly rows: number;
}

const say = (line: string) => process.stdout.write(`${line}\n`);

/** Starts the local services that the defaults point at and that do not answer yet. */
async function startLocalStackIfNeeded(endpoints: Endpoints): Promise<void> {
  const needed: ServiceName[] = [];
  if (endpoints.defaulted.brokers) needed.push('kafka');
  if (endpoints.defaulted.registry) needed.push('registry');
  if (endpoints.clickhouse === LOCAL_CLICKHOUSE_SERVER_URL) needed.push('clickhouse');
  if (needed.length === 0) return;
  // The stack's own health probes answer this; the preflight below still checks every endpoint the demo uses.
  const toStart = (await status(needed)).filter((s) => !s.healthy).map((s) => s.name);
  if (toStart.length === 0) return;
  say(`starting the local stack (${toStart.join(', ')}); logs in .stack/logs`);
  await up(toStart);
}

export async function runDemo(options: DemoOptions): Promise<DemoResult> {
  const { endpoints } = options;
  const logger = createLogger('apilog-demo', process.env['APILOG_LOG_LEVEL'] ?? 'error');
  const registry = registryFor(endpoints, options.registryCa === undefined ? {} : { registryCa: options.registryCa });
  await startLocalStackIfNeeded(endpoints);

  const sink = await sinkFor(endpoints, options.clickhouseCa === undefined ? {} : { clickhouseCa: options.clickhouseCa });
  await preflight({ brokers: endpoints.brokers, registry, sink });
  say(`Kafka ${endpoints.brokers.join(',')} · registry ${registry.url} · ClickHouse ${isServerUrl(endpoints.clickhouse) ? sink.address : `embedded (${sink.address})`}`);

  const kafka = createKafka({ brokers: endpoints.brokers, clientId: 'apilog-demo', logger });
  const partitions = await ensureTopic(kafka, { topic: endpoints.topic, partitions: options.partitions });
  const deadLetterTopic = deadLetterTopicFor(endpoints.topic);
  await ensureTopic(kafka, { topic: deadLetterTopic, partitions: 1 });
  await ensureApiCallsTable(sink, options.table);

  // Tag this run's events so the read-back counts only them, whatever earlier runs left in the table.
  const run = `demo-${randomUUID().slice(0, 8)}`;
  // Produced through the SDK a service would use: log() per event; 'wait' so a full queue slows the loop, not drops.
  const apiLogger = await createApiLogger({ kafka, registry, topic: endpoints.topic, whenFull: 'wait', logger });
  const events = new SyntheticEvents({ apis: options.apis, seed: Date.now() % 2 ** 31, instance: run });
  const t0 = performance.now();
  for (let logged = 0; logged < options.count; ) {
    const n = Math.min(2000, options.count - logged);
    for (const event of events.take(n)) {
      const accepted = apiLogger.log(event);
      if (accepted !== true) await accepted; // only when the queue is full
    }
    logged += n;
  }
  const produced = await apiLogger.close();
  const produceMs = performance.now() - t0;
  if (produced.sent !== options.count) {
    throw new ApilogError(`the SDK delivered ${produced.sent} of ${options.count} events (dropped ${produced.dropped}, rejected ${produced.rejected})`);
  }
  say(`produced ${options.count} events to ${endpoints.topic} with the SDK (${partitions} partitions, schema id ${apiLogger.schemaId}, ${produced.batches} batches) in ${(produceMs / 1000).toFixed(1)} s`);

  const consumer = new ApiCallConsumer({
    kafka, registry, sink, logger,
    topic: endpoints.topic,
    groupId: 'apilog-demo',
    table: options.table,
    deadLetterTopic,
  });
  const t1 = performance.now();
  await consumer.start();
  const countRows = async () =>
    Number((await sink.query<{ n: string | number }>(`SELECT count() AS n FROM ${options.table} WHERE instance = {run:String}`, { run }))[0]?.n ?? 0);
  let rows = 0;
  const deadline = Date.now() + options.timeoutMs;
  while ((rows = await countRows()) < options.count && Date.now() < deadline) await new Promise((r) => setTimeout(r, 250));
  await consumer.stop();
  say(`consumed into ${options.table} in ${((performance.now() - t1) / 1000).toFixed(1)} s (${consumer.stats.batches} inserts)`);

  const perApi = await sink.query<{ api: string; calls: string | number; errors: string | number; p99_ms: number }>(
    `SELECT api, count() AS calls, countIf(status >= 500) AS errors, round(quantile(0.99)(latency_us) / 1000, 1) AS p99_ms
     FROM ${options.table} WHERE instance = {run:String} GROUP BY api ORDER BY calls DESC, api`,
    { run },
  );
  say('');
  say(`${'api'.padEnd(22)} ${'calls'.padStart(7)} ${'5xx'.padStart(5)} ${'p99 ms'.padStart(8)}`);
  for (const r of perApi) say(`${r.api.padEnd(22)} ${String(r.calls).padStart(7)} ${String(r.errors).padStart(5)} ${String(r.p99_ms).padStart(8)}`);
  say('');
  await sink.close();
  return { produced: options.count, rows };
}

export function registerDemo(program: Command): void {
  withEndpoints(program.command('demo'))
    .description('run the pipeline end to end on local defaults (starts the local stack if needed) and print what landed')
    .option('--count <n>', 'events to produce', positiveInt, 10_000)
    .option('--apis <n>', 'distinct API names', positiveInt, 12)
    .option('--partitions <n>', 'partitions of the topic when it is created', positiveInt, 6)
    .option('--table <name>', 'ClickHouse table', DEFAULT_TABLE)
    .option('--timeout <seconds>', 'give up waiting for rows after this long', positiveInt, 120)
    .action(async (opts: EndpointFlags & { count: number; apis: number; partitions: number; table: string; timeout: number }) => {
      const result = await runDemo({
        endpoints: resolveEndpoints(opts),
        count: opts.count,
        apis: opts.apis,
        partitions: opts.partitions,
        table: opts.table,
        timeoutMs: opts.timeout * 1000,
        ...(opts.registryCa === undefined ? {} : { registryCa: opts.registryCa }),
        ...(opts.clickhouseCa === undefined ? {} : { clickhouseCa: opts.clickhouseCa }),
      });
      process.stdout.write(`${JSON.stringify({ produced: result.produced, rows: result.rows })}\n`);
      process.exitCode = result.rows === result.produced ? 0 : 1;
    });
}
