/**
 * The lean record decoder (runtime/kafkajsFetch.ts) against kafkajs 2.2.4's own Record v0 decoder: records kafkajs's
 * encoder wrote (random keys and values, null and empty ones, headers, offset and timestamp deltas across varint
 * widths, negative ones) under batch headers of every kind (first offsets and timestamps up to and beyond 2^53, -1
 * timestamps, log-append time, control batches) decode to the same object and leave the decoder at the same place.
 * Damaged records (cut short, bytes changed, over-long varints) come out as kafkajs reads them, or fail as it fails.
 */
import { createRequire } from 'node:module';
import { isDeepStrictEqual } from 'node:util';
import { describe, expect, test } from 'vitest';
import { prng } from '../../producer/syntheticEvents.ts';
import { kafkajsRecordDecoder, leanRecordDecoder, useLeanFetchDecoding, type BatchContext, type DecoderLike, type RecordDecoder } from '../../runtime/kafkajsFetch.ts';
import { kafkajsRecordEncoder, type RecordInput } from '../../runtime/kafkajsRecords.ts';

const require = createRequire(import.meta.url);
const Decoder = require('kafkajs/src/protocol/decoder.js') as new (buffer: Buffer) => DecoderLike & { readVarIntBytes(): Buffer };
const original = kafkajsRecordDecoder();
let fallbacks = 0;
const lean = leanRecordDecoder((decoder, context) => {
  fallbacks++;
  return original(decoder, context);
});

/** A record's bytes as the batch decoder hands them to the record decoder (its length prefix read off). */
function recordBytes(record: RecordInput): Buffer {
  return new Decoder(kafkajsRecordEncoder()(record).buffer).readVarIntBytes();
}

type Outcome = { record: unknown; offset: number } | { error: string };

function outcome(decode: RecordDecoder, bytes: Buffer, context: BatchContext): Outcome {
  const decoder = new Decoder(bytes);
  try {
    return { record: decode(decoder, context), offset: decoder.offset };
  } catch (error) {
    return { error: String(error) };
  }
}

/** Compared by node's deep equality first (vitest's walks a 20 KB Buffer byte by byte); by vitest's to show a difference. */
const sameAsKafkajs = (bytes: Buffer, context: BatchContext, what: () => string) => {
  const ours = outcome(lean, bytes, context);
  const theirs = outcome(original, bytes, context);
  if (!isDeepStrictEqual(ours, theirs)) expect(ours, what()).toEqual(theirs);
};

