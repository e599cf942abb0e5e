/**
 * Python services through librdkafka (integration): `confluent-kafka` 2.16 from PyPI with its AvroSerializer and the
 * registry's Confluent API (test/interop/python/avro_producer.py), one producer per codec into one topic, the first
 * registering the schema (a subject at Apicurio's level NONE). `apilog consume`, the process, stores every event once
 * with every value intact (non-ASCII text, nulls, 2^40 integers, maps, timestamp-millis from Python datetimes, UUIDs);
 * the SDK then writes to the same topic under the same schema id. And placement: librdkafka's `murmur2_random`
 * partitioner puts each API where the SDK and the Java client do; its default (`consistent_random`, CRC32) does not.
 */
import { crc32 } from 'node:zlib';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { ClickHouseServerSink } from '../../clickhouse/serverSink.ts';
import { createApiLogger } from '../../producer/apiLogger.ts';
import { partitionForKey } from '../../producer/murmur2.ts';
import { SyntheticEvents } from '../../producer/syntheticEvents.ts';
import { ensureTopic } from '../../producer/topic.ts';
import type { ApiCallEvent } from '../../schemas/apiCall.ts';
import { valueSubject } from '../../schemas/apiCall.ts';
import { pythonClient } from '../../stack/clients.ts';
import { PROJECT_ROOT } from '../../stack/endpoints.ts';
import { byEventId, countRows, kafkaClient, readBack, registryClient, stack, uniqueName } from './pipeline.ts';
import { APILOG, run, start, waitFor } from './processes.ts';

const SCRIPT = join(PROJECT_ROOT, 'test', 'interop', 'python', 'avro_producer.py');
const SCHEMA = join(PROJECT_ROOT, 'schemas', 'avro', 'api_call.v1.avsc');
const PARTITIONS = 6;

interface Produced {
  events: ApiCallEvent[];
  placed: Record<string, number[]>;
}

/** What the Python producer says it sent, from its JSON lines. */
function parse(stdout: string): Produced {
  const lines = stdout.trim().split('\n').map((l) => JSON.parse(l) as ApiCallEvent | { placed: Record<string, number[]> });
  const last = lines.pop() as { placed: Record<string, number[]> };
  return { events: lines as ApiCallEvent[], placed: last.placed };
}

describe('Python producers: confluent-kafka with AvroSerializer (integration)', () => {
  let python: string;
  beforeAll(() => {
    python = pythonClient();
  }, 180_000);

  const producePython = async (topic: string, codec: string, count: number, seed: number, partitioner?: string): Promise<Produced> => {
    const args = [python, SCRIPT, '--brokers', stack().brokers, '--registry', stack().registry, '--topic', topic, '--schema', SCHEMA,
      '--codec', codec, '--count', String(count), '--seed', String(seed), ...(partitioner ? ['--partitioner', partitioner] : [])];
    const result = await run(args, { timeoutMs: 120_000 });
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    return parse(result.stdout);
  };

  it('four producers, one per codec: `apilog consume` stores every event once, intact; murmur2_random keeps per-API placement', async () => {
    const topic = uniqueName('it-python');
    const table = uniqueName('python');
    await ensureTopic(kafkaClient(), { topic, partitions: PARTITIONS });
    const sent: ApiCallEvent[] = [];
    for (const [i, codec] of ['gzip', 'snappy', 'lz4', 'zstd'].entries()) {
      const produced = await producePython(topic, codec, 2500, 1000 + i, 'murmur2_random');
      expect(produced.events).toHaveLength(2500);
      for (const [api, partitions] of Object.entries(produced.placed)) expect(partitions, api).toEqual([partitionForKey(api, PARTITIONS)]);
      sent.push(...produced.events);
    }
    // Python registered the schema first (Apicurio reports the subject's level as NONE): the SDK, pinned to the
    // version Python writes, finds and uses it.
    expect(await registryClient().versions(valueSubject(topic))).toEqual([1]);
    const sdk = await createApiLogger({ brokers: [stack().brokers], registry: stack().registry, topic, compression: 'zstd', schemaVersion: 1 });
    const fromSdk = new SyntheticEvents({ seed: 77, apis: 5, service: 'sdk-after-python', startMs: Date.UTC(2026, 10, 7) }).take(100);
    for (const e of fromSdk) expect(sdk.log(e)).toBe(true);
    expect((await sdk.close()).sent).toBe(100);
    expect(await registryClient().versions(valueSubject(topic))).toEqual([1]);
    sent.push(...fromSdk);

    const s = stack();
    const consume = start(
      [...APILOG, 'consume', '--brokers', s.brokers, '--registry', s.registry, '--clickhouse', s.clickhouse, '--topic', topic,
        '--table', table, '--group', uniqueName('group'), '--create-table', '--metrics-port', '0', '--batch-age-ms', '200'],
      { env: { APILOG_LOG_LEVEL: 'warn' } },
    );
    const sink = new ClickHouseServerSink({ url: s.clickhouse });
    try {
      expect(await waitFor(async () => consume.process.exitCode !== null || (await countRows(sink, table).catch(() => 0)) >= sent.length, 90_000)).toBe(true);
      expect(await consume.stop(20_000)).toBe(0);
      expect(consume.stderr()).not.toMatch(/dead.letter|"level":50/);
      expect(await countRows(sink, table)).toBe(sent.length);
      expect(await readBack(sink, table)).toEqual([...sent].sort(byEventId));
    } finally {
      if (consume.process.exitCode === null) consume.process.kill('SIGKILL');
      await sink.close();
    }
  });

  it("librdkafka's default partitioner (consistent_random: CRC32 of the key) puts APIs where the SDK does not", async () => {
    const topic = uniqueName('it-python-default');
    await ensureTopic(kafkaClient(), { topic, partitions: PARTITIONS });
    const { placed } = await producePython(topic, 'lz4', 120, 5);
    const apis = Object.keys(placed);
    expect(apis.length).toBe(6);
    for (const api of apis) expect(placed[api], api).toEqual([crc32(api) % PARTITIONS]);
    const elsewhere = apis.filter((api) => placed[api]![0] !== partitionForKey(api, PARTITIONS));
    expect(elsewhere.length).toBeGreaterThan(0);
  });
});
