/**
 * The lean record encoder (runtime/kafkajsRecords.ts) against kafkajs 2.2.4's own Record v0 encoder, byte for byte:
 * random keys and values (strings with multi-byte characters, Buffers, null, empty), offset deltas across varint
 * widths, timestamp deltas negative and up to 32 bits; and what it leaves to kafkajs (headers, wider timestamps,
 * keys kafkajs refuses) still comes out as kafkajs writes it, or fails as kafkajs fails.
 */
import { createRequire } from 'node:module';
import { describe, expect, test, vi } from 'vitest';
import { prng } from '../../producer/syntheticEvents.ts';
import { registerKafkaCodecs } from '../../runtime/kafkaCodecs.ts';
import {
  batchCrc32c, kafkajsProduceRequestParts, kafkajsRecordEncoder, leanProduceRequest, leanRecordEncoder,
  type ProduceMessage, type ProduceRequest, type ProduceRequestBuilder, type ProduceRequestInput, type RecordInput,
} from '../../runtime/kafkajsRecords.ts';

const require = createRequire(import.meta.url);
const Encoder = require('kafkajs/src/protocol/encoder.js') as { prototype: object };
const original = kafkajsRecordEncoder();
const lean = leanRecordEncoder(original, Encoder.prototype);

const bytes = (record: RecordInput) => original(record).buffer;

describe('lean kafkajs record encoding', () => {
  test('5,000 random records: the same bytes as kafkajs', () => {
    const rand = prng(17);
    const pick = <T>(xs: readonly T[]) => xs[Math.floor(rand() * xs.length)]!;
    const text = (n: number) => Array.from({ length: n }, () => pick(['a', 'Z', '0', ' ', 'é', '🚀', '\u0000', '"'])).join('');
    const blob = (n: number) => Buffer.from(Array.from({ length: n }, () => Math.floor(rand() * 256)));
    const lengths = [0, 1, 63, 64, 127, 128, 300, 8191, 8192, 20_000];
    const keyOrValue = () => {
      const n = pick(lengths);
      return pick([() => null, () => undefined, () => text(Math.min(n, 500)), () => blob(n)])();
    };
    let leanOnes = 0;
    for (let i = 0; i < 5000; i++) {
      const record: RecordInput = {
        offsetDelta: pick([0, 1, 63, 64, 8191, 8192, 1_048_575, 1_048_576, i]),
        timestampDelta: pick([0, 1, -1, 63, -64, 64, 1_000_000, -1_000_000, 2 ** 31 - 1, -(2 ** 31)]),
        key: keyOrValue(),
        value: keyOrValue(),
        ...(rand() < 0.3 ? { headers: {} } : {}),
      };
      const ours = lean(record);
      expect(ours.buffer.equals(bytes(record)), `record ${i}: ${JSON.stringify({ ...record, key: typeof record.key, value: typeof record.value })}`).toBe(true);
      if (Object.getPrototypeOf(ours) === Encoder.prototype && ours.buf.length === ours.offset) leanOnes++;
    }
    // The fast case was taken (an exact-size buffer; kafkajs's own has room to spare), not only the fallback.
    expect(leanOnes).toBeGreaterThan(4000);
  });

  test('what it leaves to kafkajs comes out as kafkajs writes it: headers, timestamps beyond 32 bits, a negative offset delta', () => {
    const cases: RecordInput[] = [
      { key: 'k', value: Buffer.from('v'), headers: { trace: 'abc', multi: ['1', '2'] } },
      { key: 'k', value: 'v', timestampDelta: 2 ** 31 },
      { key: 'k', value: 'v', timestampDelta: -(2 ** 31) - 1 },
      { key: 'k', value: 'v', timestampDelta: 1_700_000_000_000 },
      { key: 'k', value: 'v', offsetDelta: -1 },
    ];
    for (const record of cases) {
      const ours = lean(record);
      expect(ours.buffer.equals(bytes(record)), JSON.stringify(record)).toBe(true);
      expect(ours.buf.length).toBeGreaterThan(ours.offset); // kafkajs's own Encoder, with room to spare
    }
  });

  test('a key kafkajs refuses is refused the same way', () => {
    expect(() => bytes({ key: 42 as unknown as string, value: 'v' })).toThrow(TypeError);
    expect(() => lean({ key: 42 as unknown as string, value: 'v' })).toThrow(TypeError);
  });
});

