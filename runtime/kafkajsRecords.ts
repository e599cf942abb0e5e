/**
 * kafkajs 2.2.4 encodes each record it produces through its general Encoder. Every record gets its own zero-filled
 * 512-byte buffer (a new ArrayBuffer, outside the buffer pool), its varlong timestamp goes through `Long` objects,
 * and a slice of it is made when the batch is assembled. `npx tsx bench/kafkajsRecords.ts` compares the two
 * encoders: pre-encoded 250-byte values, 200 per send, idempotent, lz4. The producer process's CPU per event fell
 * 5-9 % (18.13 → 17.24 µs over 8 rounds, 20.65 → 18.83 over 4).
 *
 * Its produce request then built each record's input by spreading the message into a new object with two more
 * fields, which V8 builds on a slow path (1.3-2.3 µs per message alone, and objects slower to read afterwards).
 * `leanProduceRequest` is the same request with those fields read off the message; with both, the producer's CPU per
 * event fell from 22.39 to 12.83 µs (0.57, 4 rounds of the same bench).
 *
 * `leanRecordEncoding()` replaces kafkajs's Record v0 encoder, the module its produce request (v3 and later, which
 * every broker since Kafka 0.11 takes) builds records with. The replacement writes the same bytes into one buffer of
 * the record's exact size, from the buffer pool. It takes the common case: no headers, a string, Buffer or null key
 * and value, and a timestamp delta that fits 32 bits. Anything else goes to kafkajs's own encoder. The
 * replacement is an Encoder, with `buf` and `offset` as kafkajs's batch code reads them.
 *
 * kafkajs is one copy per process, so this applies to every kafkajs client of the process, like the codecs
 * (kafkaCodecs.ts) and the idle-loop fix (kafkajsIdleLoop.ts). kafkajs loads its produce request module on the first
 * produce request and takes the record encoder from the module cache then. This has to run before that, which
 * createKafka does; the request module (v3, which v4 to v7 load and build on) is replaced next, before v4 loads it.
 * When the request module is already loaded, nothing is replaced and the answer says so. It applies to kafkajs 2.2.4
 * only, checked by version and by the modules' source. APILOG_KAFKAJS_RECORDS=keep leaves kafkajs alone (both).
 */
import { createRequire } from 'node:module';
import { swapKafkajsModule } from './kafkajsModules.ts';
import { lebSize, writeLeb } from './leb128.ts';

const require = createRequire(import.meta.url);

const RECORD_MODULE = 'kafkajs/src/protocol/recordBatch/record/v0/index.js';
const PRODUCE_REQUEST_MODULE = 'kafkajs/src/protocol/requests/produce/v3/request.js';
const PRODUCE_REQUEST_V4_MODULE = 'kafkajs/src/protocol/requests/produce/v4/request.js';
const ENCODER_MODULE = 'kafkajs/src/protocol/encoder.js';

/** What kafkajs's request passes for each message (its Record v0 parameters). */
export interface RecordInput {
  offsetDelta?: number;
  timestampDelta?: unknown;
  key?: unknown;
  value?: unknown;
  headers?: unknown;
}

/** kafkajs's Encoder, as far as its record batch reads one. */
export interface EncoderLike {
  buf: Buffer;
  offset: number;
  readonly buffer: Buffer;
}

export type RecordEncoder = (record: RecordInput) => EncoderLike;

export type RecordsState = 'lean' | 'lean records; kept: produce request' | 'kept: other kafkajs' | 'kept: produce request already loaded' | 'kept: by APILOG_KAFKAJS_RECORDS';
let state: RecordsState | undefined;

/** kafkajs's own Record v0 encoder (the module's export as kafkajs ships it, before any replacement). */
let original: RecordEncoder | undefined;

export function kafkajsRecordEncoder(): RecordEncoder {
  if (original !== undefined) return original;
  return require(RECORD_MODULE) as RecordEncoder;
}

/** Zigzag of a 32-bit signed value, as an unsigned 32-bit number (kafkajs's encodeZigZag, then >>> 0). */
const zigzag = (v: number) => ((v << 1) ^ (v >> 31)) >>> 0;

