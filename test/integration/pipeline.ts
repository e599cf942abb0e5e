/** Shared steps of the integration tests: produce through the real broker and registry, consume, read back. */
import { randomBytes } from 'node:crypto';
import { inject } from 'vitest';
import { ApiCallConsumer } from '../../consumer/apiCallConsumer.ts';
import { ensureApiCallsTable, isLegacyServer } from '../../clickhouse/apiCallsTable.ts';
import { deadLetterTopicFor } from '../../consumer/deadLetters.ts';
import type { Sink } from '../../clickhouse/sink.ts';
import { ApiCallProducer } from '../../producer/apiCallProducer.ts';
import { ensureTopic } from '../../producer/topic.ts';
import { createKafka } from '../../runtime/kafka.ts';
import { createLogger } from '../../runtime/log.ts';
import type { ApiCallEvent } from '../../schemas/apiCall.ts';
import { SchemaRegistryClient } from '../../schemas/registry.ts';
import { ClickHouseServerSink } from '../../clickhouse/serverSink.ts';
import { SyntheticEvents } from '../../producer/syntheticEvents.ts';
import { TcpProxy } from '../faults/tcpProxy.ts';

export const stack = () => inject('stack');

/** A name no other test run uses (topics, tables, groups). */
export const uniqueName = (prefix: string) => `${prefix}_${Date.now().toString(36)}_${randomBytes(3).toString('hex')}`;

export const logger = createLogger('apilog-test', process.env['APILOG_LOG_LEVEL'] ?? 'error');
export const kafkaClient = () => createKafka({ brokers: [stack().brokers], clientId: 'apilog-test', logger });
export const registryClient = () => new SchemaRegistryClient({ url: stack().registry });

export async function produce(topic: string, events: readonly ApiCallEvent[], partitions = 6): Promise<number> {
  const kafka = kafkaClient();
  await ensureTopic(kafka, { topic, partitions });
  const producer = new ApiCallProducer({ kafka, registry: registryClient(), topic });
  const schemaId = await producer.connect();
  for (let i = 0; i < events.length; i += 2000) await producer.send(events.slice(i, i + 2000));
  await producer.disconnect();
  return schemaId;
}

export async function countRows(sink: Sink, table: string): Promise<number> {
  const rows = await sink.query<{ n: string | number }>(`SELECT count() AS n FROM ${table}`);
  return Number(rows[0]?.n ?? 0);
}

/** Creates the dead-letter topic and the table, then runs a fresh consumer group until `expected` rows are in it. */
export async function consumeInto(sink: Sink, table: string, topic: string, expected: number, timeoutMs = 90_000): Promise<number> {
  await ensureTopic(kafkaClient(), { topic: deadLetterTopicFor(topic), partitions: 1 });
  await ensureApiCallsTable(sink, table);
  return runConsumerUntil(sink, table, topic, expected, { groupId: uniqueName('group'), timeoutMs });
}

/**
 * Runs the consumer group `groupId` on an existing table until `expected` rows are in it (or the deadline passes),
 * then stops it; returns the row count.
 */
export async function runConsumerUntil(
  sink: Sink,
  table: string,
  topic: string,
  expected: number,
  options: { groupId: string; timeoutMs?: number },
): Promise<number> {
  const consumer = new ApiCallConsumer({
    kafka: kafkaClient(), registry: registryClient(), sink, logger, topic, table, deadLetterTopic: deadLetterTopicFor(topic), groupId: options.groupId,
  });
  await consumer.start();
  const deadline = Date.now() + (options.timeoutMs ?? 90_000);
  try {
    while ((await countRows(sink, table)) < expected && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
    // Give a wrong extra batch the chance to show up before the count is final.
    await new Promise((r) => setTimeout(r, 500));
    return await countRows(sink, table);
  } finally {
    await consumer.stop();
  }
}

type Stored = Omit<ApiCallEvent, 'ts' | 'latency_us' | 'request_bytes' | 'response_bytes' | 'attributes'> & {
  ts: string | number;
  latency_us: string | number;
  request_bytes: string | number;
  response_bytes: string | number;
  attributes: string | Record<string, string>;
};

/** Every row of the table as an ApiCallEvent, ordered by event_id, whatever the table dialect. */
export async function readBack(sink: Sink, table: string): Promise<ApiCallEvent[]> {
  const legacy = await isLegacyServer(sink);
  const ts = legacy ? 'ts' : 'toUnixTimestamp64Milli(ts) AS ts';
  const rows = await sink.query<Stored>(
    `SELECT toString(event_id) AS event_id, ${ts}, api, method, route, path, status, latency_us, request_bytes, response_bytes,
            service, instance, environment, client_id, client_ip, user_id, tenant_id, trace_id, span_id,
            error_class, error_message, attributes
     FROM ${table} ORDER BY event_id`,
  );
  return rows.map((r) => ({
    ...r,
    ts: Number(r.ts),
    latency_us: Number(r.latency_us),
    request_bytes: Number(r.request_bytes),
    response_bytes: Number(r.response_bytes),
    attributes: typeof r.attributes === 'string' ? (JSON.parse(r.attributes) as Record<string, string>) : r.attributes,
  }));
}

export const byEventId = (a: ApiCallEvent, b: ApiCallEvent) => (a.event_id < b.event_id ? -1 : a.event_id > b.event_id ? 1 : 0);

export type Cleanup = (() => Promise<void>)[];

export interface ProxiedScenario {
  readonly topic: string;
  readonly table: string;
  readonly group: string;
  /** Straight to the server. */
  readonly sink: ClickHouseServerSink;
  /** A proxy in front of the server. */
  readonly proxy: TcpProxy;
}

/**
 * For the tests that hold requests at a proxy (test/faults/tcpProxy.ts): a topic with `n` events, its dead-letter
 * topic, a fresh table on the ClickHouse server and a proxy in front of the server; closed at cleanup.
 */
export async function proxiedScenario(name: string, n: number, partitions: number, cleanup: Cleanup): Promise<ProxiedScenario> {
  const topic = uniqueName(`it-${name}`);
  const table = uniqueName(name.replace(/-/g, '_'));
  await produce(topic, new SyntheticEvents({ seed: n, startMs: Date.UTC(2026, 10, 4) }).take(n), partitions);
  await ensureTopic(kafkaClient(), { topic: deadLetterTopicFor(topic), partitions: 1 });
  const sink = new ClickHouseServerSink({ url: stack().clickhouse });
  cleanup.push(() => sink.close());
  await ensureApiCallsTable(sink, table);
  const proxy = await TcpProxy.inFrontOf(stack().clickhouse);
  cleanup.push(() => proxy.close());
  return { topic, table, group: uniqueName('group'), sink, proxy };
}
