/**
 * Schema evolution end to end, through the real registry (Apicurio, Confluent API), broker and consumer, into the
 * embedded engine:
 *  1. the table at migration 4 (no v2 columns); 600 version-1 events produced and consumed;
 *  2. migration 5 adds the v2 columns to the table that already holds rows; version 2 is registered under the
 *     same subject (the registry checks it BACKWARD); 1,200 events of versions 1 and 2 interleaved on the topic;
 *     the same consumer group carries on.
 * Every event lands once; version-2 rows carry their new fields; older rows and version-1 rows read the defaults.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Partitioners } from 'kafkajs';
import { afterAll, describe, expect, it } from 'vitest';
import { ensureApiCallsTable } from '../../clickhouse/apiCallsTable.ts';
import { ChdbSink } from '../../clickhouse/chdbSink.ts';
import { deadLetterTopicFor } from '../../consumer/deadLetters.ts';
import { SyntheticEvents } from '../../producer/syntheticEvents.ts';
import { ensureTopic } from '../../producer/topic.ts';
import {
  API_CALL_SCHEMA_V1, API_CALL_SCHEMA_V2, apiCallTypeV1, apiCallTypeV2, valueSubject, type ApiCallEvent, type ApiCallEventV2,
} from '../../schemas/apiCall.ts';
import { checkWithRegistry } from '../../schemas/compatibility.ts';
import { FramedEncoder } from '../../schemas/wire.ts';
import { byEventId, kafkaClient, readBack, registryClient, runConsumerUntil, uniqueName } from './pipeline.ts';

const V2_DEFAULTS = { protocol: 'http', region: '', retry_attempt: 0, upstream_latency_us: null, user_agent: null };

function toV2(e: ApiCallEvent, i: number): ApiCallEventV2 {
  return {
    ...e,
    protocol: i % 3 === 0 ? 'grpc' : 'h2',
    region: i % 2 === 0 ? 'eu-west-1' : 'us-east-1',
    retry_attempt: i % 4,
    upstream_latency_us: i % 5 === 0 ? null : Math.floor(e.latency_us / 2),
    user_agent: i % 7 === 0 ? null : `apilog-test/${i % 3}`,
  };
}

/** Runs the group until `expected` rows are in the table; the group's offsets carry over between calls. */
describe('schema evolution: v1 and v2 events on one topic (integration)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'apilog-evolution-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('ingests both versions; new columns arrive by migration; old rows read the defaults', async () => {
    const sink = new ChdbSink(dir);
    const topic = uniqueName('it-evolution');
    const table = uniqueName('evolution');
    const groupId = uniqueName('group');
    const kafka = kafkaClient();
    const registry = registryClient();
    await ensureTopic(kafka, { topic, partitions: 3 });
    await ensureTopic(kafka, { topic: deadLetterTopicFor(topic), partitions: 1 });
    const producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner, idempotent: true, maxInFlightRequests: 1 });
    await producer.connect();
    try {
      const source = new SyntheticEvents({ seed: 21, apis: 8, startMs: Date.UTC(2026, 10, 3), stepMs: 250 });
      const phase1 = source.take(600);
      const phase2 = source.take(1200);

      // 1. Version 1 only, into the table as migration 4 left it.
      expect((await ensureApiCallsTable(sink, table, { to: 4 })).applied.map((m) => m.version)).toEqual([1, 2, 3, 4]);
      const v1Id = await registry.register(valueSubject(topic), API_CALL_SCHEMA_V1);
      const v1 = new FramedEncoder<ApiCallEvent>(apiCallTypeV1, v1Id);
      await producer.send({ topic, acks: -1, messages: phase1.map((e) => ({ key: e.api, value: v1.encode(e) })) });
      expect(await runConsumerUntil(sink, table, topic, 600, { groupId })).toBe(600);

      // 2. Migrate, register v2 (the registry checks it against v1 under BACKWARD), interleave both versions.
      expect((await ensureApiCallsTable(sink, table)).applied.map((m) => m.version)).toEqual([5, 6]);
      expect(await checkWithRegistry(registry, valueSubject(topic), API_CALL_SCHEMA_V2)).toMatchObject({ kind: 'compatible', level: 'BACKWARD' });
      const v2Id = await registry.register(valueSubject(topic), API_CALL_SCHEMA_V2);
      expect(v2Id).not.toBe(v1Id);
      const v2 = new FramedEncoder<ApiCallEventV2>(apiCallTypeV2, v2Id);
      const written = phase2.map((e, i) => (i % 2 === 0 ? toV2(e, i) : e));
      await producer.send({
        topic, acks: -1,
        messages: written.map((e, i) => ({ key: e.api, value: i % 2 === 0 ? v2.encode(e as ApiCallEventV2) : v1.encode(e) })),
      });
      expect(await runConsumerUntil(sink, table, topic, 1800, { groupId })).toBe(1800);

      // Every event once, v1 columns intact whichever version wrote them.
      const stored = await readBack(sink, table);
      expect(stored).toEqual([...phase1, ...phase2].sort(byEventId));
      // New columns: values from v2 events, defaults for phase-1 rows and for v1 events after the migration.
      const rows = await sink.query<Record<string, unknown>>(
        `SELECT toString(event_id) AS event_id, protocol, region, retry_attempt, upstream_latency_us, user_agent FROM ${table}`,
      );
      const byId = new Map(rows.map((r) => [r['event_id'] as string, r]));
      const newFields = (r: Record<string, unknown>) => ({
        protocol: r['protocol'], region: r['region'], retry_attempt: Number(r['retry_attempt']),
        upstream_latency_us: r['upstream_latency_us'] === null ? null : Number(r['upstream_latency_us']), user_agent: r['user_agent'],
      });
      for (const e of phase1) expect(newFields(byId.get(e.event_id)!)).toEqual(V2_DEFAULTS);
      written.forEach((e, i) => {
        const expected = i % 2 === 0 ? (({ protocol, region, retry_attempt, upstream_latency_us, user_agent }: ApiCallEventV2) =>
          ({ protocol, region, retry_attempt, upstream_latency_us, user_agent }))(e as ApiCallEventV2) : V2_DEFAULTS;
        expect(newFields(byId.get(e.event_id)!), `event ${i}`).toEqual(expected);
      });
      // The rollups saw every row of both phases.
      const [rollup] = await sink.query<{ n: string }>(`SELECT sum(requests) AS n FROM ${table}_1m`);
      expect(Number(rollup!.n)).toBe(1800);
    } finally {
      await producer.disconnect();
      await sink.close();
    }
  });
});