const INT32_MIN = -0x80000000;
const INT32_MAX = 0x7fffffff;

/** Bytes of a key or value: -1 for null, else its length (a string's UTF-8 length); NaN outside the fast case. */
function bytesOf(x: unknown): number {
  if (x == null) return -1;
  if (Buffer.isBuffer(x)) return x.length;
  if (typeof x === 'string') return Buffer.byteLength(x, 'utf8');
  return Number.NaN;
}

function writeBytes(buf: Buffer, at: number, x: unknown, length: number): number {
  at = writeLeb(buf, at, zigzag(length));
  if (length <= 0) return at;
  if (typeof x === 'string') return at + buf.write(x, at, 'utf8');
  return at + (x as Buffer).copy(buf, at);
}

function hasHeaders(headers: unknown): boolean {
  if (headers === undefined) return false;
  if (headers === null || typeof headers !== 'object') return true; // kafkajs's way (it throws for null)
  for (const key in headers) if (Object.prototype.hasOwnProperty.call(headers, key)) return true;
  return false;
}

/** Builds the lean encoder over kafkajs's own (used for everything outside the fast case). */
export function leanRecordEncoder(fallback: RecordEncoder, encoderPrototype: object): RecordEncoder {
  return function leanRecord(record: RecordInput): EncoderLike {
    const { offsetDelta = 0, timestampDelta = 0, key, value, headers } = record;
    const keyLength = bytesOf(key);
    const valueLength = bytesOf(value);
    if (
      typeof timestampDelta !== 'number' || !Number.isInteger(timestampDelta) || timestampDelta < INT32_MIN || timestampDelta > INT32_MAX ||
      !Number.isInteger(offsetDelta) || offsetDelta < 0 || offsetDelta > INT32_MAX ||
      Number.isNaN(keyLength) || Number.isNaN(valueLength) || hasHeaders(headers)
    ) {
      return fallback(record);
    }
    const ts = zigzag(timestampDelta);
    const od = zigzag(offsetDelta);
    const keyZ = zigzag(keyLength);
    const valueZ = zigzag(valueLength);
    const body = 1 + lebSize(ts) + lebSize(od) + lebSize(keyZ) + Math.max(keyLength, 0) + lebSize(valueZ) + Math.max(valueLength, 0) + 1;
    const bodyZ = zigzag(body);
    const size = lebSize(bodyZ) + body;
    const buf = Buffer.allocUnsafe(size);
    let at = writeLeb(buf, 0, bodyZ);
    buf[at++] = 0; // attributes
    at = writeLeb(buf, at, ts);
    at = writeLeb(buf, at, od);
    at = writeBytes(buf, at, key, keyLength);
    at = writeBytes(buf, at, value, valueLength);
    buf[at++] = 0; // no headers
    return encoderHolding(encoderPrototype, buf, at);
  };
}

/**
 * A kafkajs Encoder holding `length` bytes of `buf`, made from its prototype: kafkajs's batch, request and codec code
 * read `buf`, `offset` and the `buffer` getter, and its constructor's own zero-filled 512 bytes would be thrown away.
 */
function encoderHolding(prototype: object, buf: Buffer, length: number): EncoderLike {
  const encoder = Object.create(prototype) as EncoderLike;
  encoder.buf = buf;
  encoder.offset = length;
  return encoder;
}

/** Copies each record's bytes into `target` from `at`, in order; the position after them. */
function copyRecords(records: readonly EncoderLike[], target: Buffer, at: number): number {
  for (let i = 0; i < records.length; i++) at += records[i]!.buf.copy(target, at, 0, records[i]!.offset);
  return at;
}

/** A message as kafkajs's producer hands it to the produce request (the caller's own object). */
export interface ProduceMessage {
  key?: unknown;
  value?: unknown;
  headers?: unknown;
  timestamp?: string | number | null;
  /** Whatever else the caller put on it (kafkajs's `partition`, the SDK's `slot`): not part of the record. */
  [other: string]: unknown;
}

