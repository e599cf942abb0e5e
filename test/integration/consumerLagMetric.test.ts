/**
 * The lag gauge after a rebalance (integration, real broker, ClickHouse server): a member reports lag for the
 * partitions it owns now. It used to keep exporting the last lag of partitions another member had taken over, so a
 * dashboard summing lag across members counted those partitions twice (and an alert on growing lag watched a value
 * nobody updated).
 */
import { describe, expect, it } from 'vitest';
import { ApiCallConsumer } from '../../consumer/apiCallConsumer.ts';
import { ensureApiCallsTable } from '../../clickhouse/apiCallsTable.ts';
import { ClickHouseServerSink } from '../../clickhouse/serverSink.ts';
import { deadLetterTopicFor } from '../../consumer/deadLetters.ts';
import { SyntheticEvents } from '../../producer/syntheticEvents.ts';
import { ensureTopic } from '../../producer/topic.ts';
import { countRows, kafkaClient, logger, produce, registryClient, stack, uniqueName } from './pipeline.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Partitions a member's lag gauge has a value for. */
async function lagPartitions(consumer: ApiCallConsumer): Promise<number[]> {
  const { values } = await consumer.metrics.lag.get();
  return values.map((v) => Number(v.labels['partition'])).sort((a, b) => a - b);
}

describe('consumer metrics across a rebalance (integration)', () => {
  it("a member's lag gauge covers the partitions it owns, not those another member took over", async () => {
    const topic = uniqueName('it-lag');
    const table = uniqueName('lag');
    const group = uniqueName('group');
    await produce(topic, new SyntheticEvents({ seed: 4, startMs: Date.UTC(2026, 10, 4) }).take(2000), 4);
    await ensureTopic(kafkaClient(), { topic: deadLetterTopicFor(topic), partitions: 1 });
    const sink = new ClickHouseServerSink({ url: stack().clickhouse });
    await ensureApiCallsTable(sink, table);
    const make = () =>
      new ApiCallConsumer({
        kafka: kafkaClient(), registry: registryClient(), sink, logger, topic, table, groupId: group, deadLetterTopic: deadLetterTopicFor(topic),
        tuning: { sessionTimeoutMs: 6000, heartbeatIntervalMs: 1000, rebalanceTimeoutMs: 12_000, maxBatchAgeMs: 200 },
      });
    const first = make();
    const second = make();
    try {
      await first.start();
      for (let i = 0; i < 300 && (await countRows(sink, table)) < 2000; i++) await sleep(100);
      // The gauge is set after a batch's insert and commit: rows can be countable a moment before it.
      for (let i = 0; i < 50 && (await lagPartitions(first)).length < 4; i++) await sleep(100);
      expect(await lagPartitions(first)).toEqual([0, 1, 2, 3]);
      await second.start();
      // Both members hold partitions, and each has fetched (at least one empty fetch sets no gauge: produce more).
      for (let i = 0; i < 300 && (Number((await second.metrics.assigned.get()).values[0]?.value ?? 0) === 0); i++) await sleep(100);
      await produce(topic, new SyntheticEvents({ seed: 5, startMs: Date.UTC(2026, 10, 4) }).take(2000), 4);
      for (let i = 0; i < 300 && (await countRows(sink, table)) < 4000; i++) await sleep(100);
      const owned = Number((await first.metrics.assigned.get()).values[0]?.value ?? 0);
      expect(owned).toBeGreaterThan(0);
      expect(owned).toBeLessThan(4);
      expect((await lagPartitions(first)).length).toBe(owned);
    } finally {
      await second.stop();
      await first.stop();
      await sink.close();
    }
  });
});
