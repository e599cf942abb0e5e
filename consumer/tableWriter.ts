/**
 * The row writer for the table's current columns. The columns are read when the consumer starts and again when a
 * batch carries a writer schema id this process has not seen before (once per id, before that batch is decoded):
 * a producer's new schema version usually follows a migration that added its columns (schemas/clickhouse/
 * migrations/0005_v2_fields.sql), whose fields would otherwise be dropped until a restart.
 *
 * Hot path: `schemaIds` (decoder.ts) costs a 4-byte read per message; then one map lookup per distinct id per batch.
 */
import type { KafkaMessage } from 'kafkajs';
import { schemaIds } from './decoder.ts';
import { RowWriter, type RowWriterOptions } from './rowWriter.ts';
import type { TableColumn } from './sink.ts';

export interface TableWriterOptions {
  /** Reads the table's columns (DESCRIBE TABLE, retried by the caller's policy). */
  readonly describe: () => Promise<TableColumn[]>;
  readonly format?: RowWriterOptions['format'];
  /** Called when a re-read found different columns. */
  readonly onChange?: (columns: readonly TableColumn[]) => void;
}

const signature = (columns: readonly TableColumn[]) => columns.map((c) => `${c.name} ${c.type} ${c.defaultKind} ${c.defaultExpression ?? ''}`).join('\n');

export class TableWriter {
  private current: RowWriter | undefined;
  private columnsSignature = '';
  /** Schema ids whose batches were preceded by a read of the columns (or one in progress). */
  private readonly seen = new Map<number, Promise<void>>();
  private reads = 0;

  constructor(private readonly options: TableWriterOptions) {}

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
   * Makes `writer` current for the schema ids in `messages`: re-reads the columns once per id never seen before;
   * a caller whose batch has an id whose read is still in progress waits for that read. Non-frames are ignored here.
   */
  async prepare(messages: readonly KafkaMessage[]): Promise<void> {
    const ids = schemaIds(messages);
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

  private async reload(): Promise<readonly TableColumn[]> {
    this.reads++;
    const columns = await this.options.describe();
    const next = signature(columns);
    if (next !== this.columnsSignature) {
      const changed = this.current !== undefined;
      this.current = new RowWriter({ columns, ...(this.options.format ? { format: this.options.format } : {}) });
      this.columnsSignature = next;
      if (changed) this.options.onChange?.(columns);
    }
    return columns;
  }
}