export interface ProducePartition {
  partition: number;
  firstSequence?: number;
  messages: ProduceMessage[];
}

export interface ProduceRequestInput {
  acks: number;
  timeout: number;
  transactionalId?: string | null;
  producerId?: unknown;
  producerEpoch?: number;
  compression?: number;
  topicData: { topic: string; partitions: ProducePartition[] }[];
}

/** kafkajs's Encoder, as the request builds one. */
interface RequestEncoder {
  readonly buffer: Buffer;
  writeString(value: string | null): RequestEncoder;
  writeInt16(value: number): RequestEncoder;
  writeInt32(value: number): RequestEncoder;
  writeArray(value: readonly unknown[]): RequestEncoder;
  writeEncoder(value: RequestEncoder): RequestEncoder;
  size(): number;
}

export interface ProduceRequest {
  apiKey: number;
  apiVersion: number;
  apiName: string;
  expectResponse: () => boolean;
  encode: () => Promise<RequestEncoder>;
}

export type ProduceRequestBuilder = (input: ProduceRequestInput) => ProduceRequest;

/** What kafkajs's produce request v3 is built from: its modules, as the replacement takes them. */
export interface ProduceRequestParts {
  readonly Encoder: new () => RequestEncoder;
  readonly minusOne: unknown; // Long.fromInt(-1): no producer id
  readonly apiKey: number;
  readonly none: number; // CompressionTypes.None
  readonly Record: RecordEncoder;
  /** kafkajs's Long: int64 fields as its Encoder writes them (from numbers, text, bigints or Longs). */
  readonly Long: { fromValue(value: unknown): { getHighBits(): number; getLowBits(): number } };
  /** kafkajs's CRC32C of a record batch (unsigned). */
  readonly crc32C: (bytes: Buffer) => number;
  /** kafkajs's codec table lookup (which kafkaCodecs.ts fills): null for a codec it does not have. */
  readonly lookupCodec: (compression: number) => { compress(encoder: EncoderLike): Promise<Buffer> } | null;
  readonly codecMask: number;
}

/** kafkajs's own produce request v3 module's parts (whatever Record encoder the module cache holds now). */
export function kafkajsProduceRequestParts(): ProduceRequestParts {
  const compression = require('kafkajs/src/protocol/message/compression/index.js') as {
    Types: { None: number }; lookupCodec: ProduceRequestParts['lookupCodec']; COMPRESSION_CODEC_MASK: number;
  };
  const Long = require('kafkajs/src/utils/long.js') as ProduceRequestParts['Long'] & { fromInt(n: number): unknown };
  return {
    Encoder: require(ENCODER_MODULE) as new () => RequestEncoder,
    minusOne: Long.fromInt(-1),
    apiKey: (require('kafkajs/src/protocol/requests/apiKeys.js') as { Produce: number }).Produce,
    none: compression.Types.None,
    Record: require(RECORD_MODULE) as RecordEncoder,
    Long,
    crc32C: require('kafkajs/src/protocol/recordBatch/crc32C/index.js') as (bytes: Buffer) => number,
    lookupCodec: compression.lookupCodec,
    codecMask: compression.COMPRESSION_CODEC_MASK,
  };
}

/**
 * The CRC32C of a record batch from @node-rs/crc32 (native, SIMD): 0.22 ns per byte here against 3.0 for kafkajs's
 * JavaScript table, which is what a platform without its prebuilt binary keeps.
 */
export function batchCrc32c(): (bytes: Buffer) => number {
  try {
    const { crc32c } = require('@node-rs/crc32') as typeof import('@node-rs/crc32');
    return (bytes) => crc32c(bytes) >>> 0;
  } catch {
    return kafkajsProduceRequestParts().crc32C;
  }
}

/** A record batch's fixed fields, as kafkajs's RecordBatch v0 takes them. */
interface BatchFields {
  readonly compression: number;
  readonly firstTimestamp: unknown;
  readonly maxTimestamp: unknown;
  readonly producerId: unknown;
  readonly producerEpoch: number;
  readonly firstSequence: number | undefined;
  readonly transactional: boolean;
}

