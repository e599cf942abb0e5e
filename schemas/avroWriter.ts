/**
 * A writer for flat Avro records, built from an avsc record type: the same bytes as avsc's `type.encode`, for the
 * values it takes, at 0.55-0.8 of avsc's cost per API-call event here (`npx tsx bench/eventEncoding.ts`: 1.7-2.3
 * against 2.3-3.7 µs for a version-2 event of 340 bytes).
 *
 * avsc writes each string by asking Node for its UTF-8 length first (a native call per string, 17 per event), then
 * copying it a character at a time or through a second native call. Nearly every string of an API-call event is
 * ASCII and short. This writer copies a string of fewer than 64 characters while checking each is ASCII, and sets
 * the one length byte after it; a longer one is measured and copied natively, as avsc does.
 *
 * It takes records whose fields are strings, ints, longs, a union of null and one of those, or a map of strings:
 * the API-call schemas, every version. It writes only what it is sure of. A non-ASCII string, a value of the wrong
 * type, a long beyond avsc's range, or a record type it does not take is left to avsc (the writer answers
 * NOT_WRITTEN, `recordWriter` undefined), which writes it or throws its own error: this writer never decides what is
 * valid.
 */
import type { Type } from 'avsc';
import { writeLeb } from '../runtime/leb128.ts';

/** Returned when the value is left to avsc. */
export const NOT_WRITTEN = -1;
/** Returned when the buffer is too small (grow it and call again). */
export const NO_ROOM = -2;

/** Writes `value` at `pos` in `buf`; the position after it, NOT_WRITTEN or NO_ROOM. */
export type RecordWriter = (value: object, buf: Buffer, pos: number) => number;

/** avsc's bounds for a long (isSafeLong in its types.js), a little inside Number.MAX_SAFE_INTEGER. */
const LONG_MAX = 9007199254740990;

/** A zigzag varint (Avro's int and long), for an integer within avsc's bounds; the position after it. */
function writeLong(buf: Buffer, pos: number, n: number): number {
  // Zigzag with arithmetic, not bit operations: a long's doubled value goes past 32 bits (exact: even, below 2^55).
  return writeLeb(buf, pos, n >= 0 ? n * 2 : -n * 2 - 1);
}

/** An ASCII string with its length, as Avro writes a string; NOT_WRITTEN for any other string. */
function writeString(buf: Buffer, pos: number, s: string): number {
  const n = s.length;
  if (n < 64) {
    if (pos + 1 + n > buf.length) return NO_ROOM;
    let p = pos + 1;
    for (let i = 0; i < n; i++) {
      const c = s.charCodeAt(i);
      if (c > 0x7f) return NOT_WRITTEN;
      buf[p++] = c;
    }
    buf[pos] = n << 1;
    return p;
  }
  const bytes = Buffer.byteLength(s, 'utf8');
  if (bytes !== n) return NOT_WRITTEN; // a character beyond ASCII takes more than one byte
  if (pos + 10 + n > buf.length) return NO_ROOM;
  pos = writeLong(buf, pos, n);
  return pos + (buf as Latin1Writable).latin1Write(s, pos, n);
}

/** Node's Buffer method behind `buf.write(s, at, n, 'latin1')`, without the argument sorting (avsc calls its utf8Write likewise). */
type Latin1Writable = Buffer & { latin1Write(s: string, at: number, length: number): number };

/** Room for a varint or a union index plus one. */
const VARINT_ROOM = 11;

