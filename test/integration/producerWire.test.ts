/**
 * The SDK and the HTTP ingest against the real broker and registry (integration): bytes on the topic are
 * the Confluent framing (magic byte, the schema id the registry returned, the Avro body), keyed by API name,
 * on the murmur2 partition, LZ4-compressed batches read back; the ingest answers per event.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { Kafka, logLevel } from 'kafkajs';
import { createApiLogger, type ApiLogger, type LogEvent } from '../../producer/apiLogger.ts';
import { startIngestServer, type IngestServer } from '../../producer/ingest.ts';
import { partitionForKey } from '../../producer/murmur2.ts';
import { SyntheticEvents } from '../../producer/syntheticEvents.ts';
import { ensureTopic } from '../../producer/topic.ts';
import { API_CALL_SCHEMA_V1, API_CALL_SCHEMA_V2, apiCallTypeV1, apiCallTypeV2, type ApiCallEvent, type ApiCallEventV2 } from '../../schemas/apiCall.ts';
import { kafkaClient, stack, uniqueName } from './pipeline.ts';

const PARTITIONS = 6;

interface Raw {
  key: string;
  partition: number;
  value: Buffer;
}

/** Every message on a topic, as bytes. */
async function readRaw(topic: string, expected: number): Promise<Raw[]> {
  const kafka = new Kafka({ clientId: 'apilog-wire-check', brokers: [stack().brokers], logLevel: logLevel.NOTHING });
  const consumer = kafka.consumer({ groupId: uniqueName('wire-check') });
  const out: Raw[] = [];
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  await consumer.run({ eachMessage: async ({ partition, message }) => void out.push({ key: message.key!.toString(), partition, value: message.value! }) });
  const deadline = Date.now() + 60_000;
  while (out.length < expected && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  await consumer.disconnect();
  return out;
}

async function latest(subject: string): Promise<{ id: number; schema: string }> {
  const res = await fetch(`${stack().registry}/subjects/${subject}/versions/latest`);
  expect(res.status).toBe(200);
  return (await res.json()) as { id: number; schema: string };
}

const latestId = async (subject: string) => (await latest(subject)).id;

/** The same record whatever the whitespace. */
const sameSchema = (a: string, b: string) => JSON.stringify(JSON.parse(a)) === JSON.stringify(JSON.parse(b));

describe('SDK on the wire (LZ4)', () => {
  test.each([
    ['sent from the calling thread', false],
    ['sent from the worker thread', true],
  ])('%s: magic byte, registry schema id (the latest version), Avro body, key and murmur2 partition; event_id and ts filled', async (_how, worker) => {
    const topic = uniqueName('wire');
    await ensureTopic(kafkaClient(), { topic, partitions: PARTITIONS });
    const logger = await createApiLogger({ brokers: [stack().brokers], registry: stack().registry, topic, compression: 'lz4', worker });
    const events: LogEvent[] = new SyntheticEvents({ apis: 8, seed: 11 }).take(40);
    // Version 2's fields through log(): set on some events, left to their defaults on the others.
    for (const [i, e] of events.entries()) if (i % 2 === 0) Object.assign(e, { protocol: 'h2', region: 'eu-west-1', retry_attempt: i % 3, upstream_latency_us: 100 + i, user_agent: `agent/${i}` });
    for (const e of events) expect(logger.log(e)).toBe(true);
    const minimal: LogEvent = {
      api: 'minimal.get', method: 'GET', route: '/m', path: '/m', status: 200, latency_us: 5, request_bytes: 0, response_bytes: 2,
      service: 's', instance: 'i', environment: 'e',
    };
    const before = Date.now();
    expect(logger.log(minimal)).toBe(true);
    expect(await logger.flush(30_000)).toBe(true);
    const metrics = await logger.close();
    expect(metrics.sent).toBe(41);

    const registered = await latest(`${topic}-value`);
    expect(sameSchema(registered.schema, API_CALL_SCHEMA_V2)).toBe(true);
    const schemaId = registered.id;
    expect(logger.schemaId).toBe(schemaId);
    const raw = await readRaw(topic, 41);
    expect(raw).toHaveLength(41);
    const byId = new Map(events.map((e) => [e.event_id, e]));
    for (const m of raw) {
      expect(m.value[0]).toBe(0x00);
      expect(m.value.readUInt32BE(1)).toBe(schemaId);
      const decoded = apiCallTypeV2.fromBuffer(m.value.subarray(5)) as ApiCallEventV2;
      expect(m.key).toBe(decoded.api);
      expect(m.partition).toBe(partitionForKey(decoded.api, PARTITIONS));
      const sent = byId.get(decoded.event_id);
      if (sent) {
        // Byte for byte what avsc writes for the event.
        expect(m.value.subarray(5).equals(apiCallTypeV2.toBuffer(sent))).toBe(true);
        if (sent.protocol !== undefined) expect(decoded).toMatchObject({ protocol: 'h2', region: 'eu-west-1', user_agent: sent.user_agent });
        else expect(decoded).toMatchObject({ protocol: 'http', region: '', retry_attempt: 0, upstream_latency_us: null, user_agent: null });
      } else {
        expect(decoded).toMatchObject({ ...minimal, client_id: null, attributes: {} });
        expect(decoded.event_id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
        expect(decoded.ts).toBeGreaterThanOrEqual(before - 1000);
      }
    }
  });
});

describe('SDK sending from its worker thread, the worker killed while it sends', () => {
  test('every event arrives; only a batch in flight at a kill may arrive twice (a new idempotent producer)', async () => {
    const topic = uniqueName('wire-worker');
    await ensureTopic(kafkaClient(), { topic, partitions: PARTITIONS });
    const logger = await createApiLogger({ brokers: [stack().brokers], registry: stack().registry, topic, worker: true, lingerMs: 5, batchMaxEvents: 200, retryInitialMs: 50, retryMaxMs: 200 });
    // The thread behind the logger's producer (workerProducer.ts): terminated as a crash inside it would end it.
    const workerOf = () => (logger as unknown as { producer: { worker?: { terminate(): Promise<number> } } }).producer.worker;
    const events = new SyntheticEvents({ apis: 8, seed: 5 }).take(3000);
    const killed: object[] = [];
    for (let i = 0; i < events.length; i++) {
      expect(logger.log(events[i]!)).toBe(true);
      if (i % 100 === 99) await new Promise((r) => setTimeout(r, 2));
      if (i === 1000 || i === 2000) {
        // After a kill the next worker starts with the next attempt (after a backoff): wait for it.
        const deadline = Date.now() + 10_000;
        while (workerOf() === undefined && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
        const worker = workerOf();
        expect(worker).toBeDefined();
        await worker!.terminate();
        killed.push(worker!);
      }
    }
    expect(await logger.flush(60_000)).toBe(true);
    // The events after the kills went through workers started again.
    expect(killed).toHaveLength(2);
    expect(workerOf()).toBeDefined();
    expect(killed).not.toContain(workerOf());
    const metrics = await logger.close();
    expect(metrics.dropped).toBe(0);
    const raw = await readRaw(topic, 3000);
    const ids = raw.map((m) => (apiCallTypeV2.fromBuffer(m.value.subarray(5)) as ApiCallEventV2).event_id);
    const distinct = new Set(ids);
    expect(events.filter((e) => !distinct.has(e.event_id!))).toEqual([]);
    expect(ids.length - distinct.size).toBeLessThanOrEqual(2 * 200);
  });
});

describe('SDK pinned to schema version 1', () => {
  test('registers version 1 and writes its bytes; the fields version 2 added are not sent', async () => {
    const topic = uniqueName('wire-v1');
    await ensureTopic(kafkaClient(), { topic, partitions: 1 });
    const logger = await createApiLogger({ brokers: [stack().brokers], registry: stack().registry, topic, schemaVersion: 1 });
    const [event] = new SyntheticEvents({ seed: 21 }).take(1);
    expect(logger.log({ ...event!, protocol: 'h2', retry_attempt: 3 })).toBe(true);
    expect((await logger.close()).sent).toBe(1);
    const registered = await latest(`${topic}-value`);
    expect(sameSchema(registered.schema, API_CALL_SCHEMA_V1)).toBe(true);
    const [m] = await readRaw(topic, 1);
    expect(m!.value.readUInt32BE(1)).toBe(registered.id);
    expect(m!.value.subarray(5).equals(apiCallTypeV1.toBuffer(event))).toBe(true);
  });
});

describe('HTTP ingest', () => {
  let topic: string;
  let logger: ApiLogger;
  let ingest: IngestServer;
  const token = 'test-token-123';

  beforeAll(async () => {
    topic = uniqueName('ingest');
    await ensureTopic(kafkaClient(), { topic, partitions: PARTITIONS });
    logger = await createApiLogger({ brokers: [stack().brokers], registry: stack().registry, topic, compression: 'gzip', whenFull: 'wait' });
    ingest = await startIngestServer({ logger, port: 0, token, maxBodyBytes: 64 * 1024, maxEvents: 100 });
  });
  afterAll(async () => {
    await ingest.close();
    await logger.close();
  });

  const post = (body: string, headers: Record<string, string> = {}, query = '') =>
    fetch(`${ingest.url}/v1/events${query}`, { method: 'POST', body, headers: { 'content-type': 'application/json', authorization: `Bearer ${token}`, ...headers } });

  test('refuses without the token, with the wrong type, bad JSON, too big a body or batch', async () => {
    expect((await post('[]', { authorization: 'Bearer nope' })).status).toBe(401);
    expect((await post('[]', { authorization: '' })).status).toBe(401);
    expect((await post('[]', { 'content-type': 'text/plain' })).status).toBe(415);
    expect((await post('{"events": ')).status).toBe(400);
    expect((await post('{"nope": 1}')).status).toBe(400);
    expect((await post(JSON.stringify('x'.repeat(70 * 1024)))).status).toBe(413);
    expect((await post(JSON.stringify(Array.from({ length: 101 }, () => ({}))))).status).toBe(413);
  });

  test('per-event errors; ?wait=ack answers after Kafka acknowledged the accepted events', async () => {
    const [a, b] = new SyntheticEvents({ seed: 5 }).take(2);
    const bad = { ...a, event_id: 'x', status: 'oops' };
    const res = await post(JSON.stringify({ events: [a, { ...b, status: '200' }, bad, 17] }), {}, '?wait=ack');
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({
      accepted: 1, rejected: 3, dropped: 0,
      errors: [
        { index: 1, reason: 'wrong_type', field: 'status' },
        { index: 2, reason: 'bad_uuid', field: 'event_id' },
        { index: 3, reason: 'not_an_object' },
      ],
    });
    const raw = await readRaw(topic, 1);
    expect(raw.map((m) => (apiCallTypeV2.fromBuffer(m.value.subarray(5)) as ApiCallEvent).event_id)).toEqual([a!.event_id]);
    const metrics = await (await fetch(`${ingest.url}/metrics`)).text();
    expect(metrics).toMatch(/apilog_producer_sent_total 1\b/);
    expect(metrics).toMatch(/apilog_producer_rejected_total\{reason="wrong_type"\} 1\b/);
  });
});