const RECORD_BATCH_MAGIC = 2;
const TRANSACTIONAL_ATTRIBUTE = 16;
/** partition, batch size; base offset, batch length, leader epoch, magic, CRC (what a partition's part starts with). */
const PARTITION_HEAD = 4 + 4 + 8 + 4 + 4 + 1 + 4;
/** attributes, last offset delta, first and max timestamps, producer id, epoch, first sequence, record count. */
const BATCH_BODY_HEAD = 2 + 4 + 8 + 8 + 8 + 2 + 4 + 4;

/**
 * A partition's part of kafkajs 2.2.4's produce request (partition, batch size, then its RecordBatch v0 with base
 * offset 0 and leader epoch 0), the same bytes, in one buffer of its exact size. kafkajs grows its Encoders by
 * doubling, each time a new zero-filled buffer and a copy, five Encoders deep (records, compressed records, body,
 * batch, base offset): for 200 events of 250 bytes, several hundred KB of zeroing and copying per partition.
 */
function leanPartitionPart(parts: ProduceRequestParts): (partition: number, fields: BatchFields, records: readonly EncoderLike[]) => Promise<EncoderLike> {
  const { Encoder, Long, crc32C, lookupCodec, codecMask, none } = parts;
  const int64 = (buf: Buffer, at: number, value: unknown) => {
    const long = Long.fromValue(value);
    buf.writeInt32BE(long.getHighBits(), at);
    buf.writeInt32BE(long.getLowBits(), at + 4);
  };
  return async (partition, fields, records) => {
    let recordBytes = 0;
    for (let i = 0; i < records.length; i++) recordBytes += records[i]!.offset;
    let payload: Buffer | undefined; // the compressed records; none: the records are written in place
    if (fields.compression !== none) {
      const joined = Buffer.allocUnsafe(recordBytes);
      copyRecords(records, joined, 0);
      payload = await lookupCodec(fields.compression)!.compress(encoderHolding(Encoder.prototype, joined, recordBytes));
    }
    const bodyLength = BATCH_BODY_HEAD + (payload === undefined ? recordBytes : payload.length);
    const out = Buffer.allocUnsafe(PARTITION_HEAD + bodyLength);
    const batchLength = 4 + 1 + 4 + bodyLength; // leader epoch, magic, CRC, body
    out.writeInt32BE(partition, 0);
    out.writeInt32BE(8 + 4 + batchLength, 4);
    out.writeInt32BE(0, 8); // base offset 0 (int64)
    out.writeInt32BE(0, 12);
    out.writeInt32BE(batchLength, 16);
    out.writeInt32BE(0, 20); // partition leader epoch
    out.writeInt8(RECORD_BATCH_MAGIC, 24);
    let at = PARTITION_HEAD;
    const body = at;
    at = out.writeInt16BE((fields.compression & codecMask) | (fields.transactional ? TRANSACTIONAL_ATTRIBUTE : 0), at);
    at = out.writeInt32BE(records.length - 1, at); // last offset delta
    int64(out, at, fields.firstTimestamp);
    int64(out, at + 8, fields.maxTimestamp);
    int64(out, at + 16, fields.producerId);
    at = out.writeInt16BE(fields.producerEpoch, at + 24);
    at = out.writeInt32BE(fields.firstSequence ?? 0, at);
    at = out.writeInt32BE(records.length, at);
    at = payload === undefined ? copyRecords(records, out, at) : at + payload.copy(out, at);
    out.writeUInt32BE(crc32C(out.subarray(body, at)), 25);
    return encoderHolding(Encoder.prototype, out, at);
  };
}

