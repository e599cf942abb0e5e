/**
 * Partitioning agrees with the Java client: murmur2 vectors from Apache Kafka's own test
 * (clients/src/test/java/org/apache/kafka/common/utils/UtilsTest.java, testMurmur2) and from librdkafka's
 * (src/rdmurmur2.c, unittest_murmur2, whose table is labelled java_murmur2_results), and the SDK's
 * partitioner and kafkajs's DefaultPartitioner choosing the same partitions.
 */
import { describe, expect, test } from 'vitest';
import { Partitioners } from 'kafkajs';
import { murmur2, murmur2String, partitionForKey } from '../../producer/murmur2.ts';
import { KeyPartitioner } from '../../producer/partitioner.ts';

const KAFKA_UTILS_TEST: [string, number][] = [
  ['21', -973932308],
  ['foobar', -790332482],
  ['a-little-bit-long-string', -985981536],
  ['a-little-bit-longer-string', -1486304829],
  ['lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8', -58897971],
  ['abc', 479470107],
];

const LIBRDKAFKA_JAVA_RESULTS: [string, number][] = [
  ['kafka', 0xd067cf64 | 0],
  ['giberish123456789', 0x8f552b0c | 0],
  ['1234', 0x9fc97b14 | 0],
  ['234', 0xe7c009ca | 0],
  ['34', 0x873930da | 0],
  ['4', 0x5a4b5ca1 | 0],
  ['PreAmbleWillBeRemoved,ThePrePartThatIs', 0x78424f1c | 0],
  ['reAmbleWillBeRemoved,ThePrePartThatIs', 0x4a62b377 | 0],
  ['eAmbleWillBeRemoved,ThePrePartThatIs', 0xe0e4e09e | 0],
  ['AmbleWillBeRemoved,ThePrePartThatIs', 0x62b8b43f | 0],
  ['', 0x106e08d9 | 0],
];

describe('murmur2 (Java-compatible)', () => {
  test.each(KAFKA_UTILS_TEST)("Kafka UtilsTest: murmur2(%j) = %i", (key, expected) => {
    expect(murmur2String(key)).toBe(expected);
    expect(murmur2(Buffer.from(key))).toBe(expected);
  });

  test.each(LIBRDKAFKA_JAVA_RESULTS)('librdkafka unittest_murmur2: murmur2(%j) = %i', (key, expected) => {
    expect(murmur2String(key)).toBe(expected);
  });

  test('partition = toPositive(murmur2) % partitions, as Java computes it', () => {
    // -790332482 & 0x7fffffff = 1357151166
    expect(partitionForKey('foobar', 10)).toBe(1357151166 % 10);
    for (const [key, hash] of KAFKA_UTILS_TEST) {
      for (const n of [1, 3, 6, 12, 50]) expect(partitionForKey(key, n)).toBe((hash & 0x7fffffff) % n);
    }
  });

  test('the SDK partitioner and kafkajs DefaultPartitioner choose the same partition for API names', () => {
    const kafkajs = Partitioners.DefaultPartitioner();
    const ours = new KeyPartitioner().kafkajs()();
    for (const n of [1, 6, 12, 32]) {
      const partitionMetadata = Array.from({ length: n }, (_, i) => ({ partitionId: i, leader: 1, replicas: [1], isr: [1], partitionErrorCode: 0 }));
      for (const key of ['payments.charge', 'users.get', 'orders.list_2', 'é-ü-unicode', '', ...KAFKA_UTILS_TEST.map((v) => v[0])]) {
        const message = { key, value: Buffer.alloc(0), slot: 0 };
        expect(ours({ topic: 't', partitionMetadata, message })).toBe(kafkajs({ topic: 't', partitionMetadata, message: { key, value: null } }));
      }
    }
  });
});

describe('hot-key spreading', () => {
  test('a spread API round-robins over N consecutive partitions from its murmur2 partition; others stay put', () => {
    const p = new KeyPartitioner(new Map([['search.list', 3]]));
    const base = partitionForKey('search.list', 12);
    const seen = new Map<number, number>();
    for (let i = 0; i < 30; i++) {
      const part = p.partition('search.list', p.nextSlot('search.list'), 12);
      seen.set(part, (seen.get(part) ?? 0) + 1);
    }
    expect([...seen.keys()].sort((a, b) => a - b)).toEqual([base, (base + 1) % 12, (base + 2) % 12].sort((a, b) => a - b));
    expect([...seen.values()]).toEqual([10, 10, 10]);
    for (let i = 0; i < 5; i++) expect(p.partition('users.get', p.nextSlot('users.get'), 12)).toBe(partitionForKey('users.get', 12));
  });

  test('the slot travels with the message, so a retried batch goes to the same partitions', () => {
    const p = new KeyPartitioner(new Map([['hot', 4]]));
    const fn = p.kafkajs()();
    const partitionMetadata = Array.from({ length: 8 }, (_, i) => ({ partitionId: i, leader: 1, replicas: [1], isr: [1], partitionErrorCode: 0 }));
    const messages = Array.from({ length: 8 }, () => ({ key: 'hot', value: Buffer.alloc(0), slot: p.nextSlot('hot') }));
    const first = messages.map((message) => fn({ topic: 't', partitionMetadata, message }));
    const again = messages.map((message) => fn({ topic: 't', partitionMetadata, message }));
    expect(again).toEqual(first);
    expect(new Set(first).size).toBe(4);
  });
});
