/**
 * Confluent-framed Avro → ClickHouse RowBinary, from bytes to bytes: no JavaScript object, string or number box per
 * event. One transcoder per (writer schema, table columns), compiled once. This file plans and generates it; the
 * column types it plans for are parsed in rowBinaryColumns.ts, and single values are written by rowBinaryValues.ts.
 *
 * The transcoder is code generated for its plan (`generate`), as avsc generates its decoders. Pass 1 walks the Avro
 * record in the writer's field order and notes in locals where each field is (strings: start and length) or what it
 * is (numbers, union branches, enum indexes). Pass 2 writes the insert's columns in table order from those locals: numbers as fixed-width little-endian, strings copied with a LEB128 length
 * (a run of string columns filled by consecutive fields, all shorter than 64 bytes, is copied at once and its length
 * and null-flag bytes set: there the Avro bytes and RowBinary's differ in those bytes only),
 * UUID text parsed into ClickHouse's 16 bytes, epoch milliseconds into DateTime/DateTime64 ticks, Avro maps into Map
 * pairs, the row's `_topic`, `_partition`, `_offset`, and for columns the writer schema lacks, their default.
 *
 * The checks are the JSON row writer's (rowWriter.ts), so a record goes to the dead-letter topic for the same reasons
 * either way: integers out of the column's range, non-finite floats, negative timestamps, null into a non-Nullable
 * column ('does-not-fit-table'); truncated or trailing bytes, a bad union index or a long beyond 2^53 ('corrupt-avro').
 * Field kinds or column types outside the fast cases go through `writeValue` from the value avsc decodes; a column
 * type RowBinary cannot be written for here (Array, Decimal, Tuple, …) makes `compileRowBinary` answer why not, and
 * the consumer uses the JSON row writer for that table.
 *
 * Two intended differences from the JSON path: string bytes are stored as the producer sent them (the JSON path
 * decodes them to JavaScript strings first, so invalid UTF-8 becomes U+FFFD), and a map keeps the producer's key
 * order (a JavaScript object puts integer-like keys first).
 */
import type { Type } from 'avsc';
import { DecodeError } from '../runtime/errors.ts';
import { HEADER_SIZE } from '../schemas/wire.ts';
import { misfit } from './rowWriter.ts';
import type { RowLayout, TableColumn } from '../clickhouse/sink.ts';
import { C_ENUM, C_FIXED, C_INT, C_MAP, C_STRING, C_UUID, columnType, literalDefault, type ColumnType } from './rowBinaryColumns.ts';
import { copyBytes, isNumeric, writeInt64, writeNumber, writeStringAs, writeValue, type ByteOut } from './rowBinaryValues.ts';
import { writeLeb } from '../runtime/leb128.ts';

export type { ByteOut } from './rowBinaryValues.ts';

/** Writes one row for one Kafka message; throws DecodeError for a record that cannot become a row (nothing kept). */
export interface RowEncoder {
  readonly layout: RowLayout;
  encode(value: Buffer, out: ByteOut, topic: string, partition: number, offset: number, offsetText: string): void;
}

// ---- the transcoder -----------------------------------------------------------------------------------------------

// Field kinds (pass 1).
const F_LONG = 0, F_FLOAT = 1, F_DOUBLE = 2, F_BOOL = 3, F_STRING = 4, F_ENUM = 5, F_MAP = 6, F_OTHER = 7;
// Column routes (pass 2): where a column's bytes come from and how they are written, decided once per column.
const R_DEFAULT = 0, R_TOPIC = 1, R_PARTITION = 2, R_OFFSET = 3, R_STRING = 4, R_STRING_AS = 5, R_NUMBER = 6,
  R_ENUM_STRING = 7, R_MAP = 8, R_MAP_JSON = 9, R_VALUE = 10;

interface AvscType {
  readonly typeName: string;
  readonly fields?: readonly { readonly name: string; readonly type: AvscType }[];
  readonly types?: readonly AvscType[];
  readonly symbols?: readonly string[];
  readonly valuesType?: AvscType;
  decode(buf: Buffer, pos?: number): { value: unknown; offset: number };
}

function fieldKind(type: AvscType): number {
  switch (type.typeName) {
    case 'int': case 'long': return F_LONG;
    case 'float': return F_FLOAT;
    case 'double': return F_DOUBLE;
    case 'boolean': return F_BOOL;
    case 'string': return F_STRING;
    case 'enum': return F_ENUM;
    case 'map': return type.valuesType?.typeName === 'string' ? F_MAP : F_OTHER;
    default: return F_OTHER;
  }
}

