/**
 * Turns decoded Avro records into JSONEachRow or JSONCompactEachRow lines for one table, by reading the table's columns:
 * a column takes the Avro field of the same name, or the Kafka coordinates for `_topic`, `_partition`,
 * `_offset`. Conversion follows the column type, so one consumer fills both the current table
 * (DateTime64, Map) and the legacy one (epoch-ms UInt64, JSON text).
 *
 * Hot path: one string per row, built by concatenation; no per-row objects.
 */
import { DecodeError } from '../runtime/errors.ts';
import type { RowLayout, TableColumn } from '../clickhouse/sink.ts';

type Encoder = (value: unknown, column: string) => string;

interface ColumnPlan {
  readonly name: string;
  /** `"name":` */
  readonly key: string;
  readonly source: 'field' | '_topic' | '_partition' | '_offset';
  readonly nullable: boolean;
  readonly encode: Encoder;
}

/** ClickHouse integer types: byte width and the range a JavaScript number can fill exactly (both row writers check it). */
export const INT_TYPES: Record<string, [width: number, min: number, max: number]> = {
  UInt8: [1, 0, 255],
  UInt16: [2, 0, 65535],
  UInt32: [4, 0, 4294967295],
  UInt64: [8, 0, Number.MAX_SAFE_INTEGER],
  Int8: [1, -128, 127],
  Int16: [2, -32768, 32767],
  Int32: [4, -2147483648, 2147483647],
  Int64: [8, Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER],
};

/** A column type without its Nullable and LowCardinality wrappers, and whether it is Nullable. */
export function unwrap(type: string): { base: string; nullable: boolean } {
  let base = type.trim();
  let nullable = false;
  for (;;) {
    const m = /^(LowCardinality|Nullable)\((.*)\)$/.exec(base);
    if (!m) break;
    if (m[1] === 'Nullable') nullable = true;
    base = m[2]!.trim();
  }
  return { base, nullable };
}

/** A value that cannot go into its column (both row writers). */
export const misfit = (column: string, detail: string) =>
  new DecodeError('does-not-fit-table', `value for column ${column} ${detail}`);

function encoderFor(base: string): Encoder {
  const int = INT_TYPES[base];
  if (int) {
    const [, min, max] = int;
    return (v, column) => {
      if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
        throw misfit(column, `is ${String(v)}, outside ${base}`);
      }
      return String(v);
    };
  }
  if (base === 'Float32' || base === 'Float64') {
    return (v, column) => {
      if (typeof v !== 'number' || !Number.isFinite(v)) throw misfit(column, `is ${String(v)}, not a finite number`);
      return String(v);
    };
  }
  const dt64 = /^DateTime64\((\d+)/.exec(base);
  if (dt64) {
    // From epoch milliseconds to "seconds.fraction", exact for any scale.
    const scale = Number(dt64[1]);
    return (v, column) => {
      if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) throw misfit(column, `is ${String(v)}, not epoch milliseconds`);
      const seconds = Math.floor(v / 1000);
      const ms = String(v - seconds * 1000).padStart(3, '0');
      if (scale === 0) return `"${seconds}"`;
      return `"${seconds}.${scale >= 3 ? ms.padEnd(scale, '0') : ms.slice(0, scale)}"`;
    };
  }
  if (base.startsWith('DateTime')) {
    return (v, column) => {
      if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) throw misfit(column, `is ${String(v)}, not epoch milliseconds`);
      return String(Math.floor(v / 1000));
    };
  }
  if (base.startsWith('Map(')) {
    return (v, column) => {
      if (typeof v !== 'object' || v === null) throw misfit(column, 'is not a map');
      return JSON.stringify(v);
    };
  }
  if (base === 'String' || base === 'UUID' || base.startsWith('FixedString') || base.startsWith('Enum')) {
    // Maps and records into a String column are stored as JSON text.
    return (v) => (typeof v === 'string' ? JSON.stringify(v) : JSON.stringify(JSON.stringify(v)));
  }
  if (base === 'Bool' || base === 'Boolean') {
    return (v, column) => {
      if (typeof v !== 'boolean') throw misfit(column, 'is not a boolean');
      return v ? 'true' : 'false';
    };
  }
  return (v) => JSON.stringify(v);
}

export interface RowWriterOptions {
  /** Columns of the target table (DESCRIBE TABLE). */
  readonly columns: readonly TableColumn[];
  /**
   * JSONCompactEachRow (no keys: ClickHouse parses it ~35% faster than JSONEachRow for the API-call table, measured by
   * bench/consumerInsert.ts) needs an engine that reads `null` in a non-Nullable column as the column's default
   * (input_format_null_as_default, ClickHouse 20+): a field the writer schema lacks is sent as null. A table with a
   * Nullable column whose default is not NULL cannot say "absent" that way and gets JSONEachRow. @default 'JSONEachRow'
   */
  readonly format?: 'JSONEachRow' | 'JSONCompactEachRow';
}