describe('lean kafkajs record decoding', () => {
  const rand = prng(29);
  const pick = <T>(xs: readonly T[]) => xs[Math.floor(rand() * xs.length)]!;
  const blob = (n: number) => Buffer.from(Array.from({ length: n }, () => Math.floor(rand() * 256)));
  const lengths = [0, 1, 63, 64, 127, 128, 300, 8191, 8192, 20_000];
  const keyOrValue = () => pick([() => null, () => blob(pick(lengths)), () => 'text é🚀'])();
  const contexts: BatchContext[] = [];
  for (const firstOffset of ['0', '41', '123456789012', '9007199254740000', '9007199254740991', '9223372036854775000']) {
    for (const firstTimestamp of ['1764547200000', '-1', '0', '9007199254740991']) {
      contexts.push({ firstOffset, firstTimestamp, magicByte: 2, timestampType: 0, maxTimestamp: '1764547299999', isControlBatch: false });
    }
  }
  contexts.push(
    { firstOffset: '7', firstTimestamp: '1764547200000', magicByte: 2, timestampType: 1, maxTimestamp: '1764547299999', isControlBatch: false },
    { firstOffset: '7', firstTimestamp: '1764547200000', magicByte: 2, timestampType: 0, maxTimestamp: '1764547299999', isControlBatch: true },
    { firstOffset: '7', firstTimestamp: '1764547200000', magicByte: 2 },
    {},
  );
  const randomRecord = (i: number): RecordInput => ({
    offsetDelta: pick([0, 1, 63, 64, 8191, 8192, 1_048_575, 1_048_576, 2 ** 27, 2 ** 31 - 1, i]),
    timestampDelta: pick([0, 1, -1, 63, -64, 64, 1_000_000, -1_000_000, 2 ** 31, 2 ** 48 - 1, -(2 ** 48), 2 ** 52, -(2 ** 53) + 1]),
    key: keyOrValue(),
    value: keyOrValue(),
    ...(rand() < 0.1 ? { headers: pick([{}, { trace: 'abc' }, { multi: ['1', '2'], other: Buffer.from([0, 255]) }]) } : {}),
  });

  test('5,000 random records under every kind of batch header: the same record as kafkajs, the decoder at the same place', () => {
    fallbacks = 0;
    for (let i = 0; i < 5000; i++) {
      const record = randomRecord(i);
      const context = pick(contexts);
      sameAsKafkajs(recordBytes(record), context, () => `record ${i}: ${JSON.stringify({ ...record, key: typeof record.key, value: typeof record.value, context })}`);
    }
    // Both ways were taken: the fast case, and kafkajs's for headers, wide deltas, offsets and timestamps beyond 2^53.
    expect(fallbacks).toBeGreaterThan(1000);
    expect(fallbacks).toBeLessThan(4000);
  });

  test('a record read at an offset into a larger buffer, and records read one after another from one decoder', () => {
    const context = contexts[0]!;
    const parts = Array.from({ length: 50 }, (_, i) => recordBytes(randomRecord(i)));
    const joined = Buffer.concat(parts);
    const a = new Decoder(joined);
    const b = new Decoder(joined);
    for (let i = 0; i < parts.length; i++) {
      expect(lean(a, context), `record ${i}`).toEqual(original(b, context));
      expect(a.offset).toBe(b.offset);
    }
  });

  test('damaged records: cut short, a byte changed, over-long varints read as kafkajs reads them', () => {
    // Fields of one-byte varints, keys and values of 0x00 and 0x02 bytes, one byte changed: whatever kafkajs then reads
    // as a header count stays below ~8,000 (it gathers headers in quadratic time; a count in the millions would hang).
    const filler = () => pick([null, Buffer.alloc(pick([0, 5, 60]), pick([0, 2]))]);
    const small = () => Math.floor(rand() * 64) - 32;
    for (let i = 0; i < 5000; i++) {
      const record = { key: filler(), value: filler(), offsetDelta: Math.abs(small()), timestampDelta: small() };
      const bytes = Buffer.from(recordBytes(record));
      const context = pick(contexts.slice(0, 4));
      const damage = i % 3;
      const damaged = damage === 0 ? bytes.subarray(0, Math.floor(rand() * bytes.length)) : bytes;
      if (damage === 1) damaged[Math.floor(rand() * Math.min(damaged.length, 8))] = pick([0, 1, 2, 3, 0x3f, 0x40, 0x7e, 0x7f, 0x80, 0x81, 0xff]);
      if (damage === 2) damaged[damaged.length - 1] = pick([1, 2, 3, 0x7f, 0x80]); // the header count
      sameAsKafkajs(damaged, context, () => `damaged record ${i} (${damage}): ${damaged.toString('hex')}`);
    }
    // An over-long offset delta (0 written in five bytes): kafkajs reads it, and so the record goes to kafkajs.
    const overlong = Buffer.from([0, 0, 0x80, 0x80, 0x80, 0x80, 0x00, 2, 0x61, 2, 0x62, 0]);
    sameAsKafkajs(overlong, contexts[0]!, () => 'over-long varint');
    expect(outcome(lean, overlong, contexts[0]!)).toMatchObject({ record: { offset: '0', key: Buffer.from('a'), value: Buffer.from('b') } });
  });

  test('turned off, every record goes to kafkajs', () => {
    const bytes = recordBytes({ key: 'k', value: 'v', offsetDelta: 3, timestampDelta: 5 });
    fallbacks = 0;
    useLeanFetchDecoding(false);
    try {
      sameAsKafkajs(bytes, contexts[0]!, () => 'off');
      expect(fallbacks).toBe(1);
    } finally {
      useLeanFetchDecoding(true);
    }
    sameAsKafkajs(bytes, contexts[0]!, () => 'on');
    expect(fallbacks).toBe(1);
  });
});