export type RowBinaryPlan = { readonly encoder: RowEncoder } | { readonly unsupported: string };

export interface RowBinaryOptions {
  /** The layout object for a column list: equal lists must share one object (batches compare layouts by identity). */
  readonly layoutFor?: (columns: readonly string[], types: readonly string[]) => RowLayout;
}

/**
 * Compiles the transcoder from a writer schema to the table's columns. The insert's columns are the table's insertable
 * ones in table order, except columns the writer schema does not fill whose default is an expression (left to
 * ClickHouse). So writer schemas that differ only in fields with literal defaults share one layout, and their rows
 * one batch.
 */
export function compileRowBinary(writerType: Type, columns: readonly TableColumn[], options: RowBinaryOptions = {}): RowBinaryPlan {
  const writer = writerType as unknown as AvscType;
  if (writer.typeName !== 'record' || writer.fields === undefined) return { unsupported: 'the writer schema is not a record' };
  const fields = writer.fields;
  const fieldIndex = new Map(fields.map((f, i) => [f.name, i]));

  // Pass 1 plan: per field, its kind, and for ["null", T] unions the branch indexes.
  const n = fields.length;
  const kinds = new Int8Array(n);
  const nullBranch = new Int8Array(n).fill(-1);
  const valueBranch = new Int8Array(n).fill(-1);
  const valueTypes: AvscType[] = [];
  for (let i = 0; i < n; i++) {
    let type = fields[i]!.type;
    if (type.typeName.startsWith('union')) {
      const branches = type.types ?? [];
      const nullAt = branches.findIndex((b) => b.typeName === 'null');
      if (branches.length === 2 && nullAt >= 0) {
        nullBranch[i] = nullAt;
        valueBranch[i] = 1 - nullAt;
        type = branches[1 - nullAt]!;
      }
    }
    valueTypes.push(type);
    kinds[i] = nullBranch[i]! < 0 && type.typeName.startsWith('union') ? F_OTHER : fieldKind(type);
  }

  // Pass 2 plan: the insert's columns, each with its route.
  const plan: ColumnPlan[] = [];
  let fixedMax = 0;
  const scratch = growable(256);
  for (const column of columns) {
    if (column.defaultKind === 'MATERIALIZED' || column.defaultKind === 'ALIAS' || column.defaultKind === 'EPHEMERAL') continue;
    const type = columnType(column.type);
    const at = fieldIndex.get(column.name);
    const coordinate = column.name === '_topic' ? R_TOPIC : column.name === '_partition' ? R_PARTITION : column.name === '_offset' ? R_OFFSET : -1;
    if (typeof type === 'string') {
      if (coordinate < 0 && at === undefined && column.defaultExpression) continue; // ClickHouse computes it
      return { unsupported: `column ${column.name} ${type}` };
    }
    if (coordinate === R_TOPIC && type.kind !== C_STRING) return { unsupported: `column _topic is ${column.type}, not a string` };
    if ((coordinate === R_PARTITION || coordinate === R_OFFSET) && type.kind !== C_INT) return { unsupported: `column ${column.name} is ${column.type}, not an integer` };
    let route = coordinate;
    let fallback: Buffer | undefined;
    if (route < 0 && at === undefined) {
      const literal = literalDefault(column, type);
      if (literal === undefined) continue; // an expression: ClickHouse computes it
      scratch.bytes = 0;
      try {
        writeValue(scratch, type, literal.value, column.name);
      } catch {
        continue; // a literal this writer cannot encode (a date as text, say): ClickHouse computes it
      }
      fallback = Buffer.from(scratch.buf.subarray(0, scratch.bytes));
      route = R_DEFAULT;
      fixedMax += fallback.length;
    } else if (route < 0) {
      route = fieldRoute(kinds[at!]!, type.kind);
      fixedMax += type.fixedBytes + 1;
      if (route === R_ENUM_STRING) fixedMax += Math.max(0, ...(valueTypes[at!]!.symbols ?? []).map((s) => Buffer.byteLength(s) + 5));
    } else {
      fixedMax += type.fixedBytes + 1;
    }
    plan.push({ name: column.name, typeText: column.type, route, field: at ?? -1, type, fallback });
  }
  const names = plan.map((c) => c.name);
  const typeTexts = plan.map((c) => c.typeText);
  const layout = options.layoutFor?.(names, typeTexts) ?? Object.freeze({ format: 'RowBinary' as const, columns: Object.freeze(names), types: Object.freeze(typeTexts) });
  return { encoder: new RowBinaryTranscoder(layout, fields.map((f) => f.name), kinds, nullBranch, valueBranch, valueTypes, plan, fixedMax) };
}

