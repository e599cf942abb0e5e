/**
 * The other direction (integration): ClickHouse's own readers take what the SDK writes. The embedded engine's Kafka
 * table engine (librdkafka inside chdb) fetches the topic the SDK wrote with each codec and decodes the values with
 * the `AvroConfluent` format, fetching the writer schema from the registry's Confluent API by the frame's id:
 * every event comes back once with its values. Independent of our consumer: codecs, framing and Avro body are
 * checked by another implementation of each.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Session } from 'chdb';
import { afterAll, describe, expect, it } from 'vitest';
import { createApiLogger } from '../../producer/apiLogger.ts';
import { SyntheticEvents } from '../../producer/syntheticEvents.ts';
import { ensureTopic } from '../../producer/topic.ts';
import { COMPRESSIONS } from '../../runtime/kafkaCodecs.ts';
import type { ApiCallEvent } from '../../schemas/apiCall.ts';
import { byEventId, kafkaClient, stack, uniqueName } from './pipeline.ts';

/** The table's columns, typed as ClickHouse maps the Avro schema (timestamp-millis → DateTime64(3), unions → Nullable). */
const COLUMNS = `event_id String, ts DateTime64(3, 'UTC'), api String, method String, route String, path String, status Int32,
  latency_us Int64, request_bytes Int64, response_bytes Int64, service String, instance String, environment String,
  client_id Nullable(String), client_ip Nullable(String), user_id Nullable(String), tenant_id Nullable(String),
  trace_id Nullable(String), span_id Nullable(String), error_class Nullable(String), error_message Nullable(String),
  attributes Map(String, String)`;

const quote = (s: string) => `'${s.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;

describe('ClickHouse reads what the SDK writes (integration, embedded engine)', () => {
  const dirs: string[] = [];
  afterAll(() => {
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  it('the Kafka engine with AvroConfluent decodes every event the SDK wrote, in each codec', async () => {
    const topic = uniqueName('it-ch-avro');
    await ensureTopic(kafkaClient(), { topic, partitions: 2 });
    const sent: ApiCallEvent[] = [];
    for (const [i, compression] of COMPRESSIONS.entries()) {
      const events = new SyntheticEvents({ seed: 300 + i, apis: 6, service: `sdk-${compression}`, startMs: Date.UTC(2026, 10, 9) }).take(300);
      const logger = await createApiLogger({ brokers: [stack().brokers], registry: stack().registry, topic, compression });
      for (const e of events) expect(logger.log(e)).toBe(true);
      expect((await logger.close()).sent).toBe(events.length);
      sent.push(...events);
    }

    const dir = mkdtempSync(join(tmpdir(), 'apilog-chdb-kafka-'));
    dirs.push(dir);
    const session = new Session(dir);
    try {
      session.query(
        `CREATE TABLE from_kafka (${COLUMNS}) ENGINE = Kafka SETTINGS kafka_broker_list = ${quote(stack().brokers)}, ` +
          `kafka_topic_list = ${quote(topic)}, kafka_group_name = ${quote(uniqueName('chdb'))}, kafka_format = 'AvroConfluent', ` +
          `format_avro_schema_registry_url = ${quote(stack().registry)}, kafka_max_block_size = 65536, kafka_flush_interval_ms = 1000`,
      );
      // A direct SELECT reads what is there (up to a block) and commits it: read until everything came back.
      const rows: ApiCallEvent[] = [];
      const deadline = Date.now() + 60_000;
      while (rows.length < sent.length && Date.now() < deadline) {
        const out = session.query(
          `SELECT * REPLACE (toUnixTimestamp64Milli(ts) AS ts) FROM from_kafka SETTINGS stream_like_engine_allow_direct_select = 1, output_format_json_quote_64bit_integers = 0`,
          'JSONEachRow',
        );
        for (const line of out.split('\n')) if (line.length > 0) rows.push(JSON.parse(line) as ApiCallEvent);
      }
      expect(rows.length).toBe(sent.length);
      expect(rows.sort(byEventId)).toEqual([...sent].sort(byEventId));
    } finally {
      session.cleanup();
    }
  });
});
