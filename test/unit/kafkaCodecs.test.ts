/**
 * Kafka's codecs as kafkajs uses them: record batches encoded and decoded by kafkajs's own protocol code, with the
 * codecs runtime/kafkaCodecs.ts registers; snappy-java's framing byte by byte (a fixture written by snappy-java
 * 1.1.10.5, the version Kafka 3.9 ships); and a batch in a codec id no codec has yet.
 */
import { createRequire } from 'node:module';
import { compressSync as snappyCompress } from 'snappy';
import { beforeAll, describe, expect, it } from 'vitest';
import kafkajs from 'kafkajs';
import { CODEC_IDS, UnreadableBatchError, registerKafkaCodecs, unreadableBatchIn, type CompressionName } from '../../runtime/kafkaCodecs.ts';
import { XERIAL_MAGIC, isXerialFramed, xerialBlocks, xerialFrame } from '../../runtime/snappyFraming.ts';
import { SyntheticEvents } from '../../producer/syntheticEvents.ts';
import { apiCallTypeV1 } from '../../schemas/apiCall.ts';
import { FramedEncoder } from '../../schemas/wire.ts';

// kafkajs's record batch encoder and decoder: the code a producer and a consumer run on every batch.
const require = createRequire(import.meta.url);
type RecordBatchFn = (options: { compression: number; records: unknown[] }) => Promise<{ buffer: Buffer }>;
const { RecordBatch } = require('kafkajs/src/protocol/recordBatch/v0') as { RecordBatch: RecordBatchFn };
const Record = require('kafkajs/src/protocol/recordBatch/record/v0') as (r: { offsetDelta: number; key: Buffer; value: Buffer }) => unknown;
const decodeRecordBatch = require('kafkajs/src/protocol/recordBatch/v0/decoder') as (d: unknown) => Promise<{ records: { key: Buffer; value: Buffer }[] }>;
const Decoder = require('kafkajs/src/protocol/decoder') as new (b: Buffer) => unknown;

/** Byte offset of the int16 attributes in kafkajs's encoding: firstOffset 8, length 4, leader epoch 4, magic 1, crc 4. */
const ATTRIBUTES_AT = 21;

/** Snappy-java 1.1.10.5's SnappyOutputStream writing "apilog apilog apilog" (Kafka 3.9's Java client frames snappy so). */
const JAVA_SNAPPY = Buffer.from('82534e4150505900000000010000000100000016144c6170696c6f67206170696c6f67206170696c6f67', 'hex');

function messages(count: number): { key: Buffer; value: Buffer }[] {
  const events = new SyntheticEvents({ apis: 12, seed: 7, service: 'codec-test', instance: 'i-0' });
  const encoder = new FramedEncoder(apiCallTypeV1, 42);
  return Array.from({ length: count }, () => {
    const event = events.next();
    return { key: Buffer.from(event.api), value: encoder.encode(event) };
  });
}

async function encodeBatch(compression: number, batch: { key: Buffer; value: Buffer }[]): Promise<Buffer> {
  const records = batch.map((m, i) => Record({ offsetDelta: i, key: m.key, value: m.value }));
  return (await RecordBatch({ compression, records })).buffer;
}