interface ColumnPlan {
  readonly name: string;
  /** The column's type as DESCRIBE prints it. */
  readonly typeText: string;
  readonly route: number;
  /** The writer field filling the column, -1 for coordinates and defaults. */
  readonly field: number;
  readonly type: ColumnType;
  /** R_DEFAULT: the default's bytes. */
  readonly fallback: Buffer | undefined;
}

/** How a field of `kind` gets into a column of `columnKind`: a fast route from the Avro bytes, or R_VALUE. */
function fieldRoute(kind: number, columnKind: number): number {
  if (kind === F_STRING) return columnKind === C_STRING ? R_STRING : columnKind === C_UUID || columnKind === C_FIXED || columnKind === C_ENUM ? R_STRING_AS : R_VALUE;
  if (kind === F_LONG || kind === F_DOUBLE || kind === F_FLOAT) return isNumeric(columnKind) ? R_NUMBER : R_VALUE;
  if (kind === F_ENUM && columnKind === C_STRING) return R_ENUM_STRING;
  if (kind === F_MAP) return columnKind === C_MAP ? R_MAP : columnKind === C_STRING ? R_MAP_JSON : R_VALUE;
  return R_VALUE;
}

function growable(size: number): ByteOut {
  const out: ByteOut = {
    buf: Buffer.allocUnsafe(size),
    bytes: 0,
    reserve(extra) {
      if (out.bytes + extra <= out.buf.length) return;
      const next = Buffer.allocUnsafe(Math.max(out.buf.length * 2, out.bytes + extra));
      out.buf.copy(next, 0, 0, out.bytes);
      out.buf = next;
    },
  };
  return out;
}

/** Where pass 1 reads: a cursor shared by the helpers below (one transcode runs at a time: it is synchronous). */
let cursor = 0;

const corrupt = (detail: string) => new DecodeError('corrupt-avro', detail);

/** Avro zigzag varint, as avsc reads it (exact up to 2^53; beyond that avsc refuses: 'potential precision loss'). */
function readLong(src: Buffer): number {
  const end = src.length;
  let n = 0;
  let k = 0;
  let b: number;
  do {
    if (cursor >= end) throw corrupt('Avro body is truncated');
    b = src[cursor++]!;
    n |= (b & 0x7f) << k;
    k += 7;
  } while (b >= 0x80 && k < 28);
  if (b < 0x80) return (n >>> 1) ^ -(n & 1);
  let f = n >>> 0;
  let fk = 268435456;
  do {
    if (cursor >= end) throw corrupt('Avro body is truncated');
    b = src[cursor++]!;
    f += (b & 0x7f) * fk;
    fk *= 128;
  } while (b >= 0x80);
  const v = (f % 2 ? -(f + 1) : f) / 2;
  if (!(Math.abs(v) <= 9007199254740990)) throw corrupt('Avro long beyond 2^53: potential precision loss');
  return v;
}

/**
 * The helpers generated code calls (and the per-transcoder data it reads by index: names, types, symbols). `at` is
 * where the last `long` or `scanMap` left the read position.
 */
class Helpers {
  at = 0;
  /** The row's `_topic` as RowBinary writes it (LEB128 length, bytes), and a DataView over it. */
  topicBytes: Buffer = Buffer.alloc(1);
  topicView = new DataView(this.topicBytes.buffer, this.topicBytes.byteOffset, 1);
  private viewed: ArrayBufferLike | undefined;
  private lastView: DataView | undefined;
  private outViewed: ArrayBufferLike | undefined;
  private lastOutView: DataView | undefined;

  constructor(
    readonly fieldNames: readonly string[],
    readonly valueTypes: readonly AvscType[],
    readonly symbols: readonly (readonly Buffer[])[],
    readonly names: readonly string[],
    readonly types: readonly ColumnType[],
    readonly fallbacks: readonly (Buffer | undefined)[],
  ) {}

