/**
 * kafkajs 2.2.4 decodes each fetched record through `Long`, its BigInt wrapper: the varlong timestamp delta takes
 * three Longs and three BigInts per byte, and the record's timestamp and offset are each the batch's first value
 * parsed from its text again, added to and printed. That is dozens of short-lived heap objects per record, most of
 * what a consumer's garbage collector then clears.
 *
 * `leanFetchDecoding()` replaces kafkajs's Record v0 decoder, the module its fetch responses (v4 and later, the
 * record batches of every broker since Kafka 0.11) decode records with. The replacement returns the same object, with
 * the same fields in the same order, and reads it with plain numbers: the batch's first offset and timestamp parsed
 * once per batch, the deltas as numbers. It takes the common case: no headers, varints of at most four bytes,
 * timestamp deltas of at most seven, and sums within 2^53. Any other record goes, from its first byte, to kafkajs's own
 * decoder, as does one that would read past its end or has a negative length (kafkajs's own way of reading those, whatever
 * it is, is kept). A key or value running past the end leaves nothing to read its successor from, which falls back.
 *
 * kafkajs is one copy per process, so this applies to every kafkajs client of the process, like the lean record
 * encoder (kafkajsRecords.ts). kafkajs loads its record batch decoder with the first fetch response and takes the
 * record decoder from the module cache then. This has to run before that, which createKafka does. When it is already
 * loaded, nothing is replaced and the answer says so. It applies to kafkajs 2.2.4 only, checked by version and by
 * the decoder's source. APILOG_KAFKAJS_FETCH=keep leaves kafkajs alone.
 */
import { createRequire } from 'node:module';
import { swapKafkajsModule } from './kafkajsModules.ts';

const require = createRequire(import.meta.url);

const RECORD_DECODER_MODULE = 'kafkajs/src/protocol/recordBatch/record/v0/decoder.js';
const BATCH_DECODER_MODULE = 'kafkajs/src/protocol/recordBatch/v0/decoder.js';
/** kafkajs's TimestampTypes.LOG_APPEND_TIME: a batch whose records all take the broker's append time (maxTimestamp). */
const LOG_APPEND_TIME = 1;
const EMPTY: Buffer = Buffer.alloc(0);

/** kafkajs's Decoder, as far as a record is read from one. */
export interface DecoderLike {
  buffer: Buffer;
  offset: number;
}

/** What kafkajs's record batch decoder passes for each record (its batch header, as text where 64-bit). */
export interface BatchContext {
  firstOffset?: string;
  firstTimestamp?: string;
  magicByte?: number;
  isControlBatch?: boolean;
  timestampType?: number;
  maxTimestamp?: string;
}

/** A decoded record, as kafkajs's Record v0 decoder returns it (the fetch's messages). */
export interface DecodedRecord {
  magicByte: number | undefined;
  attributes: number;
  timestamp: string | undefined;
  offset: string;
  key: Buffer | null;
  value: Buffer | null;
  headers: Record<string, unknown>;
  isControlRecord: boolean;
  batchContext: BatchContext;
}

export type RecordDecoder = (decoder: DecoderLike, batchContext?: BatchContext) => DecodedRecord;

export type FetchState = 'lean' | 'kept: other kafkajs' | 'kept: fetch decoding already loaded' | 'kept: by APILOG_KAFKAJS_FETCH';
let state: FetchState | undefined;

/** Off only for a comparison in one process (bench:consumer's kafkajs baseline); the lean decoder defers to kafkajs's. */
let enabled = true;

/**
 * Turns the installed lean decoder off (kafkajs's own decodes every record) or on again. For benchmarks that compare
 * the two in one process; it changes nothing when leanFetchDecoding() did not install it.
 */
export function useLeanFetchDecoding(on: boolean): void {
  enabled = on;
}

/** kafkajs's own Record v0 decoder (the module's export as kafkajs ships it, before any replacement). */
let original: RecordDecoder | undefined;

export function kafkajsRecordDecoder(): RecordDecoder {
  if (original !== undefined) return original;
  return require(RECORD_DECODER_MODULE) as RecordDecoder;
}

/** A 64-bit integer's text as a number when it is one exactly (kafkajs prints these from BigInts); NaN otherwise. */
function exactNumber(text: string | undefined): number {
  if (text === undefined) return Number.NaN;
  const n = Number(text);
  return Number.isSafeInteger(n) ? n : Number.NaN;
}

