/**
 * Values into RowBinary bytes for one column type (rowBinaryColumns.ts): integers, 64-bit integers from doubles,
 * LEB128 lengths, UUID text into 16 bytes, epoch milliseconds into DateTime/DateTime64 ticks, and any JavaScript value
 * (as avsc decodes it, or a column default) with the JSON row writer's checks. The transcoder (rowBinary.ts) calls
 * these from the code it generates.
 */
import { misfit, unwrap } from './rowWriter.ts';
import { C_BOOL, C_DATETIME, C_DATETIME64, C_ENUM, C_FIXED, C_FLOAT32, C_FLOAT64, C_INT, C_MAP, C_STRING, C_UUID, type ColumnType } from './rowBinaryColumns.ts';
import { writeLeb } from '../runtime/leb128.ts';

/** Where encoded rows go: a growable byte buffer written at `bytes` (PartitionBatch implements it). */
export interface ByteOut {
  buf: Buffer;
  bytes: number;
  /** Makes room for `extra` more bytes after `bytes` (may replace `buf`). */
  reserve(extra: number): void;
}

const TWO_32 = 4294967296;

export function writeInt64(buf: Buffer, p: number, v: number): number {
  const hi = Math.floor(v / TWO_32);
  const lo = v - hi * TWO_32;
  buf[p] = lo;
  buf[p + 1] = lo >>> 8;
  buf[p + 2] = lo >>> 16;
  buf[p + 3] = lo >>> 24;
  buf[p + 4] = hi;
  buf[p + 5] = hi >> 8;
  buf[p + 6] = hi >> 16;
  buf[p + 7] = hi >> 24;
  return p + 8;
}

function writeInt(buf: Buffer, p: number, v: number, width: number): number {
  if (width === 8) return writeInt64(buf, p, v);
  buf[p] = v;
  if (width === 1) return p + 1;
  buf[p + 1] = v >> 8;
  if (width === 2) return p + 2;
  buf[p + 2] = v >> 16;
  buf[p + 3] = v >> 24;
  return p + 4;
}

/** Copies bytes; short runs (most strings in an event) by a loop, which beats Buffer.copy's native call. */
export function copyBytes(src: Buffer, start: number, length: number, buf: Buffer, p: number): number {
  if (length > 64) return p + src.copy(buf, p, start, start + length);
  for (let i = 0; i < length; i++) buf[p + i] = src[start + i]!;
  return p + length;
}

const HEX = new Int8Array(256).fill(-1);
for (let i = 0; i < 10; i++) HEX[48 + i] = i;
for (let i = 0; i < 6; i++) HEX[65 + i] = HEX[97 + i] = 10 + i;
/** Positions of the 32 hex digits in the 36-character form. */
const UUID_DIGITS = [0, 2, 4, 6, 9, 11, 14, 16, 19, 21, 24, 26, 28, 30, 32, 34];

/**
 * UUID text (36 characters with dashes, or 32 hex digits) at src[start, start+length) into ClickHouse's RowBinary:
 * each 8-byte half reversed. Returns -1 when the text is not a UUID.
 */
function writeUuid(src: Buffer, start: number, length: number, buf: Buffer, p: number): number {
  const dashed = length === 36;
  if (!dashed && length !== 32) return -1;
  if (dashed && (src[start + 8] !== 45 || src[start + 13] !== 45 || src[start + 18] !== 45 || src[start + 23] !== 45)) return -1;
  for (let i = 0; i < 16; i++) {
    const at = start + (dashed ? UUID_DIGITS[i]! : i * 2);
    const hi = HEX[src[at]!]!;
    const lo = HEX[src[at + 1]!]!;
    if (hi < 0 || lo < 0) return -1;
    // byte i of the text goes to position 7 - i of its half
    buf[p + (i < 8 ? 7 - i : 23 - i)] = (hi << 4) | lo;
  }
  return p + 16;
}

/** Epoch milliseconds into the column's time type, checked like the JSON path. */
function writeTime(buf: Buffer, p: number, type: ColumnType, ms: number, column: string): number {
  if (!Number.isInteger(ms) || ms < 0) throw misfit(column, `is ${ms}, not epoch milliseconds`);
  if (type.kind === C_DATETIME) {
    const seconds = Math.floor(ms / 1000);
    if (seconds > 4294967295) throw misfit(column, `is ${ms}, beyond DateTime`);
    return writeInt(buf, p, seconds, 4);
  }
  const tick = type.tick;
  const ticks = tick >= 1 ? ms * tick : Math.floor(ms / -tick);
  if (ticks > Number.MAX_SAFE_INTEGER) throw misfit(column, `is ${ms}, beyond DateTime64`);
  return writeInt64(buf, p, ticks);
}