  /**
   * A DataView over a source's whole memory, kept while messages come from one fetch response (kafkajs hands out
   * views of it): string bytes are copied four at a time through it.
   */
  view(src: Buffer): DataView {
    if (src.buffer !== this.viewed) {
      this.viewed = src.buffer;
      this.lastView = new DataView(src.buffer);
    }
    return this.lastView!;
  }
  /** The same for the output buffer (replaced when it grows). */
  outView(buf: Buffer): DataView {
    if (buf.buffer !== this.outViewed) {
      this.outViewed = buf.buffer;
      this.lastOutView = new DataView(buf.buffer);
    }
    return this.lastOutView!;
  }
  long(src: Buffer, pos: number): number {
    cursor = pos;
    const v = readLong(src);
    this.at = cursor;
    return v;
  }
  scanMap(src: Buffer, pos: number, field: number): number {
    mapBegin(pos);
    let strings = 0;
    for (let len = mapNext(src); len !== MAP_END; len = mapNext(src)) {
      if (len < 0 || cursor > src.length) throw corrupt(`bad string in map field ${this.fieldNames[field]}`);
      strings++;
    }
    this.at = cursor;
    return strings >> 1;
  }
  decodeOther(field: number, src: Buffer, pos: number): unknown {
    let decoded: { value: unknown; offset: number };
    try {
      decoded = this.valueTypes[field]!.decode(src, pos);
    } catch (error) {
      throw new DecodeError('corrupt-avro', `field ${this.fieldNames[field]} does not decode: ${(error as Error).message}`, error);
    }
    if (decoded.offset < 0) throw corrupt('Avro body is truncated');
    this.at = decoded.offset;
    return decoded.value;
  }
  decodeAt(field: number, src: Buffer, pos: number): unknown {
    return this.valueTypes[field]!.decode(src, pos).value;
  }
  symbolText(field: number, index: number): string {
    return this.valueTypes[field]!.symbols![index]!;
  }
  truncated(): DecodeError {
    return corrupt('Avro body is truncated');
  }
  trailing(bytes: number): DecodeError {
    return corrupt(`Avro body has ${bytes} trailing bytes`);
  }
  badUnion(field: number, branch: number): DecodeError {
    return corrupt(`invalid union index ${branch} in field ${this.fieldNames[field]}`);
  }
  negative(field: number): DecodeError {
    return corrupt(`negative string length in field ${this.fieldNames[field]}`);
  }
  enumRange(field: number, index: number): DecodeError {
    return corrupt(`enum index ${index} out of range in field ${this.fieldNames[field]}`);
  }
  nullInto(column: number): DecodeError {
    return misfit(this.names[column]!, 'is null but the column is not Nullable');
  }
  outside(column: number, v: number): DecodeError {
    return misfit(this.names[column]!, `is ${v}, outside ${this.types[column]!.name}`);
  }
  number(buf: Buffer, p: number, column: number, v: number): number {
    return writeNumber(buf, p, this.types[column]!, v, this.names[column]!);
  }
  stringAs(out: ByteOut, column: number, src: Buffer, start: number, length: number): void {
    writeStringAs(out, this.types[column]!, src, start, length, this.names[column]!);
  }
  value(out: ByteOut, column: number, value: unknown): void {
    writeValue(out, this.types[column]!, value, this.names[column]!);
  }
  readonly leb = writeLeb;
  readonly int64 = writeInt64;
  readonly mapPairs = writeMapPairs;
  readonly mapJson = writeMapJson;
}

type EncodeRow = (src: Buffer, out: ByteOut, partition: number, offset: number, h: Helpers) => void;

/**
 * Generates the transcoder's code for one plan, as avsc does for its decoders: pass 1 reads each field into locals
 * (no arrays), pass 2 writes each column with its route inlined. Only numbers and fixed snippets go into the code;
 * names and types stay in `Helpers`, read by index.
 */
