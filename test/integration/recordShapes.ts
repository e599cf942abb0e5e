/**
 * Messages of every shape kafkajs's record code meets, for the tests of its lean encoder and decoder
 * (runtime/kafkajsRecords.ts, runtime/kafkajsFetch.ts): the fast cases (string, Buffer and null keys and values,
 * empty and 20 KB ones) and what they leave to kafkajs (headers; timestamps far from the batch's first, before and
 * after it); and reading a topic back through createKafka()'s consumer (`readTopic`), for them and the grouping's test.
 */
import type { KafkaMessage, Message } from 'kafkajs';
import { kafkaClient, uniqueName } from './pipeline.ts';

export function recordShapes(count: number, now: number): Message[] {
  const messages: Message[] = [];
  for (let i = 0; i < count; i++) {
    const shape = i % 10;
    messages.push({
      key: shape === 0 ? null : shape === 1 ? Buffer.from([i & 255, 0, 255]) : `key-${i}-é🚀`,
      value: shape === 2 ? null : shape === 3 ? '' : shape === 4 ? Buffer.alloc(20_000, i & 255) : `value ${i} ${'x'.repeat(i)}`,
      ...(shape === 5 ? { headers: { trace: `t${i}`, empty: '' } } : {}),
      timestamp: String(shape === 6 ? now - 3_000_000_000 : shape === 7 ? now + 2 ** 40 : now + i),
    });
  }
  return messages;
}

/** A key or value as hex text (null stays null), to compare what was sent with what was read. */
export const hex = (x: Buffer | string | null | undefined): string | null => (x == null ? null : Buffer.from(x).toString('hex'));

/** The first `count` messages of a topic from its start, with their partitions, as createKafka()'s consumer hands them over. */
export async function readTopic(topic: string, count: number): Promise<{ partition: number; message: KafkaMessage }[]> {
  const consumer = kafkaClient().consumer({ groupId: uniqueName(`${topic}-reader`) });
  const seen: { partition: number; message: KafkaMessage }[] = [];
  await consumer.connect();
  await consumer.subscribe({ topics: [topic], fromBeginning: true });
  await new Promise<void>((resolve) => {
    void consumer.run({
      eachMessage: async ({ partition, message }) => {
        seen.push({ partition, message });
        if (seen.length === count) resolve();
      },
    });
  });
  await consumer.disconnect();
  return seen;
}