export function writeNumber(buf: Buffer, p: number, type: ColumnType, v: number, column: string): number {
  switch (type.kind) {
    case C_INT:
      if (!Number.isInteger(v) || v < type.min || v > type.max) throw misfit(column, `is ${v}, outside ${type.name}`);
      return writeInt(buf, p, v, type.width);
    case C_FLOAT32:
      if (!Number.isFinite(v)) throw misfit(column, `is ${v}, not a finite number`);
      buf.writeFloatLE(v, p);
      return p + 4;
    case C_FLOAT64:
      if (!Number.isFinite(v)) throw misfit(column, `is ${v}, not a finite number`);
      buf.writeDoubleLE(v, p);
      return p + 8;
    default:
      return writeTime(buf, p, type, v, column);
  }
}

/** Writes a string's UTF-8 bytes with their LEB128 length (reserving room). */
function writeText(out: ByteOut, text: string): void {
  const length = Buffer.byteLength(text, 'utf8');
  out.reserve(length + 10);
  const p = writeLeb(out.buf, out.bytes, length);
  out.bytes = p + out.buf.write(text, p, 'utf8');
}

/**
 * Any JavaScript value (as avsc decodes it, or a column default) into a column, with the JSON row writer's checks.
 * `undefined` is not a value (the caller writes the column's default instead).
 */
export function writeValue(out: ByteOut, type: ColumnType, value: unknown, column: string): void {
  out.reserve(type.fixedBytes + 1);
  if (value === null) {
    if (!type.nullable) throw misfit(column, 'is null but the column is not Nullable');
    out.buf[out.bytes++] = 1;
    return;
  }
  if (type.nullable) out.buf[out.bytes++] = 0;
  const mark = out.bytes;
  try {
    writeNonNull(out, type, value, column);
  } catch (error) {
    out.bytes = mark - (type.nullable ? 1 : 0);
    throw error;
  }
}

function writeNonNull(out: ByteOut, type: ColumnType, value: unknown, column: string): void {
  switch (type.kind) {
    case C_INT: case C_FLOAT32: case C_FLOAT64: case C_DATETIME: case C_DATETIME64:
      if (typeof value !== 'number') throw misfit(column, `is ${typeof value}, not a number`);
      out.bytes = writeNumber(out.buf, out.bytes, type, value, column);
      return;
    case C_BOOL:
      if (typeof value !== 'boolean') throw misfit(column, 'is not a boolean');
      out.buf[out.bytes++] = value ? 1 : 0;
      return;
    case C_STRING:
      // Maps, records and numbers into a String column are stored as JSON text, as the JSON path does.
      writeText(out, typeof value === 'string' ? value : JSON.stringify(value));
      return;
    case C_MAP: {
      if (typeof value !== 'object' || Array.isArray(value)) throw misfit(column, 'is not a map');
      const entries = Object.entries(value as Record<string, unknown>);
      out.reserve(10);
      out.bytes = writeLeb(out.buf, out.bytes, entries.length);
      for (const [k, v] of entries) {
        if (typeof v !== 'string') throw misfit(column, `has a ${typeof v} value, not a string`);
        writeText(out, k);
        writeText(out, v);
      }
      return;
    }
    default: {
      if (typeof value !== 'string') throw misfit(column, `is ${typeof value}, not a string`);
      const bytes = Buffer.from(value, 'utf8');
      writeStringAs(out, type, bytes, 0, bytes.length, column);
    }
  }
}

/** String bytes into a UUID, FixedString or Enum column (String columns copy them directly). */
export function writeStringAs(out: ByteOut, type: ColumnType, src: Buffer, start: number, length: number, column: string): void {
  const buf = out.buf;
  if (type.kind === C_UUID) {
    const p = writeUuid(src, start, length, buf, out.bytes);
    if (p < 0) throw misfit(column, `is "${src.toString('utf8', start, start + Math.min(length, 64))}", not a UUID`);
    out.bytes = p;
  } else if (type.kind === C_FIXED) {
    if (length > type.width) throw misfit(column, `is ${length} bytes, longer than FixedString(${type.width})`);
    const p = copyBytes(src, start, length, buf, out.bytes);
    buf.fill(0, p, out.bytes + type.width);
    out.bytes += type.width;
  } else if (type.kind === C_ENUM) {
    const symbol = src.toString('utf8', start, start + length);
    const v = type.symbols!.get(symbol);
    if (v === undefined) throw misfit(column, `is "${symbol}", not a value of the enum`);
    out.bytes = writeInt(buf, out.bytes, v, type.width);
  } else {
    throw misfit(column, 'is a string');
  }
}

/** Column kinds written from a JavaScript number. */
export const isNumeric = (kind: number) => kind === C_INT || kind === C_FLOAT32 || kind === C_FLOAT64 || kind === C_DATETIME || kind === C_DATETIME64;