function generate(kinds: Int8Array, nullBranch: Int8Array, valueBranch: Int8Array, symbolCounts: readonly number[], plan: readonly ColumnPlan[], fixedMax: number): EncodeRow {
  const code: string[] = [];
  const emit = (line: string) => code.push(line);
  // Avro's zigzag varints: up to three bytes (21 bits: lengths, statuses, latencies, sizes) decoded here, longer ones
  // (timestamps) by h.long. A byte past the end reads as undefined, which is not < 128: h.long reports the truncation.
  const varint = (target: string) =>
    `b = src[pos]; if (b < 128) { ${target} = (b >>> 1) ^ -(b & 1); pos++; } ` +
    `else if (src[pos + 1] < 128) { x = (b & 127) | (src[pos + 1] << 7); ${target} = (x >>> 1) ^ -(x & 1); pos += 2; } ` +
    `else if (src[pos + 2] < 128) { x = (b & 127) | ((src[pos + 1] & 127) << 7) | (src[pos + 2] << 14); ${target} = (x >>> 1) ^ -(x & 1); pos += 3; } ` +
    `else { ${target} = h.long(src, pos); pos = h.at; }`;
  const runs = stringRuns(plan, nullBranch);
  // Where pass 1 notes a field's start: each field of a run and the field after it (`end` after the last).
  const starts = new Set(runs.flatMap((r) => [...Array(r.columns.length + 1).keys()].map((i) => r.firstField + i)));
  const fieldStart = (i: number) => (i === kinds.length ? 'end' : `f${i}`);
  emit(`const end = src.length; let pos = ${HEADER_SIZE}; let b = 0; let u = 0; let x = 0;`);
  for (let i = 0; i < kinds.length; i++) emit(`let n${i} = 0, s${i} = 0, l${i} = 0, z${i} = 0, o${i};${starts.has(i) ? ` let f${i} = 0;` : ''}`);
  // Pass 1.
  for (let i = 0; i < kinds.length; i++) {
    const read: string[] = [];
    if (starts.has(i)) emit(`f${i} = pos;`);
    switch (kinds[i]) {
      case F_LONG: read.push(varint(`n${i}`)); break;
      case F_STRING: read.push(varint(`l${i}`), `if (l${i} < 0) throw h.negative(${i}); s${i} = pos; pos += l${i};`); break;
      case F_DOUBLE: read.push(`if (pos + 8 > end) throw h.truncated(); n${i} = src.readDoubleLE(pos); pos += 8;`); break;
      case F_FLOAT: read.push(`if (pos + 4 > end) throw h.truncated(); n${i} = src.readFloatLE(pos); pos += 4;`); break;
      case F_BOOL: read.push(`if (pos >= end) throw h.truncated(); n${i} = src[pos++] ? 1 : 0;`); break;
      case F_ENUM: read.push(varint(`n${i}`), `if (n${i} < 0 || n${i} >= ${symbolCounts[i]}) throw h.enumRange(${i}, n${i});`); break;
      case F_MAP: read.push(`s${i} = pos; n${i} = h.scanMap(src, pos, ${i}); pos = h.at;`); break;
      default: read.push(`o${i} = h.decodeOther(${i}, src, pos); pos = h.at;`);
    }
    read.push('if (pos > end) throw h.truncated();');
    if (nullBranch[i]! >= 0) {
      emit(`${varint('u')} if (u === ${nullBranch[i]}) z${i} = 1; else if (u !== ${valueBranch[i]}) throw h.badUnion(${i}, u); else { z${i} = 0; ${read.join(' ')} }`);
    } else {
      emit(read.join(' '));
    }
  }
  emit('if (pos !== end) throw h.trailing(end - pos);');
  // Pass 2.
  emit(`out.reserve(end + ${fixedMax} + h.topicBytes.length); let buf = out.buf; let p = out.bytes;`);
  // Strings from the source: four bytes at a time through DataViews (a byte loop costs ~3 ns a byte here, Buffer.copy
  // ~80 ns a call); constants (topic, defaults, enum symbols) by a byte loop.
  emit('const sv = h.view(src); const so = src.byteOffset; let ov = h.outView(buf); let oo = buf.byteOffset;');
  const refresh = 'buf = out.buf; p = out.bytes; ov = h.outView(buf); oo = buf.byteOffset;';
  // Four bytes at a time from `bytes` (viewed by `view`, whose offset 0 is `bytes`' byte `base` - `bytes.byteOffset`).
  const copyFour = (bytes: string, view: string, base: string, from: string, length: string) =>
    `{ let k = 0; for (const a = ${base} + ${from}, d = oo + p; k + 4 <= ${length}; k += 4) ov.setUint32(d + k, ${view}.getUint32(a + k)); for (; k < ${length}; k++) buf[p + k] = ${bytes}[${from} + k]; p += ${length}; }`;
  const copySource = (from: string, length: string) =>
    `if (${length} > 128) p += src.copy(buf, p, ${from}, ${from} + ${length}); else ${copyFour('src', 'sv', 'so', from, length)}`;
  const copy = (bytes: string, from: string, length: string) =>
    `if (${length} > 64) p += ${bytes}.copy(buf, p, ${from}, ${from} + ${length}); else { for (let k = 0; k < ${length}; k++) buf[p + k] = ${bytes}[${from} + k]; p += ${length}; }`;
  const lebLength = (length: string) => `if (${length} < 128) buf[p++] = ${length}; else p = h.leb(buf, p, ${length});`;
  // An integer into a C_INT column: range-checked, then fixed-width little-endian (64 bits as two 32-bit halves).
  const writeInt = (c: number, type: ColumnType, value: string) => {
    const bytes = type.width === 8
      ? 'const hi = Math.floor(v / 4294967296), lo = v - hi * 4294967296; buf[p] = lo; buf[p + 1] = lo >>> 8; buf[p + 2] = lo >>> 16; buf[p + 3] = lo >>> 24; buf[p + 4] = hi; buf[p + 5] = hi >> 8; buf[p + 6] = hi >> 16; buf[p + 7] = hi >> 24; p += 8;'
      : [...Array(type.width).keys()].map((k) => `buf[p + ${k}] = v${k ? ` >> ${k * 8}` : ''};`).join(' ') + ` p += ${type.width};`;
    return `{ const v = ${value}; if (!(v >= ${type.min} && v <= ${type.max} && Math.floor(v) === v)) throw h.outside(${c}, v); ${bytes} }`;
  };
  const runAt = new Map(runs.map((r) => [r.firstColumn, r]));
  for (let c = 0; c < plan.length; c++) {
    const run = runAt.get(c);
    if (run !== undefined) {
      emit(stringRun(run, fieldStart(run.firstField + run.columns.length), (i) => emitColumn(run.firstColumn + i)));
      c += run.columns.length - 1;
      continue;
    }
    emit(emitColumn(c));
  }
  emit('out.bytes = p;');
  // The code holds numbers and fixed snippets only (no schema or column text).
  return new Function('src', 'out', 'partition', 'offset', 'h', code.join('\n')) as EncodeRow;

  /** One column's code, as written when it is not part of a string run (or the run has a long string). */
  function emitColumn(c: number): string {
    const { route, field: f, type, fallback } = plan[c]!;
    const flag = type.nullable ? 'buf[p++] = 0; ' : '';
    if (route === R_DEFAULT) {
      return fallback!.length <= 32 ? [...fallback!].map((x) => `buf[p++] = ${x};`).join(' ') : `{ const d = h.fallbacks[${c}]; ${copy('d', '0', 'd.length')} }`;
    }
    if (route === R_TOPIC) {
      // Four bytes at a time through its DataView (a topic name is tens of bytes, in every row).
      return `${flag}{ const t = h.topicBytes, tv = h.topicView, n = t.length; ${copyFour('t', 'tv', '0', '0', 'n')} }`;
    }
    if (route === R_PARTITION || route === R_OFFSET) {
      return `${flag}${writeInt(c, type, route === R_PARTITION ? 'partition' : 'offset')}`;
    }
    let write: string;
    switch (route) {
      case R_STRING:
        write = `${flag}{ const l = l${f}, s = s${f}; ${lebLength('l')} ${copySource('s', 'l')} }`;
        break;
      case R_NUMBER:
        if (type.kind === C_INT) {
          write = `${flag}${writeInt(c, type, `n${f}`)}`;
        } else {
          write = `${flag}p = h.number(buf, p, ${c}, n${f});`;
        }
        break;
      case R_STRING_AS:
        write = `${flag}out.bytes = p; h.stringAs(out, ${c}, src, s${f}, l${f}); p = out.bytes;`;
        break;
      case R_ENUM_STRING:
        write = `${flag}{ const t = h.symbols[${f}][n${f}]; ${lebLength('t.length')} ${copy('t', '0', 't.length')} }`;
        break;
      case R_MAP:
        write = `${flag}p = h.mapPairs(src, s${f}, n${f}, buf, p);`;
        break;
      case R_MAP_JSON:
        write = `${flag}out.bytes = p; h.mapJson(src, s${f}, n${f}, out); ${refresh}`;
        break;
      default: {
        // Everything else goes through the JavaScript value, as the JSON path would see it (writeValue writes the flag).
        const kind = kinds[f];
        const value = kind === F_LONG || kind === F_DOUBLE || kind === F_FLOAT ? `n${f}` : kind === F_BOOL ? `n${f} === 1`
          : kind === F_STRING ? `src.toString('utf8', s${f}, s${f} + l${f})` : kind === F_ENUM ? `h.symbolText(${f}, n${f})`
          : kind === F_MAP ? `h.decodeAt(${f}, src, s${f})` : `o${f}`;
        write = `out.bytes = p; h.value(out, ${c}, ${value}); ${refresh}`;
      }
    }
    return nullBranch[f]! >= 0 ? `if (z${f} === 1) { ${type.nullable ? 'buf[p++] = 1;' : `throw h.nullInto(${c});`} } else { ${write} }` : write;
  }

  /**
   * A run of string columns filled by consecutive fields: when every string in it is shorter than 64 bytes, the
   * Avro bytes of those fields are the RowBinary bytes but for one byte per length (zigzag 2n, LEB128 n) and one per
   * union index (0 or 2; the Nullable flag is 1 or 0): the run is copied at once and those bytes set. Otherwise each
   * column is written on its own.
   */
  function stringRun(run: StringRun, after: string, column: (i: number) => string): string {
    const first = `f${run.firstField}`;
    const lengths = run.columns.map((_, i) => `l${run.firstField + i}`).join(' | ');
    const set = run.columns.map((_, i) => {
      const f = run.firstField + i;
      return nullBranch[f]! >= 0 ? `buf[q + f${f}] = z${f}; if (z${f} === 0) buf[q + f${f} + 1] = l${f};` : `buf[q + f${f}] = l${f};`;
    });
    return `if ((${lengths}) < 64) { const n = ${after} - ${first}, q = p - ${first}; ${copySource(first, 'n')} ${set.join(' ')} } else { ${run.columns.map((_, i) => column(i)).join(' ')} }`;
  }
}