describe('Kafka codecs through kafkajs record batches', () => {
  beforeAll(() => registerKafkaCodecs());
  const batch = messages(500);
  const uncompressed = encodeBatch(0, batch);

  for (const name of Object.keys(CODEC_IDS) as Exclude<CompressionName, 'none'>[]) {
    it(`${name}: a batch of 500 events is compressed (smaller) and decodes to the same keys and values`, async () => {
      const encoded = await encodeBatch(CODEC_IDS[name], batch);
      expect(encoded.readInt16BE(ATTRIBUTES_AT) & 0x07).toBe(CODEC_IDS[name]);
      expect(encoded.length).toBeLessThan((await uncompressed).length * 0.8);
      const decoded = await decodeRecordBatch(new Decoder(encoded));
      expect(decoded.records.map((r) => [r.key.toString(), r.value.toString('hex')])).toEqual(batch.map((m) => [m.key.toString(), m.value.toString('hex')]));
    });
  }

  it('snappy: what the SDK writes is framed as the Java client frames it, in 32 KiB blocks', async () => {
    const encoded = await encodeBatch(CODEC_IDS.snappy, batch);
    // firstOffset 8, length 4, 45 bytes of batch header, the record count 4: the compressed records follow.
    const compressed = encoded.subarray(8 + 4 + 45 + 4);
    expect(compressed.subarray(0, 8).equals(XERIAL_MAGIC)).toBe(true);
    expect(xerialBlocks(compressed).length).toBe(Math.ceil((await uncompressed).length / 32768));
  });

  it('snappy: a raw block without framing, as librdkafka writes it, decompresses too', async () => {
    const codecs = kafkajs.CompressionCodecs as unknown as Record<number, () => { decompress(b: Buffer): Promise<Buffer> }>;
    const data = await uncompressed;
    expect((await codecs[CODEC_IDS.snappy]!().decompress(snappyCompress(data))).equals(data)).toBe(true);
  });

  for (const id of [5, 6, 7]) {
    it(`a batch whose attributes name codec id ${id} (none exists yet) is refused, not read as uncompressed bytes`, async () => {
      const encoded = await encodeBatch(CODEC_IDS.gzip, batch.slice(0, 10));
      encoded.writeInt16BE((encoded.readInt16BE(ATTRIBUTES_AT) & ~0x07) | id, ATTRIBUTES_AT);
      const error = await decodeRecordBatch(new Decoder(encoded)).then(() => undefined, (e: unknown) => e);
      expect(error).toBeInstanceOf(UnreadableBatchError);
      expect((error as UnreadableBatchError).codec).toBe(`codec id ${id}`);
      expect((error as UnreadableBatchError).retriable).toBe(false);
    });
  }

  it('bytes a codec cannot decompress fail with an UnreadableBatchError naming the codec (not retried as a network error)', async () => {
    const encoded = await encodeBatch(CODEC_IDS.zstd, batch.slice(0, 10));
    encoded.fill(0x5a, encoded.length - 40);
    const error = await decodeRecordBatch(new Decoder(encoded)).then(() => undefined, (e: unknown) => e);
    expect(unreadableBatchIn(error)?.codec).toBe('zstd');
    expect(unreadableBatchIn(new (kafkajs.KafkaJSNonRetriableError as unknown as new (e: Error, o: { cause: Error }) => Error)(error as Error, { cause: error as Error }))).toBe(error);
  });
});

describe("snappy-java's stream framing", () => {
  it('reads the header and the one block of a buffer snappy-java wrote', () => {
    expect(isXerialFramed(JAVA_SNAPPY)).toBe(true);
    const blocks = xerialBlocks(JAVA_SNAPPY);
    expect(blocks.map((b) => b.toString('hex'))).toEqual(['144c6170696c6f67206170696c6f67206170696c6f67']);
  });

  it('writes exactly the bytes snappy-java writes for the same block', () => {
    const block = snappyCompress(Buffer.from('apilog apilog apilog'));
    expect(xerialFrame([block]).toString('hex')).toBe(JAVA_SNAPPY.toString('hex'));
  });

  it('frames several blocks, each behind its big-endian length', () => {
    const framed = xerialFrame([Buffer.from([1, 2, 3]), Buffer.from([]), Buffer.from([9])]);
    expect(framed.toString('hex')).toBe(`${XERIAL_MAGIC.toString('hex')}0000000100000001` + '00000003010203' + '00000000' + '0000000109');
    expect(xerialBlocks(framed).map((b) => [...b])).toEqual([[1, 2, 3], [], [9]]);
  });

  it('refuses a truncated block or length, and a raw snappy block is not taken for framing', () => {
    expect(() => xerialBlocks(JAVA_SNAPPY.subarray(0, JAVA_SNAPPY.length - 1))).toThrow(/block of 22 bytes/);
    expect(() => xerialBlocks(Buffer.concat([JAVA_SNAPPY, Buffer.from([0, 0])]))).toThrow(/2 bytes left/);
    expect(isXerialFramed(snappyCompress(Buffer.from('apilog apilog apilog')))).toBe(false);
  });
});