/** Builds the lean decoder over kafkajs's own (used for every record outside the fast case). */
export function leanRecordDecoder(fallback: RecordDecoder): RecordDecoder {
  // The batch whose header was parsed last: every record of a batch shares one context object.
  let context: BatchContext | undefined;
  let firstOffset = Number.NaN;
  let firstTimestamp = Number.NaN;
  let fixedTimestamp: string | undefined;
  // The record being read, shared with the readers below (one record at a time: nothing here awaits or re-enters).
  let buf = EMPTY;
  let end = 0;
  let at = 0;

  /** A zigzag varint of at most 4 bytes; NaN when longer or cut off (kafkajs's reading of those is kept). */
  const varint = (): number => {
    let v = 0;
    let b = 0;
    for (let shift = 0; ; shift += 7) {
      if (at >= end || shift === 28) return Number.NaN;
      b = buf[at++]!;
      v |= (b & 0x7f) << shift;
      if (b < 0x80) return (v >>> 1) ^ -(v & 1);
    }
  };
  /** A zigzag varlong of at most 7 bytes (49 bits, exact in a double); NaN when longer or cut off. */
  const varlong = (): number => {
    let z = 0;
    let scale = 1;
    let b = 0;
    for (let bytes = 0; ; bytes++) {
      if (at >= end || bytes === 7) return Number.NaN;
      b = buf[at++]!;
      z += (b & 0x7f) * scale;
      if (b < 0x80) return z % 2 === 0 ? z / 2 : -(z + 1) / 2;
      scale *= 128;
    }
  };
  /** Length-prefixed bytes: null for -1, undefined when unreadable or a length below -1 (kafkajs would step back). */
  const bytes = (): Buffer | null | undefined => {
    const length = varint();
    if (!(length >= -1)) return undefined;
    if (length === -1) return null;
    const out = buf.subarray(at, at + length);
    at += length; // past the end when cut off: whatever comes next is unreadable, and the record falls back
    return out;
  };

  return function leanRecord(decoder: DecoderLike, batchContext: BatchContext = {}): DecodedRecord {
    if (!enabled) return fallback(decoder, batchContext);
    if (batchContext !== context) {
      context = batchContext;
      firstOffset = exactNumber(batchContext.firstOffset);
      firstTimestamp = exactNumber(batchContext.firstTimestamp);
      fixedTimestamp = batchContext.timestampType === LOG_APPEND_TIME && batchContext.maxTimestamp ? batchContext.maxTimestamp : undefined;
    }
    buf = decoder.buffer;
    end = buf.length;
    const start = decoder.offset;
    at = start;
    const record = read(batchContext);
    buf = EMPTY; // the fetch's buffer is not kept past its records
    if (record !== undefined) {
      decoder.offset = at;
      return record;
    }
    return fallback(decoder, batchContext); // from the record's first byte: the decoder's offset was not moved
  };

  function read(batchContext: BatchContext): DecodedRecord | undefined {
    if (at >= end) return undefined;
    const attributes = (buf[at++]! << 24) >> 24;
    const timestampDelta = varlong();
    const offsetDelta = varint();
    const key = bytes();
    if (key === undefined) return undefined;
    const value = bytes();
    if (value === undefined) return undefined;
    // Headers: none (count 0, one byte; or -1, which kafkajs reads as none too). Any header: kafkajs's decoder.
    if (at >= end || buf[at]! > 1) return undefined;
    at++;
    const offset = firstOffset + offsetDelta; // NaN (an unreadable delta, a first offset beyond 2^53) fails the check
    if (!Number.isSafeInteger(offset)) return undefined;
    let timestamp = fixedTimestamp;
    if (timestamp === undefined) {
      const t = firstTimestamp + timestampDelta;
      if (!Number.isSafeInteger(t)) return undefined;
      timestamp = String(t);
    } else if (Number.isNaN(timestampDelta)) {
      return undefined;
    }
    return {
      magicByte: batchContext.magicByte,
      attributes,
      timestamp,
      offset: String(offset),
      key,
      value,
      headers: {},
      isControlRecord: batchContext.isControlBatch === undefined ? false : batchContext.isControlBatch,
      batchContext,
    };
  }
}

/** Puts the lean record decoder in kafkajs's place (see above); idempotent. Returns what it did. */
export function leanFetchDecoding(): FetchState {
  if (state !== undefined) return state;
  if (process.env['APILOG_KAFKAJS_FETCH'] === 'keep') return (state = 'kept: by APILOG_KAFKAJS_FETCH');
  const swap = swapKafkajsModule<RecordDecoder>(RECORD_DECODER_MODULE, BATCH_DECODER_MODULE, ['decoder.readVarLong()', 'readVarIntArray(HeaderDecoder)'], (kafkajs) => {
    original = kafkajs;
    return leanRecordDecoder(kafkajs);
  });
  return (state = swap === 'swapped' ? 'lean' : swap === 'already loaded' ? 'kept: fetch decoding already loaded' : 'kept: other kafkajs');
}
