/**
 * Every Kafka codec through the real broker (integration): the SDK writes each of them into one topic and the
 * consumer lands every event once, values intact, in the ClickHouse server. And a batch in a codec the consumer
 * cannot read: `apilog consume` stops with one line naming the codec, the topic and the partition, exit 70, and
 * nothing is committed or stored past it.
 */
import { describe, expect, it } from 'vitest';
import { ClickHouseServerSink } from '../../clickhouse/serverSink.ts';
import { createApiLogger } from '../../producer/apiLogger.ts';
import { partitionForKey } from '../../producer/murmur2.ts';
import { SyntheticEvents } from '../../producer/syntheticEvents.ts';
import { ensureTopic } from '../../producer/topic.ts';
import { COMPRESSIONS, type CompressionName } from '../../runtime/kafkaCodecs.ts';
import type { ApiCallEvent } from '../../schemas/apiCall.ts';
import { byEventId, consumeInto, countRows, kafkaClient, readBack, stack, uniqueName } from './pipeline.ts';
import { APILOG, run } from './processes.ts';

/** Writes the events through the SDK with one codec; resolves when every one is acknowledged. */
async function logAll(topic: string, compression: CompressionName, events: readonly ApiCallEvent[]): Promise<void> {
  const logger = await createApiLogger({ brokers: [stack().brokers], registry: stack().registry, topic, compression, whenFull: 'wait' });
  for (const event of events) {
    const queued = logger.log(event);
    expect(queued === true || (await queued)).toBe(true);
  }
  const m = await logger.close();
  expect(m.sent).toBe(events.length);
}

describe('Kafka codecs (integration)', () => {
  it('the SDK writes none, gzip, snappy, lz4 and zstd into one topic; the consumer stores every event once, intact', async () => {
    const topic = uniqueName('it-codecs');
    const table = uniqueName('codecs');
    await ensureTopic(kafkaClient(), { topic, partitions: 3 });
    const all: ApiCallEvent[] = [];
    for (const [i, compression] of COMPRESSIONS.entries()) {
      const events = new SyntheticEvents({ seed: 100 + i, apis: 8, service: `svc-${compression}`, startMs: Date.UTC(2026, 10, 5) }).take(400);
      await logAll(topic, compression, events);
      all.push(...events);
    }
    const sink = new ClickHouseServerSink({ url: stack().clickhouse });
    try {
      expect(await consumeInto(sink, table, topic, all.length)).toBe(all.length);
      const stored = await readBack(sink, table);
      expect(stored).toEqual([...all].sort(byEventId));
      const perService = await sink.query<{ service: string; n: string | number }>(`SELECT service, count() AS n FROM ${table} GROUP BY service ORDER BY service`);
      expect(perService.map((r) => [r.service, Number(r.n)])).toEqual([...COMPRESSIONS].sort().map((c) => [`svc-${c}`, 400]));
    } finally {
      await sink.close();
    }
  });

  it('a batch in a codec the consumer cannot read: one line naming codec, topic and partition, exit 70 (fatal), nothing committed', async () => {
    const topic = uniqueName('it-unreadable');
    const table = uniqueName('unreadable');
    const group = uniqueName('group');
    const partitions = 3;
    await ensureTopic(kafkaClient(), { topic, partitions });
    await logAll(topic, 'lz4', new SyntheticEvents({ seed: 5, apis: 12, startMs: Date.UTC(2026, 10, 6) }).take(300));
    // Then zstd batches of one API only: they all sit on that API's partition.
    const hot = new SyntheticEvents({ seed: 6, apis: 1, startMs: Date.UTC(2026, 10, 6) }).take(50);
    const partition = partitionForKey(hot[0]!.api, partitions);
    const admin = kafkaClient().admin();
    await admin.connect();
    try {
      const firstZstd = (await admin.fetchTopicOffsets(topic)).find((p) => p.partition === partition)!.high;
      await logAll(topic, 'zstd', hot);

      const s = stack();
      const consume = await run(
        [...APILOG, 'consume', '--brokers', s.brokers, '--registry', s.registry, '--clickhouse', s.clickhouse, '--topic', topic, '--table', table,
          '--group', group, '--create-table', '--metrics-port', '0', '--refuse-codec', 'zstd'],
        { timeoutMs: 90_000, env: { APILOG_LOG_LEVEL: 'error' } },
      );
      expect(consume.code).toBe(70);
      const last = consume.stderr.trim().split('\n').at(-1)!;
      expect(last).toMatch(
        new RegExp(`^apilog: topic ${topic} partition ${partition}: a record batch compressed with zstd cannot be read: Kafka codec id 4 is not one this consumer reads \\(it reads gzip, snappy, lz4\\); nothing from offset 0 on is committed\\. .+$`),
      );
      // Nothing committed: kafkajs delivered none of the failing fetch's batches, so no offset moved.
      const [committed] = await admin.fetchOffsets({ groupId: group, topics: [topic] });
      expect(committed!.partitions.every((p) => p.offset === '-1')).toBe(true);
      const sink = new ClickHouseServerSink({ url: s.clickhouse });
      try {
        const past = await sink.query<{ n: string | number }>(`SELECT count() AS n FROM ${table} WHERE _partition = ${partition} AND _offset >= ${firstZstd}`);
        expect(Number(past[0]!.n)).toBe(0);
        expect(await countRows(sink, table)).toBe(0);
      } finally {
        await sink.close();
      }
      // The probe that found the partition left no consumer group behind.
      expect((await admin.listGroups()).groups.filter((g) => g.groupId.startsWith(`${group}.`))).toEqual([]);
    } finally {
      await admin.disconnect();
    }
  });
});