/** Whether a column's default, when a record lacks the field, is what `null` gives in a compact row. */
function nullMeansDefault(column: TableColumn, nullable: boolean): boolean {
  if (!nullable) return true;
  const expression = (column.defaultExpression ?? '').trim();
  return expression === '' || /^NULL$/i.test(expression);
}

export class RowWriter {
  private readonly plans: readonly ColumnPlan[];
  private readonly compact: boolean;
  /** The format of the lines and the columns they fill, in order; one object per writer (batches compare it). */
  readonly layout: RowLayout;
  private lines: string[] = [];
  private bytes = 0;
  /** The last topic seen and its JSON text: `_topic` costs no JSON.stringify per row. */
  private topic = '';
  private topicText = '""';

  constructor(options: RowWriterOptions) {
    const plans: ColumnPlan[] = [];
    let compact = options.format === 'JSONCompactEachRow';
    for (const column of options.columns) {
      if (column.defaultKind === 'MATERIALIZED' || column.defaultKind === 'ALIAS' || column.defaultKind === 'EPHEMERAL') continue;
      const { base, nullable } = unwrap(column.type);
      const source: ColumnPlan['source'] =
        column.name === '_topic' || column.name === '_partition' || column.name === '_offset' ? column.name : 'field';
      if (!nullMeansDefault(column, nullable)) compact = false;
      plans.push({ name: column.name, key: `${JSON.stringify(column.name)}:`, source, nullable, encode: encoderFor(base) });
    }
    this.plans = plans;
    this.compact = compact;
    this.layout = Object.freeze({ format: compact ? 'JSONCompactEachRow' : 'JSONEachRow', columns: Object.freeze(plans.map((p) => p.name)) });
  }

  /**
   * Appends one row. Throws DecodeError('does-not-fit-table') when a value cannot go into its column;
   * nothing is appended then. Fields absent from the record (an older writer schema) are left to the column default.
   */
  append(record: Readonly<Record<string, unknown>>, topic: string, partition: number, offset: string): void {
    const line = this.line(record, topic, partition, offset);
    this.lines.push(line);
    this.bytes += line.length;
  }

  /**
   * One line (with its newline) in `layout.format` for a record, without keeping it. Throws DecodeError('does-not-fit-table')
   * when a value cannot go into its column.
   */
  line(record: Readonly<Record<string, unknown>>, topic: string, partition: number, offset: string): string {
    if (topic !== this.topic) {
      this.topic = topic;
      this.topicText = JSON.stringify(topic);
    }
    return this.compact ? this.compactLine(record, this.topicText, partition, offset) : this.keyedLine(record, this.topicText, partition, offset);
  }

  /** `[v1,v2,…]` in layout order; a field the record lacks is null (the column's default, see RowWriterOptions.format). */
  private compactLine(record: Readonly<Record<string, unknown>>, topicText: string, partition: number, offset: string): string {
    let line = '[';
    const plans = this.plans;
    for (let i = 0; i < plans.length; i++) {
      const text = valueText(plans[i]!, record, topicText, partition, offset) ?? 'null';
      line += i === 0 ? text : `,${text}`;
    }
    return `${line}]\n`;
  }

  /** `{"name":value,…}`; a field the record lacks is left out (the column's default). */
  private keyedLine(record: Readonly<Record<string, unknown>>, topicText: string, partition: number, offset: string): string {
    let line = '{';
    let first = true;
    for (const plan of this.plans) {
      const text = valueText(plan, record, topicText, partition, offset);
      if (text === undefined) continue;
      line += first ? plan.key : `,${plan.key}`;
      line += text;
      first = false;
    }
    return `${line}}\n`;
  }

  get rowCount(): number {
    return this.lines.length;
  }

  /** Approximate size of the pending body (UTF-16 code units, close to bytes for log data). */
  get pendingBytes(): number {
    return this.bytes;
  }

  /** The pending rows as one JSONEachRow body; the writer is empty afterwards. */
  take(): Buffer {
    const body = Buffer.from(this.lines.join(''), 'utf8');
    this.lines = [];
    this.bytes = 0;
    return body;
  }
}

/** A column's value as JSON text, or undefined when the record lacks the field. `topicText`: the topic as JSON. */
function valueText(plan: ColumnPlan, record: Readonly<Record<string, unknown>>, topicText: string, partition: number, offset: string): string | undefined {
  if (plan.source === 'field') {
    const value = record[plan.name];
    if (value === undefined) return undefined;
    if (value === null) {
      if (!plan.nullable) throw misfit(plan.name, 'is null but the column is not Nullable');
      return 'null';
    }
    return plan.encode(value, plan.name);
  }
  if (plan.source === '_topic') return topicText;
  if (plan.source === '_partition') return String(partition);
  return offset;
}