const helpers = {
  /** A string field. */
  str(buf: Buffer, pos: number, v: unknown): number {
    return typeof v === 'string' ? writeString(buf, pos, v) : NOT_WRITTEN;
  },
  int(buf: Buffer, pos: number, v: unknown): number {
    if (v !== ((v as number) | 0)) return NOT_WRITTEN;
    return pos + VARINT_ROOM > buf.length ? NO_ROOM : writeLong(buf, pos, v as number);
  },
  long(buf: Buffer, pos: number, v: unknown): number {
    if (typeof v !== 'number' || v % 1 !== 0 || !(v >= -LONG_MAX && v <= LONG_MAX)) return NOT_WRITTEN;
    return pos + VARINT_ROOM > buf.length ? NO_ROOM : writeLong(buf, pos, v);
  },
  /** The union's branch index (zigzag: one byte for the indexes a two-branch union has). */
  branch(buf: Buffer, pos: number, index: number): number {
    if (pos + VARINT_ROOM > buf.length) return NO_ROOM;
    buf[pos] = index << 1;
    return pos + 1;
  },
  /** A map of strings: Avro's block of entries (when there are any), then an empty block. */
  map(buf: Buffer, pos: number, v: unknown): number {
    if (!v || typeof v !== 'object' || Array.isArray(v)) return NOT_WRITTEN;
    const keys = Object.keys(v);
    if (pos + 2 * VARINT_ROOM > buf.length) return NO_ROOM;
    if (keys.length > 0) {
      pos = writeLong(buf, pos, keys.length);
      for (let i = 0; i < keys.length; i++) {
        const key = keys[i]!;
        const value = (v as Record<string, unknown>)[key];
        if (typeof value !== 'string') return NOT_WRITTEN;
        pos = writeString(buf, pos, key);
        if (pos < 0) return pos;
        pos = writeString(buf, pos, value);
        if (pos < 0) return pos;
      }
      if (pos + 1 > buf.length) return NO_ROOM;
    }
    buf[pos] = 0;
    return pos + 1;
  },
  /** A field's default, avsc's encoding of it. */
  bytes(buf: Buffer, pos: number, bytes: Buffer): number {
    if (pos + bytes.length > buf.length) return NO_ROOM;
    return pos + bytes.copy(buf, pos);
  },
};

type Scalar = 'str' | 'int' | 'long';
const SCALARS: Readonly<Record<string, Scalar>> = { string: 'str', int: 'int', long: 'long' };

interface AvscType {
  readonly typeName: string;
  readonly types?: readonly AvscType[];
  readonly valuesType?: AvscType;
  readonly fields?: readonly { readonly name: string; readonly type: AvscType; defaultValue(): unknown }[];
  toBuffer(value: unknown): Buffer;
}

/** The statement that writes one field's value `x` (undefined already handled), or undefined for a type not taken. */
function fieldCode(type: AvscType): string | undefined {
  const scalar = SCALARS[type.typeName];
  if (scalar !== undefined) return `pos = h.${scalar}(buf, pos, x);`;
  if (type.typeName === 'map' && type.valuesType?.typeName === 'string') return 'pos = h.map(buf, pos, x);';
  if (type.typeName === 'union:unwrapped' && type.types?.length === 2) {
    const nullIndex = type.types.findIndex((t) => t.typeName === 'null');
    const other = SCALARS[type.types[1 - nullIndex]?.typeName ?? ''];
    if (nullIndex < 0 || other === undefined) return undefined;
    return `if (x === null) pos = h.branch(buf, pos, ${nullIndex}); else { pos = h.branch(buf, pos, ${1 - nullIndex}); if (pos >= 0) pos = h.${other}(buf, pos, x); }`;
  }
  return undefined;
}

/** A writer for values of `type`, or undefined when it is not a record of the field types taken (avsc writes those). */
export function recordWriter(type: Type): RecordWriter | undefined {
  const record = type as unknown as AvscType;
  if (record.typeName !== 'record' || record.fields === undefined) return undefined;
  const defaults: Buffer[] = [];
  let body = '';
  for (const field of record.fields) {
    // Avro names are identifiers ([A-Za-z_][A-Za-z0-9_]*; avsc checks): safe to write as properties.
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(field.name)) return undefined;
    const code = fieldCode(field.type);
    if (code === undefined) return undefined;
    const fallback = field.defaultValue();
    const whenUndefined = fallback === undefined ? `return ${NOT_WRITTEN};` : `pos = h.bytes(buf, pos, d[${defaults.push(field.type.toBuffer(fallback)) - 1}]);`;
    body += `  x = v.${field.name};\n  if (x === undefined) { ${whenUndefined} } else { ${code} }\n  if (pos < 0) return pos;\n`;
  }
  // Generated, as avsc generates its own record writers: named property reads stay monomorphic.
  // eslint-disable-next-line @typescript-eslint/no-implied-eval
  const make = new Function('h', 'd', `return function writeRecord(v, buf, pos) {\n  let x;\n${body}  return pos;\n};`) as (h: typeof helpers, d: Buffer[]) => RecordWriter;
  return make(helpers, defaults);
}
