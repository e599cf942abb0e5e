/**
 * The lean grouping (runtime/kafkajsGrouping.ts) against the real broker: the producers createKafka() makes group a
 * send with it (kafkajs's own grouping would read the messages through `reduce`, which the lean one never calls),
 * and a send to several partitions, keyed and with partitions given, reads back with every message in its partition
 * in the order sent, as with kafkajs's own producer.
 */
import kafkajs, { Partitioners, type Message, type Producer } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { PRODUCER_DELIVERY } from '../../producer/apiCallProducer.ts';
import { ensureTopic } from '../../producer/topic.ts';
import { kafkaConfig } from '../../runtime/kafka.ts';
import { kafkaClient, stack, uniqueName } from './pipeline.ts';
import { readTopic } from './recordShapes.ts';

const PARTITIONS = 4;

/** The messages as an array that notes which of its methods are read. */
function noting(messages: Message[], read: Set<string | symbol>): Message[] {
  return new Proxy(messages, {
    get(target, property, receiver) {
      if (typeof property === 'string' && Number.isNaN(Number(property))) read.add(property);
      return Reflect.get(target, property, receiver) as unknown;
    },
  });
}

/** The values read back from each partition, in the order read. */
async function readBack(topic: string, count: number): Promise<Map<number, string[]>> {
  const seen = new Map<number, string[]>();
  for (const { partition, message } of await readTopic(topic, count)) seen.set(partition, [...(seen.get(partition) ?? []), String(message.value)]);
  return seen;
}

describe('lean kafkajs grouping through the real broker', () => {
  const producers: Producer[] = [];
  const connect = async (kafka: { producer: kafkajs.Kafka['producer'] }) => {
    const producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner, ...PRODUCER_DELIVERY });
    await producer.connect();
    producers.push(producer);
    return producer;
  };
  let topic: string;
  let lean: Producer;
  let theirs: Producer;

  beforeAll(async () => {
    topic = uniqueName('lean-grouping');
    await ensureTopic(kafkaClient(), { topic, partitions: PARTITIONS });
    lean = await connect(kafkaClient());
    theirs = await connect(new kafkajs.Kafka(kafkaConfig({ brokers: [stack().brokers], clientId: 'apilog-test-kafkajs' })));
  });
  afterAll(async () => {
    for (const p of producers) await p.disconnect();
  });

  test("createKafka's producers group with it; kafkajs's own reads the messages through reduce", async () => {
    const leanRead = new Set<string | symbol>();
    const theirRead = new Set<string | symbol>();
    await lean.send({ topic, messages: noting([{ key: 'a', value: 'lean-0' }], leanRead) });
    await theirs.send({ topic, messages: noting([{ key: 'a', value: 'theirs-0' }], theirRead) });
    expect(theirRead.has('reduce')).toBe(true);
    expect(leanRead.has('reduce')).toBe(false);
    expect(leanRead.has('length')).toBe(true);
  });

  test('a send to every partition, keyed and with partitions given: each partition holds its messages in order', async () => {
    const messages: Message[] = [];
    for (let i = 0; i < 600; i++) messages.push(i % 3 === 0 ? { partition: i % PARTITIONS, value: `p-${i}` } : { key: `api-${i % 17}`, value: `k-${i}` });
    await lean.send({ topic, messages: messages.slice(0, 300) });
    await theirs.send({ topic, messages: messages.slice(300) });
    const seen = await readBack(topic, 2 + messages.length);
    // kafkajs's own grouping on the same messages says where each belongs, in what order.
    const expected = new Map<number, string[]>();
    const partitioner = Partitioners.DefaultPartitioner();
    const partitionMetadata = Array.from({ length: PARTITIONS }, (_, partitionId) => ({ partitionId, leader: 0, replicas: [0], isr: [0], partitionErrorCode: 0 }));
    for (const m of [{ key: 'a', value: 'lean-0' }, { key: 'a', value: 'theirs-0' }, ...messages]) {
      const p = partitioner({ topic, partitionMetadata, message: m });
      expected.set(p, [...(expected.get(p) ?? []), String(m.value)]);
    }
    expect(new Map([...seen].sort(([a], [b]) => a - b))).toEqual(new Map([...expected].sort(([a], [b]) => a - b)));
    expect(seen.size).toBe(PARTITIONS);
  });
});
