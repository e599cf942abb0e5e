/**
 * kafkajs 2.2.4 encodes each record it produces through its general Encoder. Every record gets its own zero-filled
 * 512-byte buffer (a new ArrayBuffer, outside the buffer pool), its varlong timestamp goes through `Long` objects,
 * and a slice of it is made when the batch is assembled. `npx tsx bench/kafkajsRecords.ts` compares the two
 * encoders: pre-encoded 250-byte values, 200 per send, idempotent, lz4. The producer process's CPU per event fell
 * 5-9 % (18.13 → 17.24 µs over 8 rounds, 20.65 → 18.83 over 4); most of what remains is kafkajs's request
 * building around the records, compression and partitioning.
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
 * createKafka does. When the request module is already loaded, nothing is replaced and the answer says so. It
 * applies to kafkajs 2.2.4 only, checked by version and by the encoder's source. APILOG_KAFKAJS_RECORDS=keep leaves
 * kafkajs alone.
 */
import { createRequire } from 'node:module';
import { swapKafkajsModule } from './kafkajsModules.ts';
import { lebSize, writeLeb } from './leb128.ts';

const require = createRequire(import.meta.url);

const RECORD_MODULE = 'kafkajs/src/protocol/recordBatch/record/v0/index.js';
const PRODUCE_REQUEST_MODULE = 'kafkajs/src/protocol/requests/produce/v3/request.js';
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

export type RecordsState = 'lean' | 'kept: other kafkajs' | 'kept: produce request already loaded' | 'kept: by APILOG_KAFKAJS_RECORDS';
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
    const encoder = Object.create(encoderPrototype) as EncoderLike;
    encoder.buf = buf;
    encoder.offset = at;
    return encoder;
  };
}

/** Puts the lean record encoder in kafkajs's place (see above); idempotent. Returns what it did. */
export function leanRecordEncoding(): RecordsState {
  if (state !== undefined) return state;
  if (process.env['APILOG_KAFKAJS_RECORDS'] === 'keep') return (state = 'kept: by APILOG_KAFKAJS_RECORDS');
  const swap = swapKafkajsModule<RecordEncoder>(RECORD_MODULE, PRODUCE_REQUEST_MODULE, ['writeVarIntBytes(key)', 'writeVarLong(timestampDelta)'], (kafkajs) => {
    original = kafkajs;
    return leanRecordEncoder(kafkajs, (require(ENCODER_MODULE) as { prototype: object }).prototype);
  });
  return (state = swap === 'swapped' ? 'lean' : swap === 'already loaded' ? 'kept: produce request already loaded' : 'kept: other kafkajs');
}
