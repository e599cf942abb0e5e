/**
 * Rollups after a failure between the raw table and its rollups (integration: real Kafka and registry, the embedded
 * engine). ClickHouse writes an insert's raw part first and pushes the block to the materialized views after; when a
 * view fails (here: the hourly rollup's, made to throw while a switch table says so, as a full disk or a lost keeper
 * session would) the raw rows are stored and that rollup's are not. The consumer stops on the error;
 * its successor used to find the raw rows, skip them, and leave the rollups short for good. Now it sends the same
 * batch again with the same deduplication token: the raw table drops it, the rollups take it.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ApiCallConsumer } from '../../consumer/apiCallConsumer.ts';
import { ensureApiCallsTable } from '../../clickhouse/apiCallsTable.ts';
import { ChdbSink } from '../../clickhouse/chdbSink.ts';
import { deadLetterTopicFor } from '../../consumer/deadLetters.ts';
import { SyntheticEvents } from '../../producer/syntheticEvents.ts';
import { ensureTopic } from '../../producer/topic.ts';
import { checkRollups } from '../rollupCheck.ts';
import { countRows, kafkaClient, logger, produce, registryClient, uniqueName } from './pipeline.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const dir = mkdtempSync(join(tmpdir(), 'apilog-rollups-'));

describe('rollups stay equal to the raw rows when a view fails after the raw part was written (integration, embedded)', () => {
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('the successor sends the batch again: raw rows once, every rollup complete', async () => {
    const n = 6000;
    const topic = uniqueName('it-rollups');
    const table = uniqueName('rollups');
    const group = uniqueName('group');
    // A minute of traffic per 1200 events, one in ten of them 40 days late (another month: other parts).
    const events = new SyntheticEvents({ seed: 21, startMs: Date.UTC(2026, 10, 4), stepMs: 50 }).take(n);
    events.forEach((e, i) => {
      if (i % 10 === 3) e.ts -= 40 * 86_400_000;
    });
    await produce(topic, events, 2);
    await ensureTopic(kafkaClient(), { topic: deadLetterTopicFor(topic), partitions: 1 });
    const sink = new ChdbSink(dir);
    try {
      await ensureApiCallsTable(sink, table);
      // The hourly rollup's view fails while a switch table says so (ClickHouse pushes a block to the views after it
      // wrote the raw part): its definition is the migration's, with a WHERE that throws.
      await sink.command(`CREATE TABLE ${table}_fault_switch (on UInt8) ENGINE = MergeTree ORDER BY on`);
      const [view] = await sink.query<{ statement: string }>(`SHOW CREATE TABLE ${table}_1h_mv`);
      const failing = view!.statement.replace(
        new RegExp(`FROM (default\\.)?${table}\\s+GROUP BY`),
        `FROM ${table} WHERE throwIf((SELECT count() FROM ${table}_fault_switch) > 0, 'injected: the hourly rollup view fails') = 0 GROUP BY`,
      );
      expect(failing).toContain('injected');
      await sink.command(`DROP TABLE ${table}_1h_mv`);
      await sink.command(failing);
      await sink.command(`INSERT INTO ${table}_fault_switch VALUES (1)`);

      let fatal: Error | undefined;
      const first = new ApiCallConsumer({
        kafka: kafkaClient(), registry: registryClient(), sink, logger, topic, table, groupId: group, deadLetterTopic: deadLetterTopicFor(topic),
        tuning: { maxBatchAgeMs: 200 }, onFatal: (error) => (fatal ??= error),
      });
      await first.start();
      for (let i = 0; i < 300 && fatal === undefined; i++) await sleep(100);
      await first.stop();
      expect(fatal?.message).toMatch(/injected/);
      const stranded = await countRows(sink, table);
      expect(stranded).toBeGreaterThan(0); // the raw part landed
      expect((await checkRollups(sink, table)).requests.hour).toBeLessThan(stranded); // its hourly rollup rows did not

      await sink.command(`TRUNCATE TABLE ${table}_fault_switch`);
      const next = new ApiCallConsumer({
        kafka: kafkaClient(), registry: registryClient(), sink, logger, topic, table, groupId: group, deadLetterTopic: deadLetterTopicFor(topic),
        tuning: { maxBatchAgeMs: 200 },
      });
      await next.start();
      try {
        for (let i = 0; i < 600 && (await countRows(sink, table)) < n; i++) await sleep(100);
        await sleep(1000);
      } finally {
        await next.stop();
      }
      const [coords] = await sink.query<{ rows: string | number; unique: string | number }>(`SELECT count() AS rows, uniqExact(_partition, _offset) AS unique FROM ${table}`);
      expect({ rows: Number(coords?.rows), unique: Number(coords?.unique) }).toEqual({ rows: n, unique: n });
      const check = await checkRollups(sink, table);
      expect(check).toEqual({ mismatched: { minute: 0, hour: 0, clients: 0 }, rawRows: n, requests: { minute: n, hour: n, clients: n } });
    } finally {
      await sink.close();
    }
  });
});