/** Consecutive plan columns, each a String filled by the next writer field (see `stringRun` in `generate`). */
interface StringRun {
  readonly firstColumn: number;
  readonly firstField: number;
  readonly columns: readonly ColumnPlan[];
}

/**
 * The runs of string columns whose Avro bytes can be copied as they are: R_STRING columns filled by consecutive
 * fields, each either a plain string into a String column or a ["null", string] union into a Nullable(String) one.
 */
function stringRuns(plan: readonly ColumnPlan[], nullBranch: Int8Array): StringRun[] {
  const runs: StringRun[] = [];
  let current: { firstColumn: number; firstField: number; columns: ColumnPlan[] } | undefined;
  for (let c = 0; c < plan.length; c++) {
    const column = plan[c]!;
    const fits = column.route === R_STRING && (nullBranch[column.field]! >= 0) === column.type.nullable;
    if (fits && current !== undefined && column.field === current.firstField + current.columns.length) {
      current.columns.push(column);
      continue;
    }
    if (current !== undefined) runs.push(current);
    current = fits ? { firstColumn: c, firstField: column.field, columns: [column] } : undefined;
  }
  if (current !== undefined) runs.push(current);
  return runs;
}

class RowBinaryTranscoder implements RowEncoder {
  private readonly h: Helpers;
  private readonly run: EncodeRow;
  private topic = '';

