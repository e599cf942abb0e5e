/**
 * The row writer and the per-schema row encoders for the table's current columns. The columns are read when the
 * consumer starts and again when a batch carries a writer schema id this process has not seen before (once per id,
 * before that batch is encoded):
 * a producer's new schema version usually follows a migration that added its columns (schemas/clickhouse/
 * migrations/0005_v2_fields.sql), whose fields would otherwise be dropped until a restart.
 *
 * Rows are encoded per writer schema id (`encoderFor`): RowBinary straight from the Avro bytes (rowBinary.ts) when
 * `rowBinary` is set and the table's columns allow it, else a JSON line in `format` through the RowWriter.
 *
 * Hot path: the caller's `schemaIds` (decoder.ts) costs a 4-byte read per message, once per batch; then one map lookup
 * per distinct id per batch, and `encoderFor` a 4-byte read and a comparison per message.
 */
import type { Type } from 'avsc';
import { DecodeError } from '../runtime/errors.ts';
import { frameSchemaId } from '../schemas/wire.ts';
import { decodeFramed } from './decoder.ts';
import { compileRowBinary, type ByteOut, type RowEncoder } from './rowBinary.ts';
import { RowWriter, type RowWriterOptions } from './rowWriter.ts';
import type { RowLayout, TableColumn } from '../clickhouse/sink.ts';

/** Writer schemas by id, as the registry client caches them. */
export interface WriterSchemas {
  readonly url: string;
  cachedType(id: number): Type | undefined;
}

export interface TableWriterOptions {
  /** Reads the table's columns (DESCRIBE TABLE, retried by the caller's policy). */
  readonly describe: () => Promise<TableColumn[]>;
  /** Encode rows as RowBinary from the Avro bytes where the columns allow (else JSON lines). @default false */
  readonly rowBinary?: boolean;
  /** The format of JSON lines (the RowWriter's). @default 'JSONEachRow' */
  readonly format?: RowWriterOptions['format'];
  /** Writer schemas for `encoderFor` (prefetched by the caller). */
  readonly schemas?: WriterSchemas;
  /** Called when a re-read found different columns. */
  readonly onChange?: (columns: readonly TableColumn[]) => void;
  /** Called when the rows of a schema id cannot be RowBinary (the reason): once per id and version of the columns. */
  readonly onJsonFallback?: (schemaId: number, reason: string) => void;
}

/** A JSON line per record: avsc decodes the body, the RowWriter writes the line. */
class JsonRowEncoder implements RowEncoder {
  readonly layout: RowLayout;

  constructor(
    private readonly id: number,
    private readonly type: Type,
    private readonly writer: RowWriter,
  ) {
    this.layout = writer.layout;
  }

  encode(value: Buffer, out: ByteOut, topic: string, partition: number, _offset: number, offsetText: string): void {
    const line = this.writer.line(decodeFramed(value, this.id, this.type), topic, partition, offsetText);
    out.reserve(line.length * 3); // a UTF-16 code unit is at most 3 UTF-8 bytes
    out.bytes += out.buf.write(line, out.bytes, 'utf8');
  }
}

const signature = (columns: readonly TableColumn[]) => columns.map((c) => `${c.name} ${c.type} ${c.defaultKind} ${c.defaultExpression ?? ''}`).join('\n');

export class TableWriter {
  private current: RowWriter | undefined;
  private columnsSignature = '';
  /** Schema ids whose batches were preceded by a read of the columns (or one in progress). */
  private readonly seen = new Map<number, Promise<void>>();
  private reads = 0;
  private columns: readonly TableColumn[] = [];
  /** Encoders of the current columns, by schema id; the last one used is kept at hand. */
  private encoders = new Map<number, RowEncoder>();
  private lastId = -1;
  private lastEncoder: RowEncoder | undefined;
  /** Layouts by column list, so that equal lists are one object (batches compare layouts by identity). */
  private readonly layouts = new Map<string, RowLayout>();

  constructor(private readonly options: TableWriterOptions) {}

  /**
   * The row encoder for a framed message's writer schema. Throws DecodeError when the value is not a Confluent frame
   * or its schema id is not in the registry (prefetch the batch's ids first).
   */
  encoderFor(value: Buffer | null): RowEncoder {
    const id = frameSchemaId(value);
    if (id === this.lastId && this.lastEncoder !== undefined) return this.lastEncoder;
    let encoder = this.encoders.get(id);
    if (encoder === undefined) {
      encoder = this.compile(id);
      this.encoders.set(id, encoder);
    }
    this.lastId = id;
    this.lastEncoder = encoder;
    return encoder;
  }

  private compile(id: number): RowEncoder {
    const { schemas, rowBinary } = this.options;
    const type = schemas?.cachedType(id);
    if (type === undefined) throw new DecodeError('unknown-schema-id', `schema id ${id} is not in the registry at ${schemas?.url ?? '(no registry)'}`);
    if (rowBinary) {
      const plan = compileRowBinary(type, this.columns, {
        layoutFor: (columns, types) => {
          const key = columns.map((c, i) => `${c} ${types[i]}`).join(',');
          let layout = this.layouts.get(key);
          if (layout === undefined) {
            layout = Object.freeze({ format: 'RowBinary' as const, columns: Object.freeze([...columns]), types: Object.freeze([...types]) });
            this.layouts.set(key, layout);
          }
          return layout;
        },
      });
      if ('encoder' in plan) return plan.encoder;
      this.options.onJsonFallback?.(id, plan.unsupported); // compiled once per id and version of the columns
    }
    return new JsonRowEncoder(id, type, this.writer);
  }

  /** The writer for the columns read last. Throws before `start`. */
  get writer(): RowWriter {
    if (this.current === undefined) throw new Error('TableWriter: columns not read yet (call start)');
    return this.current;
  }

  /** How many times the columns were read (start included). */
  get columnReads(): number {
    return this.reads;
  }

  /** Reads the columns; returns them for start-up checks. */
  async start(): Promise<readonly TableColumn[]> {
    return this.reload();
  }

  /**
   * Makes `writer` and the encoders current for the schema ids `ids` (a batch's `schemaIds`): re-reads the columns
   * once per id never seen before; a caller whose batch has an id whose read is still in progress waits for that
   * read.
   */
  async prepare(ids: readonly number[]): Promise<void> {
    const reads: Promise<void>[] = [];
    for (const id of ids) {
      let read = this.seen.get(id);
      if (read === undefined) {
        read = this.reload().then(() => undefined);
        // A failed read is not remembered: the next batch with this id reads again (the error reaches the caller).
        read.catch(() => this.seen.delete(id));
        this.seen.set(id, read);
      }
      reads.push(read);
    }
    await Promise.all(reads);
  }

  /** Reads the columns again now (a column's type changed under encoded rows: see ColumnsChangedError). */
  async refresh(): Promise<void> {
    await this.reload();
  }

  private async reload(): Promise<readonly TableColumn[]> {
    this.reads++;
    const columns = await this.options.describe();
    const next = signature(columns);
    if (next !== this.columnsSignature) {
      const changed = this.current !== undefined;
      const { format } = this.options;
      this.current = new RowWriter({ columns, ...(format ? { format } : {}) });
      this.columns = columns;
      this.encoders = new Map();
      this.layouts.clear();
      this.lastId = -1;
      this.lastEncoder = undefined;
      this.columnsSignature = next;
      if (changed) this.options.onChange?.(columns);
    }
    return columns;
  }
}
