/**
 * The lean record encoder (runtime/kafkajsRecords.ts) against the real broker: records of every shape the fast case
 * takes (string, Buffer and null keys and values, empty ones, large ones), and those it leaves to kafkajs (headers,
 * timestamps far apart), sent in mixed batches by an idempotent producer, with and without compression, read back
 * by a consumer exactly as they were sent.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { CompressionTypes, Partitioners, type Producer } from 'kafkajs';
import { PRODUCER_DELIVERY } from '../../producer/apiCallProducer.ts';
import { ensureTopic } from '../../producer/topic.ts';
import { leanRecordEncoding } from '../../runtime/kafkajsRecords.ts';
import { kafkaClient, uniqueName } from './pipeline.ts';
import { hex, readTopic, recordShapes } from './recordShapes.ts';

interface Seen {
  key: string | null;
  value: string | null;
  headers: Record<string, string>;
  timestamp: string;
}

describe('lean kafkajs records through the real broker', () => {
  let producer: Producer;
  let topic: string;

  beforeAll(async () => {
    topic = uniqueName('lean-records');
    const kafka = kafkaClient(); // createKafka() puts the lean encoder in place for the process
    await ensureTopic(kafka, { topic, partitions: 1 });
    producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner, ...PRODUCER_DELIVERY });
    await producer.connect();
  });
  afterAll(async () => {
    await producer.disconnect();
  });

  test('in place for kafkajs 2.2.4', () => {
    expect(leanRecordEncoding()).toBe('lean');
  });

  test('every record reads back as it was sent, whichever encoder wrote it', async () => {
    const messages = recordShapes(300, Date.now());
    const batches = [messages.slice(0, 100), messages.slice(100, 200), messages.slice(200)];
    await producer.send({ topic, messages: batches[0]! });
    await producer.send({ topic, messages: batches[1]!, compression: CompressionTypes.GZIP });
    await producer.send({ topic, messages: batches[2]!, compression: CompressionTypes.LZ4 });

    const seen: Seen[] = (await readTopic(topic, messages.length)).map(({ message }) => {
      const headers: Record<string, string> = {};
      for (const [k, v] of Object.entries(message.headers ?? {})) headers[k] = String(v);
      return { key: hex(message.key), value: hex(message.value), headers, timestamp: message.timestamp };
    });
    expect(seen).toEqual(messages.map((m) => ({
      key: hex(m.key),
      value: hex(m.value as Buffer | string | null),
      headers: Object.fromEntries(Object.entries(m.headers ?? {}).map(([k, v]) => [k, String(v)])),
      timestamp: m.timestamp,
    })));
  });
});
