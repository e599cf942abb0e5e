/**
 * JVM services (integration): Apache Kafka's Java client 3.9.1 with Apicurio Registry's Avro serializer from Maven
 * Central (test/interop/jvm/AvroProducer.java), one producer per codec into one topic. Snappy from the Java client is
 * snappy-java's framed stream; the serializer registers through Apicurio's own v3 API and frames values the
 * Confluent way (magic byte 0, 4-byte content id, which is the id Apicurio's Confluent API serves). The consumer
 * stores every event once, intact, and the Java client's default partitioner puts each API where the SDK does.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { ClickHouseServerSink } from '../../clickhouse/serverSink.ts';
import { partitionForKey } from '../../producer/murmur2.ts';
import { ensureTopic } from '../../producer/topic.ts';
import { valueSubject, type ApiCallEvent } from '../../schemas/apiCall.ts';
import { jvmClasspath } from '../../stack/clients.ts';
import { PROJECT_ROOT } from '../../stack/endpoints.ts';
import { byEventId, consumeInto, kafkaClient, readBack, registryClient, stack, uniqueName } from './pipeline.ts';
import { run } from './processes.ts';
import { join } from 'node:path';

const PARTITIONS = 6;

describe('JVM producers: the Java client with Apicurio’s Avro serializer (integration)', () => {
  let classpath: string;
  beforeAll(() => {
    classpath = jvmClasspath();
  }, 180_000);

  it('one producer per codec (gzip, snappy, lz4, zstd): every event stored once, intact, on the SDK’s partition for its API', async () => {
    const topic = uniqueName('it-jvm');
    const table = uniqueName('jvm');
    await ensureTopic(kafkaClient(), { topic, partitions: PARTITIONS });
    // Apicurio's own API, beside its Confluent one: .../apis/ccompat/v7 → .../apis/registry/v3.
    const registryV3 = stack().registry.replace(/\/apis\/ccompat\/v7$/, '/apis/registry/v3');
    const java = await run(
      ['java', '-Xmx256m', '-XX:+UseSerialGC', '-XX:TieredStopAtLevel=1', '-cp', classpath, join(PROJECT_ROOT, 'test', 'interop', 'jvm', 'AvroProducer.java'),
        stack().brokers, registryV3, topic, join(PROJECT_ROOT, 'schemas', 'avro', 'api_call.v1.avsc'), '1500', '42', 'gzip', 'snappy', 'lz4', 'zstd'],
      { timeoutMs: 120_000 },
    );
    // Apicurio's client logs one java.util.logging warning about its shared Vert.x instance; nothing worse.
    expect(java.stderr).not.toMatch(/Exception|SEVERE|ERROR/);
    expect(java.code).toBe(0);
    const lines = java.stdout.trim().split('\n').map((l) => JSON.parse(l) as ApiCallEvent | { placed: Record<string, number[]> });
    const { placed } = lines.pop() as { placed: Record<string, number[]> };
    const sent = lines as ApiCallEvent[];
    expect(sent).toHaveLength(6000);
    expect(Object.keys(placed)).toHaveLength(6);
    for (const [api, partitions] of Object.entries(placed)) expect(partitions, api).toEqual([partitionForKey(api, PARTITIONS)]);
    // The serializer registered the schema under the Confluent subject name, one version.
    expect(await registryClient().versions(valueSubject(topic))).toEqual([1]);

    const sink = new ClickHouseServerSink({ url: stack().clickhouse });
    try {
      expect(await consumeInto(sink, table, topic, sent.length)).toBe(sent.length);
      expect(await readBack(sink, table)).toEqual([...sent].sort(byEventId));
      const perService = await sink.query<{ service: string; n: string | number }>(`SELECT service, count() AS n FROM ${table} GROUP BY service ORDER BY service`);
      expect(perService.map((r) => [r.service, Number(r.n)])).toEqual(['gzip', 'lz4', 'snappy', 'zstd'].map((c) => [`jvm-${c}`, 1500]));
    } finally {
      await sink.close();
    }
  });
});
