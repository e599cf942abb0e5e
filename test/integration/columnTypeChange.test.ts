/**
 * A column's type changes (ALTER … MODIFY COLUMN) while the consumer holds rows encoded for the old type
 * (integration, Debian's 18.16 server): RowBinary carries no types, so those bytes must not be sent. The server
 * sink refuses the insert (ColumnsChangedError, nothing inserted); the consumer reads the columns again, reads the
 * partition again from its last durable offset, and every record lands once with its value in the new type.
 */
import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { ApiCallConsumer } from '../../consumer/apiCallConsumer.ts';
import { ensureApiCallsTable } from '../../clickhouse/apiCallsTable.ts';
import { ColumnsChangedError } from '../../clickhouse/errors.ts';
import { ClickHouseServerSink } from '../../clickhouse/serverSink.ts';
import { deadLetterTopicFor } from '../../consumer/deadLetters.ts';
import { SyntheticEvents } from '../../producer/syntheticEvents.ts';
import { ensureTopic } from '../../producer/topic.ts';
import { countRows, kafkaClient, logger, produce, registryClient, stack, uniqueName } from './pipeline.ts';

/** Runs a statement on the server synchronously (from a crash-point hook, which cannot await). */
function alterNow(url: string, sql: string): void {
  execFileSync(process.execPath, ['-e', `fetch(${JSON.stringify(url)}, { method: 'POST', body: ${JSON.stringify(sql)} }).then(async (r) => { if (!r.ok) { console.error(await r.text()); process.exit(1); } })`]);
}

describe('a column type changed under encoded rows (integration)', () => {
  it('the server sink refuses the stale rows; the consumer re-reads the columns and the partition, and lands each record once', async () => {
    const topic = uniqueName('it-alter');
    const table = uniqueName('alter');
    const n = 3000;
    const events = new SyntheticEvents({ seed: 21, startMs: Date.UTC(2026, 10, 20) }).take(n);
    await produce(topic, events, 2);
    await ensureTopic(kafkaClient(), { topic: deadLetterTopicFor(topic), partitions: 1 });
    const sink = new ClickHouseServerSink({ url: stack().clickhouse });
    await ensureApiCallsTable(sink, table);
    let altered = 0;
    const consumer = new ApiCallConsumer({
      kafka: kafkaClient(), registry: registryClient(), sink, logger, topic, table, deadLetterTopic: deadLetterTopicFor(topic),
      groupId: uniqueName('group'), tuning: { maxBatchRows: 1000, maxBatchAgeMs: 200 },
      crashPoint: (point) => {
        // Before the first insert: rows for status UInt16 are encoded, the column becomes UInt32 (and latency Float64).
        if (point === 'before-insert' && altered++ === 0) {
          alterNow(stack().clickhouse, `ALTER TABLE ${table} MODIFY COLUMN status UInt32, MODIFY COLUMN latency_us Float64`);
        }
      },
    });
    try {
      await consumer.start();
      const deadline = Date.now() + 60_000;
      while ((await countRows(sink, table)) < n && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
    } finally {
      await consumer.stop();
    }
    expect(altered).toBeGreaterThan(1); // the refused batch was inserted again later, after the columns were read again
    const [totals] = await sink.query<{ n: string; u: string }>(`SELECT count() AS n, uniqExact(event_id) AS u FROM ${table}`);
    expect([Number(totals!.n), Number(totals!.u)]).toEqual([n, n]);
    const stored = await sink.query<{ event_id: string; status: number; latency_us: number }>(`SELECT event_id, status, latency_us FROM ${table}`);
    const byId = new Map(stored.map((r) => [r.event_id, r]));
    for (const e of events) expect({ id: e.event_id, status: byId.get(e.event_id)?.status, latency: byId.get(e.event_id)?.latency_us }).toEqual({ id: e.event_id, status: e.status, latency: e.latency_us });

    // The sink's check by itself: rows encoded for UInt32 after the column became UInt64 are refused, none inserted.
    await expect(sink.insertRows(table, Buffer.alloc(0), 'RowBinary', ['status'], { types: ['UInt16'] })).rejects.toBeInstanceOf(ColumnsChangedError);
    await sink.close();
  });
});
