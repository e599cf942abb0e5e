/**
 * The lean record decoder (runtime/kafkajsFetch.ts) against the real broker: records of every shape (string, Buffer
 * and null keys and values, empty and large ones, headers, timestamps far apart), sent uncompressed, gzip and lz4,
 * and a topic whose broker stamps its own append time. Each topic is read twice, by a consumer with the lean decoder
 * and by one with kafkajs's own, and every fetched message (offsets, timestamps, keys, values, headers, batch
 * header) is the same, and as sent.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { CompressionTypes, Partitioners, type Kafka, type KafkaMessage, type Producer } from 'kafkajs';
import { PRODUCER_DELIVERY } from '../../producer/apiCallProducer.ts';
import { ensureTopic } from '../../producer/topic.ts';
import { leanFetchDecoding, useLeanFetchDecoding } from '../../runtime/kafkajsFetch.ts';
import { kafkaClient, uniqueName } from './pipeline.ts';
import { hex, recordShapes } from './recordShapes.ts';

/** Every message of the topic's one partition, as kafkajs's eachBatch hands them over, with the decoder `lean` or not. */
async function fetchAll(kafka: Kafka, topic: string, count: number, lean: boolean): Promise<KafkaMessage[]> {
  const consumer = kafka.consumer({ groupId: uniqueName('lean-fetch-reader') });
  const seen: KafkaMessage[] = [];
  useLeanFetchDecoding(lean);
  try {
    await consumer.connect();
    await consumer.subscribe({ topics: [topic], fromBeginning: true });
    await new Promise<void>((resolve) => {
      void consumer.run({
        eachBatch: async ({ batch }) => {
          seen.push(...batch.messages);
          if (seen.length >= count) resolve();
        },
      });
    });
  } finally {
    await consumer.disconnect();
    useLeanFetchDecoding(true);
  }
  return seen;
}

describe('lean kafkajs fetch decoding through the real broker', () => {
  let kafka: Kafka;
  let producer: Producer;

  beforeAll(async () => {
    kafka = kafkaClient(); // createKafka() puts the lean decoder in place for the process
    producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner, ...PRODUCER_DELIVERY });
    await producer.connect();
  });
  afterAll(async () => {
    await producer.disconnect();
  });

  test('in place for kafkajs 2.2.4', () => {
    expect(leanFetchDecoding()).toBe('lean');
  });

  test('every record fetched is the same object either way, and as it was sent', async () => {
    const topic = uniqueName('lean-fetch');
    await ensureTopic(kafka, { topic, partitions: 1 });
    const messages = recordShapes(600, Date.now());
    for (let i = 0; i < messages.length; i += 100) {
      const compression = [CompressionTypes.None, CompressionTypes.GZIP, CompressionTypes.LZ4][(i / 100) % 3];
      await producer.send({ topic, messages: messages.slice(i, i + 100), ...(compression ? { compression } : {}) });
    }
    const lean = await fetchAll(kafka, topic, messages.length, true);
    const kafkajs = await fetchAll(kafka, topic, messages.length, false);
    expect(lean.length).toBe(messages.length);
    expect(lean).toEqual(kafkajs);
    expect(lean.map((m) => m.offset)).toEqual(messages.map((_, i) => String(i)));
    expect(lean.map((m) => ({ key: hex(m.key), value: hex(m.value), timestamp: m.timestamp, headers: Object.keys(m.headers ?? {}) }))).toEqual(
      messages.map((m) => ({ key: hex(m.key), value: hex(m.value as Buffer | string | null), timestamp: m.timestamp, headers: Object.keys(m.headers ?? {}) })),
    );
  });

  test('a topic stamped with the broker append time: the batch time, the same either way', async () => {
    const topic = uniqueName('lean-fetch-append');
    const admin = kafka.admin();
    await admin.connect();
    try {
      await admin.createTopics({
        waitForLeaders: true,
        topics: [{ topic, numPartitions: 1, configEntries: [{ name: 'message.timestamp.type', value: 'LogAppendTime' }] }],
      });
    } finally {
      await admin.disconnect();
    }
    const sentAt = Date.now();
    await producer.send({ topic, messages: Array.from({ length: 50 }, (_, i) => ({ key: `k${i}`, value: `v${i}`, timestamp: '1000' })) });
    const lean = await fetchAll(kafka, topic, 50, true);
    expect(lean).toEqual(await fetchAll(kafka, topic, 50, false));
    const stamps = new Set(lean.map((m) => m.timestamp));
    expect(stamps.size).toBe(1);
    expect(Number([...stamps][0])).toBeGreaterThanOrEqual(sentAt - 60_000);
  });
});