  constructor(
    readonly layout: RowLayout,
    fieldNames: readonly string[],
    kinds: Int8Array,
    nullBranch: Int8Array,
    valueBranch: Int8Array,
    valueTypes: readonly AvscType[],
    plan: readonly ColumnPlan[],
    fixedMax: number,
  ) {
    const symbols = valueTypes.map((t) => (t.symbols ?? []).map((s) => Buffer.from(s, 'utf8')));
    this.h = new Helpers(fieldNames, valueTypes, symbols, plan.map((c) => c.name), plan.map((c) => c.type), plan.map((c) => c.fallback));
    this.run = generate(kinds, nullBranch, valueBranch, symbols.map((s) => s.length), plan, fixedMax);
  }

  encode(value: Buffer, out: ByteOut, topic: string, partition: number, offset: number, _offsetText: string): void {
    if (topic !== this.topic) {
      const bytes = Buffer.from(topic, 'utf8');
      const framed = Buffer.allocUnsafe(bytes.length + 10);
      const p = writeLeb(framed, 0, bytes.length);
      const topicBytes = framed.subarray(0, p + bytes.copy(framed, p));
      this.h.topicBytes = topicBytes;
      this.h.topicView = new DataView(topicBytes.buffer, topicBytes.byteOffset, topicBytes.length);
      this.topic = topic;
    }
    const mark = out.bytes;
    try {
      this.run(value, out, partition, offset, this.h);
    } catch (error) {
      out.bytes = mark;
      throw error;
    }
  }
}

/** Strings left in the block of the map being walked (mapBegin, mapNext); where mapNext's string starts. */
let mapLeft = 0;
let mapString = 0;
/** What mapNext answers after the map's last string (no length can be: readLong refuses beyond 2^53). */
const MAP_END = Number.NEGATIVE_INFINITY;

/** Starts walking the Avro map of strings at `at`. */
function mapBegin(at: number): void {
  cursor = at;
  mapLeft = 0;
}

/**
 * The next string of the map being walked, keys and values alternately: its length (as written: pass 1 checks it),
 * its start in `mapString`; MAP_END after the last. Blocks and their counts are handled here.
 */
function mapNext(src: Buffer): number {
  while (mapLeft === 0) {
    let block = readLong(src);
    if (block === 0) return MAP_END;
    if (block < 0) {
      block = -block;
      readLong(src); // a negative count is followed by the block's size in bytes
    }
    mapLeft = block * 2;
  }
  mapLeft--;
  const len = readLong(src);
  mapString = cursor;
  cursor += len;
  return len;
}

