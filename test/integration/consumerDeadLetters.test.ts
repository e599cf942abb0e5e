/**
 * Poison records of every kind, interleaved with good ones, through the real broker, registry and ClickHouse
 * (integration): every good record lands exactly once, every bad one is in the dead-letter topic with headers naming
 * the reason and its source topic/partition/offset, and the group commits past all of them.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { KafkaMessage } from 'kafkajs';
import { afterAll, describe, expect, it } from 'vitest';
import { ApiCallConsumer } from '../../consumer/apiCallConsumer.ts';
import { ensureApiCallsTable } from '../../clickhouse/apiCallsTable.ts';
import { ChdbSink } from '../../clickhouse/chdbSink.ts';
import { deadLetterTopicFor } from '../../consumer/deadLetters.ts';
import { SyntheticEvents } from '../../producer/syntheticEvents.ts';
import { ensureTopic } from '../../producer/topic.ts';
import { API_CALL_SCHEMA_V1, apiCallTypeV1, valueSubject, type ApiCallEvent } from '../../schemas/apiCall.ts';
import { FramedEncoder, frame } from '../../schemas/wire.ts';
import { countRows, kafkaClient, logger, registryClient, uniqueName } from './pipeline.ts';

type Poison = { value: Buffer; reason: string };

describe('dead letters: poison records interleaved with good ones (integration)', () => {
  const dirs: string[] = [];
  afterAll(() => {
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  // RowBinary (the default) refuses a bad UUID while encoding; JSON lines leave it to ClickHouse, whose rejection of
  // the insert is narrowed down to the one row by splitting the batch.
  it.each(['RowBinary', 'JSONCompactEachRow'] as const)('%s: lands every good record once and dead-letters every bad one with its reason', async (rowFormat) => {
    const topic = uniqueName('it-dlq');
    const dlq = deadLetterTopicFor(topic);
    const table = uniqueName('dlq');
    const kafka = kafkaClient();
    await ensureTopic(kafka, { topic, partitions: 2 });
    await ensureTopic(kafka, { topic: dlq, partitions: 1 });
    const registry = registryClient();
    const schemaId = await registry.register(valueSubject(topic), API_CALL_SCHEMA_V1);
    const encoder = new FramedEncoder<ApiCallEvent>(apiCallTypeV1, schemaId);
    const good = new SyntheticEvents({ seed: 5, startMs: Date.UTC(2026, 10, 2) }).take(3000);
    const sample = good[0]!;
    const poisons: Poison[] = [
      { value: Buffer.from('{"json":"not avro"}'), reason: 'bad-magic-byte' },
      { value: Buffer.from([0, 0, 1]), reason: 'too-short' },
      { value: frame(987_654_321, apiCallTypeV1.toBuffer(sample)), reason: 'unknown-schema-id' },
      { value: encoder.encode(sample).subarray(0, 30), reason: 'corrupt-avro' },
      { value: encoder.encode({ ...sample, status: 70_000 }), reason: 'does-not-fit-table' }, // UInt16 out of range
      { value: encoder.encode({ ...sample, event_id: 'not-a-uuid' }), reason: 'does-not-fit-table' }, // the UUID column
    ];
    // Interleave: a poison record every 250 good ones, on both partitions (keys spread them).
    const messages: { key: string; value: Buffer }[] = [];
    const bad: Poison[] = [];
    for (let i = 0; i < good.length; i++) {
      messages.push({ key: good[i]!.api, value: encoder.encode(good[i]!) });
      if (i % 250 === 125) {
        const p = poisons[bad.length % poisons.length]!;
        bad.push(p);
        messages.push({ key: `poison-${bad.length}`, value: p.value });
      }
    }
    const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
    await producer.connect();
    await producer.send({ topic, acks: -1, messages });
    await producer.disconnect();

    const dir = mkdtempSync(join(tmpdir(), 'apilog-dlq-'));
    dirs.push(dir);
    const sink = new ChdbSink(dir);
    await ensureApiCallsTable(sink, table);
    const group = uniqueName('group');
    const consumer = new ApiCallConsumer({
      kafka, registry, sink, logger, topic, table, deadLetterTopic: dlq, groupId: group,
      tuning: { maxBatchAgeMs: 200, maxBatchRows: 700 }, rowFormat,
    });
    await consumer.start();
    const deadline = Date.now() + 60_000;
    while (Date.now() < deadline && ((await countRows(sink, table)) < good.length || consumer.stats.deadLetters < bad.length)) {
      await new Promise((r) => setTimeout(r, 200));
    }
    await consumer.stop();

    const [totals] = await sink.query<{ n: string; u: string }>(`SELECT count() AS n, uniqExact(event_id) AS u FROM ${table}`);
    expect(Number(totals!.n)).toBe(good.length);
    expect(Number(totals!.u)).toBe(good.length);

    // Read the dead-letter topic back.
    const letters: KafkaMessage[] = [];
    const reader = kafka.consumer({ groupId: uniqueName('dlq-reader') });
    await reader.connect();
    await reader.subscribe({ topics: [dlq], fromBeginning: true });
    await reader.run({ eachMessage: async ({ message }) => void letters.push(message) });
    const until = Date.now() + 30_000;
    while (letters.length < bad.length && Date.now() < until) await new Promise((r) => setTimeout(r, 200));
    await new Promise((r) => setTimeout(r, 500)); // a duplicate would show up now
    await reader.disconnect();
    expect(letters.length).toBe(bad.length);
    const reasons = letters.map((m) => m.headers?.['apilog.error.reason']?.toString()).sort();
    expect(reasons).toEqual(bad.map((b) => b.reason).sort());
    for (const m of letters) {
      expect(m.headers?.['apilog.source.topic']?.toString()).toBe(topic);
      expect(['0', '1']).toContain(m.headers?.['apilog.source.partition']?.toString());
      expect(Number(m.headers?.['apilog.source.offset']?.toString())).toBeGreaterThanOrEqual(0);
      expect(m.headers?.['apilog.error.message']?.toString().length).toBeGreaterThan(0);
    }
    // The bad UUID: refused by the transcoder, or rejected by ClickHouse itself (the row isolated, ClickHouse's message).
    const uuids = letters.filter((m) => /not-a-uuid|UUID/.test(m.headers?.['apilog.error.message']?.toString() ?? ''));
    expect(uuids.length).toBe(bad.filter((b) => b === poisons[5]).length);
    const prefix = rowFormat === 'RowBinary' ? 'value for column event_id is "not-a-uuid", not a UUID' : 'ClickHouse rejected';
    for (const m of uuids) {
      expect(m.headers?.['apilog.error.message']?.toString()).toContain(prefix);
      if (rowFormat === 'RowBinary') {
        expect(m.value).toEqual(poisons[5]!.value); // refused before the insert: the record itself
        expect(m.headers?.['apilog.row.format']).toBeUndefined();
      } else {
        // Rejected by ClickHouse: the row as sent, with its format and columns to read it by.
        expect(m.headers?.['apilog.row.format']?.toString()).toBe('JSONCompactEachRow');
        expect(m.headers?.['apilog.row.columns']?.toString()).toMatch(/^event_id,ts,api,/);
        expect(m.value?.toString()).toContain('"not-a-uuid"');
      }
    }

    // The group committed past everything, poison included.
    const admin = kafka.admin();
    await admin.connect();
    const [high, committed] = await Promise.all([admin.fetchTopicOffsets(topic), admin.fetchOffsets({ groupId: group, topics: [topic] })]);
    await admin.disconnect();
    const byPartition = new Map(committed[0]!.partitions.map((p) => [p.partition, p.offset]));
    for (const p of high) expect(byPartition.get(p.partition)).toBe(p.high);
    await sink.close();
  });
});
