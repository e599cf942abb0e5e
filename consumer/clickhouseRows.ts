/**
 * The consumer's view of a ClickHouse table through a Sink: inserts row bodies (RowBinary, JSONEachRow or
 * JSONCompactEachRow with `null` read as the column default) and answers which Kafka
 * offsets of a partition are already stored (the `_topic`, `_partition`, `_offset` columns every row carries).
 */
import { checkTableName, type RowLayout, type Sink } from './sink.ts';
import type { RowStore } from './partitionIngest.ts';

export class ClickHouseRows implements RowStore {
  private readonly table: string;
  private readonly positionalSettings: Record<string, string | number>;

  constructor(
    private readonly sink: Sink,
    table: string,
    private readonly settings: Record<string, string | number> = {},
  ) {
    this.table = checkTableName(table);
    // A compact row sends null for a field its writer schema lacks: the column's default (see RowWriterOptions.format).
    this.positionalSettings = { ...settings, input_format_null_as_default: 1 };
  }

  insert(body: Buffer, _rows?: number, _batchId?: string, layout?: RowLayout): Promise<void> {
    if (layout === undefined || layout.format === 'JSONEachRow') return this.sink.insertJsonEachRow(this.table, body, this.settings);
    if (layout.format === 'RowBinary') return this.sink.insertRows(this.table, body, 'RowBinary', layout.columns, this.settings, layout.types);
    return this.sink.insertRows(this.table, body, layout.format, layout.columns, this.positionalSettings);
  }

  async storedOffsets(topic: string, partition: number, from: number, to?: number): Promise<number[]> {
    const upper = to === undefined ? '' : ' AND _offset <= {to:UInt64}';
    const rows = await this.sink.query<{ o: string | number }>(
      `SELECT _offset AS o FROM ${this.table} WHERE _topic = {topic:String} AND _partition = {partition:UInt32} AND _offset >= {from:UInt64}${upper}`,
      to === undefined ? { topic, partition, from } : { topic, partition, from, to },
    );
    const out = new Array<number>(rows.length);
    for (let i = 0; i < rows.length; i++) out[i] = Number(rows[i]!.o);
    return out;
  }
}