/** An Avro map of strings into a Map column: the entry count, then each key and value with its LEB128 length. */
function writeMapPairs(src: Buffer, at: number, count: number, buf: Buffer, p: number): number {
  let q = writeLeb(buf, p, count);
  mapBegin(at);
  for (let len = mapNext(src); len !== MAP_END; len = mapNext(src)) q = copyBytes(src, mapString, len, buf, writeLeb(buf, q, len));
  return q;
}

/** Bytes of a JSON object of `count` entries beyond its keys' and values' text: braces; per entry 4 quotes and a colon; commas between. */
const jsonMapFrame = (count: number) => 2 + (count > 0 ? count * 6 - 1 : 0);

/**
 * writeMapJson's common case, in one pass over the map: one block, every length under 64 bytes (one varint byte each),
 * nothing to escape. Answers false, having written nothing, for any other map.
 */
function writePlainMapJson(src: Buffer, at: number, count: number, out: ByteOut): boolean {
  if (count >= 64 || src[at] !== count * 2) return false; // the block count, zigzag, in one byte (0 for {})
  const strings = count * 2;
  let size = jsonMapFrame(count);
  for (let i = 0, q = at + 1; i < strings; i++) {
    const z = src[q++]!;
    if (z >= 128 || (z & 1) === 1) return false;
    const end = q + (z >> 1);
    for (; q < end; q++) {
      const b = src[q]!;
      if (b < 0x20 || b === 0x22 || b === 0x5c) return false;
    }
    size += z >> 1;
  }
  out.reserve(size + 10);
  const buf = out.buf;
  let p = writeLeb(buf, out.bytes, size);
  buf[p++] = 0x7b; // {
  for (let i = 0, q = at + 1; i < strings; i++) {
    if ((i & 1) === 1) buf[p++] = 0x3a; // :
    else if (i > 0) buf[p++] = 0x2c; // ,
    buf[p++] = 0x22;
    const length = src[q++]! >> 1;
    for (let k = 0; k < length; k++) buf[p + k] = src[q + k]!;
    p += length;
    q += length;
    buf[p++] = 0x22;
  }
  buf[p++] = 0x7d; // }
  out.bytes = p;
  return true;
}

/** Bytes JSON needs for a UTF-8 byte inside a string: 1, 2 (\" \\ \n …) or 6 (\u00XX). */
const JSON_WIDTH = new Uint8Array(256).fill(1);
for (let b = 0; b < 0x20; b++) JSON_WIDTH[b] = 6;
for (const b of [0x08, 0x09, 0x0a, 0x0c, 0x0d, 0x22, 0x5c]) JSON_WIDTH[b] = 2;
const JSON_SHORT: Record<number, number> = { 0x08: 0x62, 0x09: 0x74, 0x0a: 0x6e, 0x0c: 0x66, 0x0d: 0x72, 0x22: 0x22, 0x5c: 0x5c };
const HEX_DIGITS = Buffer.from('0123456789abcdef');

/**
 * An Avro map of strings into a String column as JSON text (`{"k":"v",…}`), as JSON.stringify writes it, straight
 * from the UTF-8 bytes: the length first (a pass that counts escapes), then the text.
 */
function writeMapJson(src: Buffer, at: number, count: number, out: ByteOut): void {
  if (writePlainMapJson(src, at, count, out)) return;
  let size = jsonMapFrame(count);
  mapBegin(at);
  for (let len = mapNext(src); len !== MAP_END; len = mapNext(src)) {
    for (let i = mapString; i < mapString + len; i++) size += JSON_WIDTH[src[i]!]!;
  }
  out.reserve(size + 10);
  const buf = out.buf;
  let p = writeLeb(buf, out.bytes, size);
  buf[p++] = 0x7b; // {
  mapBegin(at);
  for (let k = 0, len = mapNext(src); len !== MAP_END; k++, len = mapNext(src)) {
    const isKey = (k & 1) === 0;
    if (isKey && k > 0) buf[p++] = 0x2c; // ,
    buf[p++] = 0x22;
    for (let i = mapString; i < mapString + len; i++) {
      const b = src[i]!;
      const width = JSON_WIDTH[b]!;
      if (width === 1) buf[p++] = b;
      else if (width === 2) {
        buf[p++] = 0x5c;
        buf[p++] = JSON_SHORT[b]!;
      } else {
        buf[p++] = 0x5c; // \u00XX
        buf[p++] = 0x75;
        buf[p++] = 0x30;
        buf[p++] = 0x30;
        buf[p++] = HEX_DIGITS[b >> 4]!;
        buf[p++] = HEX_DIGITS[b & 15]!;
      }
    }
    buf[p++] = 0x22;
    if (isKey) buf[p++] = 0x3a; // :
  }
  buf[p++] = 0x7d; // }
  out.bytes = p;
}
