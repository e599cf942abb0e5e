/**
 * ClickHouse column types as the RowBinary transcoder plans them (rowBinary.ts): a type string from DESCRIBE parsed
 * into a kind, width, range, Nullable flag, DateTime64 tick and Enum symbols; and a column's literal DEFAULT as a value.
 * No bytes are written here.
 */
import type { TableColumn } from '../clickhouse/sink.ts';
import { INT_TYPES, unwrap } from './rowWriter.ts';

export const C_INT = 0, C_FLOAT32 = 1, C_FLOAT64 = 2, C_BOOL = 3, C_STRING = 4, C_FIXED = 5, C_UUID = 6, C_DATETIME = 7,
  C_DATETIME64 = 8, C_ENUM = 9, C_MAP = 10;

export interface ColumnType {
  /** The type without Nullable/LowCardinality, for messages. */
  readonly name: string;
  readonly kind: number;
  readonly nullable: boolean;
  /** Integers: byte width; FixedString: N; Enum: 1 or 2. */
  readonly width: number;
  readonly min: number;
  readonly max: number;
  /** DateTime64: ticks per millisecond (scale ≥ 3) or milliseconds per tick as a negative number (scale < 3). */
  readonly tick: number;
  /** Enum: symbol → value. */
  readonly symbols: ReadonlyMap<string, number> | undefined;
  /** Most bytes a value can take when its size does not come from the input (strings are bounded by their input). */
  readonly fixedBytes: number;
}

const STRINGISH = /^(LowCardinality\()?String\)?$/;

/** The column type's RowBinary plan, or a reason it has none here. */
export function columnType(type: string): ColumnType | string {
  const { base, nullable } = unwrap(type);
  // Every plan has the same fields in the same order (one object shape for the hot loop).
  const plan = (kind: number, fixedBytes: number, extra: Partial<ColumnType> = {}): ColumnType => ({
    name: base,
    kind,
    nullable,
    width: extra.width ?? 0,
    min: extra.min ?? 0,
    max: extra.max ?? 0,
    tick: extra.tick ?? 1,
    symbols: extra.symbols,
    fixedBytes: fixedBytes + (nullable ? 1 : 0),
  });
  const int = INT_TYPES[base];
  if (int) return plan(C_INT, int[0], { width: int[0], min: int[1], max: int[2] });
  if (base === 'Float32') return plan(C_FLOAT32, 4);
  if (base === 'Float64') return plan(C_FLOAT64, 8);
  if (base === 'Bool' || base === 'Boolean') return plan(C_BOOL, 1);
  if (base === 'String') return plan(C_STRING, 0);
  if (base === 'UUID') return plan(C_UUID, 16);
  const fixed = /^FixedString\((\d+)\)$/.exec(base);
  if (fixed) return plan(C_FIXED, Number(fixed[1]), { width: Number(fixed[1]) });
  const dt64 = /^DateTime64\((\d+)/.exec(base);
  if (dt64) {
    const scale = Number(dt64[1]);
    if (scale > 9) return `${type}: scale above 9`;
    return plan(C_DATETIME64, 8, { tick: scale >= 3 ? 10 ** (scale - 3) : -(10 ** (3 - scale)) });
  }
  if (/^DateTime(\(.*\))?$/.test(base)) return plan(C_DATETIME, 4);
  const enumType = /^Enum(8|16)\((.*)\)$/.exec(base);
  if (enumType) {
    const symbols = new Map<string, number>();
    for (const m of enumType[2]!.matchAll(/'((?:[^'\\]|\\.)*)'\s*=\s*(-?\d+)/g)) symbols.set(unquote(m[1]!), Number(m[2]));
    const width = enumType[1] === '8' ? 1 : 2;
    return plan(C_ENUM, width, { width, symbols });
  }
  const map = /^Map\((.*)\)$/.exec(base);
  if (map) {
    const [key, value] = splitTopLevel(map[1]!);
    if (key !== undefined && value !== undefined && STRINGISH.test(key) && STRINGISH.test(value)) return plan(C_MAP, 10);
    return `${type}: only maps of strings to strings`;
  }
  return `${type}: no RowBinary writer for this type`;
}

function splitTopLevel(text: string): string[] {
  const parts: string[] = [];
  let depth = 0;
  let start = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '(') depth++;
    else if (c === ')') depth--;
    else if (c === ',' && depth === 0) {
      parts.push(text.slice(start, i).trim());
      start = i + 1;
    }
  }
  parts.push(text.slice(start).trim());
  return parts;
}

const ESCAPES: Record<string, string> = { n: '\n', t: '\t', r: '\r', '0': '\0', b: '\b', f: '\f' };
const unquote = (text: string) => text.replace(/\\(.)/g, (_, c: string) => ESCAPES[c] ?? c);

/**
 * A column's default as a value, when DESCRIBE shows a literal (or nothing: the type's zero value); undefined when
 * the default is an expression only ClickHouse can evaluate (`now()`, another column).
 */
export function literalDefault(column: TableColumn, type: ColumnType): { value: unknown } | undefined {
  let expression = (column.defaultExpression ?? '').trim();
  // Old servers show `DEFAULT 0` on a UInt16 column as CAST(0, 'UInt16'): the literal inside is the value.
  const cast = /^CAST\((.*?)(?:,\s*'[^']*'|\s+AS\s+[\w(), ']+)\)$/i.exec(expression);
  if (cast) expression = cast[1]!.trim();
  if (expression === '') {
    if (type.nullable) return { value: null };
    switch (type.kind) {
      case C_INT: case C_FLOAT32: case C_FLOAT64: case C_DATETIME: case C_DATETIME64: return { value: 0 };
      case C_BOOL: return { value: false };
      case C_STRING: return { value: '' };
      case C_MAP: return { value: {} };
      case C_UUID: return { value: '00000000-0000-0000-0000-000000000000' };
      default: return undefined; // FixedString pads with zero bytes, Enum takes its first value: left to ClickHouse
    }
  }
  if (/^NULL$/i.test(expression)) return { value: null };
  const text = /^'((?:[^'\\]|\\.)*)'$/.exec(expression);
  if (text) return { value: unquote(text[1]!) };
  if (/^-?\d+(\.\d+)?([eE][+-]?\d+)?$/.test(expression)) {
    const n = Number(expression);
    // ClickHouse reads a number as a DateTime in seconds (the writers take milliseconds), and keeps a number's own
    // text in a String column (JavaScript would round 20 digits, or write 1e21 as 1e+21): fractions and text are its.
    if (type.kind === C_DATETIME || type.kind === C_DATETIME64) return Number.isInteger(n) ? { value: n * 1000 } : undefined;
    return type.kind === C_STRING ? undefined : { value: n };
  }
  if (/^(true|false)$/.test(expression)) return { value: expression === 'true' };
  return undefined;
}