describe('lean kafkajs produce request', () => {
  // kafkajs's own request module, as it ships (this test file swaps nothing), over kafkajs's own record encoder.
  const kafkajsRequest = require('kafkajs/src/protocol/requests/produce/v3/request.js') as ProduceRequestBuilder;
  const parts = kafkajsProduceRequestParts();
  const ours = leanProduceRequest(parts);
  const withLeanRecords = leanProduceRequest({ ...parts, Record: lean });
  const asInPlace = leanProduceRequest({ ...parts, Record: lean, crc32C: batchCrc32c() }); // as leanRecordEncoding() puts it

  const rand = prng(41);
  const pick = <T>(xs: readonly T[]) => xs[Math.floor(rand() * xs.length)]!;
  class Message {
    constructor(readonly key: string, readonly value: Buffer) {}
    get headers() {
      return { seen: 'only by a read' }; // on the prototype: a spread does not copy it, a read would
    }
  }
  const message = (i: number): ProduceMessage => {
    const shape = pick([0, 1, 2, 3, 4, 5]);
    const base = { key: pick([null, `api-${i % 7}`, Buffer.from([i & 255])]), value: Buffer.alloc(pick([0, 10, 300]), i & 255) };
    if (shape === 0) return base;
    if (shape === 1) return { ...base, timestamp: String(1_764_547_200_000 + Math.floor(rand() * 5000)) };
    if (shape === 2) return { ...base, timestamp: 1_764_547_200_000 + Math.floor(rand() * 5000), partition: 3, slot: 1 };
    if (shape === 3) return { ...base, headers: { trace: `t${i}`, multi: ['a', 'b'] } };
    if (shape === 4) return new Message(`api-${i}`, Buffer.from(`v${i}`)) as unknown as ProduceMessage;
    return { ...base, timestamp: pick(['999', '1000', 1_764_547_200_000]) }; // text sorting: '1000' before '999'
  };
  const input = (compression: number): ProduceRequestInput => ({
    acks: pick([-1, 1]),
    timeout: 30_000,
    ...(rand() < 0.3 ? { transactionalId: 'tx-1' } : {}),
    ...(rand() < 0.5 ? { producerId: 7, producerEpoch: 2 } : {}),
    compression,
    topicData: Array.from({ length: pick([1, 2]) }, (_, t) => ({
      topic: `topic-${t}`,
      partitions: Array.from({ length: pick([1, 3]) }, (_, p) => ({
        partition: p,
        firstSequence: pick([0, 5, 1000]),
        messages: Array.from({ length: pick([1, 2, 50, 200]) }, (_, i) => message(i)),
      })),
    })),
  });
  const bytes = async (request: ProduceRequest) => (await request.encode()).buffer as Buffer;

  test('300 random requests (none and every codec): the same bytes as kafkajs, with its record encoder and with the lean one, and with the native CRC', async () => {
    registerKafkaCodecs();
    vi.useFakeTimers({ toFake: ['Date'] }); // messages without a timestamp take Date.now()
    try {
      for (let i = 0; i < 300; i++) {
        const request = input(pick([0, 1, 2, 3, 4]));
        const theirs = kafkajsRequest(request);
        const expected = await bytes(theirs);
        for (const build of [ours, withLeanRecords, asInPlace]) {
          const mine = build(request);
          expect({ apiKey: mine.apiKey, apiVersion: mine.apiVersion, apiName: mine.apiName, expects: mine.expectResponse() })
            .toEqual({ apiKey: theirs.apiKey, apiVersion: theirs.apiVersion, apiName: theirs.apiName, expects: theirs.expectResponse() });
          expect((await bytes(mine)).equals(expected), `request ${i}`).toBe(true);
        }
      }
    } finally {
      vi.useRealTimers();
    }
  });
});