/**
 * kafkajs 2.2.4's produce request v3 (v4 to v7 build on it), the same request, except for how each record's fields
 * reach the record encoder. kafkajs spreads each message into a new object with two more fields
 * (`{ ...message, offsetDelta, timestampDelta }`), which V8 builds on a slow path: about 1.3-2.3 µs per message
 * measured here, more than the record's encoding. The fields the encoder reads (key, value, headers) are read off the
 * message instead. A message that is not a plain object (a class instance, whose fields a spread and a read may see
 * differently) is spread as kafkajs does.
 */
export function leanProduceRequest(parts: ProduceRequestParts): ProduceRequestBuilder {
  const { Encoder, Record } = parts;
  const partitionPart = leanPartitionPart(parts);

  const encodePartition = async (
    compression: number, transactional: boolean, producerId: unknown, producerEpoch: number, { partition, firstSequence, messages }: ProducePartition,
  ): Promise<RequestEncoder> => {
    // kafkajs's batch times: the messages' own, sorted as its default sort does (as text), or now.
    const dateNow = Date.now();
    const messageTimestamps = messages.map((m) => m.timestamp).filter((t) => t != null).sort();
    const timestamps = messageTimestamps.length === 0 ? [dateNow] : messageTimestamps;
    const firstTimestamp = timestamps[0]!;
    const maxTimestamp = timestamps[timestamps.length - 1]!;
    const records = new Array<EncoderLike>(messages.length);
    for (let i = 0; i < messages.length; i++) {
      const message = messages[i]!;
      const timestampDelta = ((message.timestamp || dateNow) as number) - (firstTimestamp as number);
      records[i] = Object.getPrototypeOf(message) === Object.prototype
        ? Record({ key: message.key, value: message.value, headers: message.headers, offsetDelta: i, timestampDelta })
        : Record({ ...message, offsetDelta: i, timestampDelta });
    }
    return partitionPart(partition, { compression, firstTimestamp, maxTimestamp, producerId, producerEpoch, firstSequence, transactional }, records) as unknown as Promise<RequestEncoder>;
  };

  return ({ acks, timeout, transactionalId = null, producerId = parts.minusOne, producerEpoch = 0, compression = parts.none, topicData }) => ({
    apiKey: parts.apiKey,
    apiVersion: 3,
    apiName: 'Produce',
    expectResponse: () => acks !== 0,
    encode: async () => {
      const topics: RequestEncoder[] = [];
      for (const { topic, partitions } of topicData) {
        const encoded: RequestEncoder[] = [];
        for (const data of partitions) encoded.push(await encodePartition(compression, !!transactionalId, producerId, producerEpoch, data));
        topics.push(new Encoder().writeString(topic).writeArray(encoded));
      }
      return new Encoder().writeString(transactionalId).writeInt16(acks).writeInt32(timeout).writeArray(topics);
    },
  });
}

/** Puts the lean record encoder, then the lean produce request, in kafkajs's place (see above); idempotent. */
export function leanRecordEncoding(): RecordsState {
  if (state !== undefined) return state;
  if (process.env['APILOG_KAFKAJS_RECORDS'] === 'keep') return (state = 'kept: by APILOG_KAFKAJS_RECORDS');
  const records = swapKafkajsModule<RecordEncoder>(RECORD_MODULE, PRODUCE_REQUEST_MODULE, ['writeVarIntBytes(key)', 'writeVarLong(timestampDelta)'], (kafkajs) => {
    original = kafkajs;
    return leanRecordEncoder(kafkajs, (require(ENCODER_MODULE) as { prototype: object }).prototype);
  });
  if (records !== 'swapped') return (state = records === 'already loaded' ? 'kept: produce request already loaded' : 'kept: other kafkajs');
  // The request module is loaded now (by the check), with the lean encoder; versions 4 to 7 have not loaded it yet.
  const request = swapKafkajsModule<ProduceRequestBuilder>(PRODUCE_REQUEST_MODULE, PRODUCE_REQUEST_V4_MODULE, ['...message,', 'offsetDelta: i,'], () =>
    leanProduceRequest({ ...kafkajsProduceRequestParts(), crc32C: batchCrc32c() }),
  );
  return (state = request === 'swapped' ? 'lean' : 'lean records; kept: produce request');
}
