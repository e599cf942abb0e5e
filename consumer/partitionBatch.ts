/**
 * One partition's pending work between two flushes: the row lines (all in one layout) and their Kafka offsets, the dead letters,
 * and the offsets found already stored (skipped). Its identity is `topic:partition:first-last`; `nextOffset` is what
 * gets committed once the batch is durable.
 *
 * Hot path: `addRow` writes the line's UTF-8 bytes into one growing buffer at once, so the line (a rope of small
 * strings) dies young and the batch holds compact bytes, not tens of thousands of ropes for the GC to copy.
 */
import type { DeadLetter } from './deadLetters.ts';
import type { ByteOut, RowEncoder } from './rowBinary.ts';
import type { RowLayout } from '../clickhouse/sink.ts';

export class PartitionBatch implements ByteOut {
  /** The rows' bytes, [0, bytes); a row encoder writes at `bytes` after `reserve` (ByteOut). */
  buf: Buffer;
  /** Byte position where each row starts in `buf`; the rows' bytes end at `bytes`. */
  private starts: number[] = [];
  private rowOffsets: number[] = [];
  readonly letters: DeadLetter[] = [];
  /** Offsets taken into this batch (rows, dead letters, already-stored skips), first and last. */
  first = -1;
  last = -1;
  bytes = 0;
  /** When the first offset was taken (ms, caller's clock). */
  openedAt = 0;
  /** Offsets found already in ClickHouse and skipped. */
  skipped = 0;
  /** The layout of the rows (the writer's), set by the first row; undefined while the batch has none. */
  layout: RowLayout | undefined;
  /**
   * The deduplication token its inserts carry: set when it is flushed (a new one), or to the ledger's token when the
   * batch is one formed again after a recovery.
   */
  token: string | undefined;

  /**
   * `capacity`: bytes to start with. The consumer passes the size of the partition's previous batch, so a steady
   * stream fills one buffer instead of doubling (and copying) a small one a dozen times per batch.
   */
  constructor(
    readonly topic: string,
    readonly partition: number,
    capacity = 64 * 1024,
  ) {
    this.buf = Buffer.allocUnsafe(capacity);
  }

  get id(): string {
    return `${this.topic}:${this.partition}:${this.first}-${this.last}`;
  }

  /** The offset to commit once this batch is durable. */
  get nextOffset(): number {
    return this.last + 1;
  }

  get isEmpty(): boolean {
    return this.first < 0;
  }

  get rows(): number {
    return this.starts.length;
  }

  /** `now` is read for the batch's first offset only. */
  private take(offset: number, now: number): void {
    if (this.first < 0) {
      this.first = offset;
      this.openedAt = now;
    }
    this.last = offset;
  }

  addRow(offset: number, line: string, now: number, layout?: RowLayout): void {
    this.checkLayout(layout);
    this.layout = layout;
    this.take(offset, now);
    // A UTF-16 code unit is at most 3 UTF-8 bytes.
    this.reserve(line.length * 3);
    this.starts.push(this.bytes);
    this.rowOffsets.push(offset);
    this.bytes += this.buf.write(line, this.bytes, 'utf8');
  }

  /**
   * Appends the row `encoder` writes for a Kafka message's value, straight into the batch's buffer. Throws what the
   * encoder throws (DecodeError for a record that cannot become a row); nothing is added then.
   */
  addEncoded(offset: number, now: number, encoder: RowEncoder, value: Buffer, partition: number, offsetText: string): void {
    this.checkLayout(encoder.layout);
    const start = this.bytes;
    encoder.encode(value, this, this.topic, partition, offset, offsetText);
    this.layout = encoder.layout;
    this.take(offset, now);
    this.starts.push(start);
    this.rowOffsets.push(offset);
  }

  private checkLayout(layout: RowLayout | undefined): void {
    if (this.starts.length > 0 && layout !== this.layout) throw new Error(`batch ${this.id}: rows of another layout (flush before the writer changes)`);
  }

  reserve(extra: number): void {
    if (this.bytes + extra > this.buf.length) this.grow(this.bytes + extra);
  }

  private grow(needed: number): void {
    const next = Buffer.allocUnsafe(Math.max(needed, this.buf.length * 2));
    this.buf.copy(next, 0, 0, this.bytes);
    this.buf = next;
  }

  private end(index: number): number {
    return index + 1 < this.starts.length ? this.starts[index + 1]! : this.bytes;
  }

  private copyRow(from: PartitionBatch, index: number): void {
    const start = from.starts[index]!;
    const length = from.end(index) - start;
    this.reserve(length);
    this.take(from.rowOffsets[index]!, from.openedAt);
    this.layout = from.layout;
    this.starts.push(this.bytes);
    this.rowOffsets.push(from.rowOffsets[index]!);
    from.buf.copy(this.buf, this.bytes, start, start + length);
    this.bytes += length;
  }

  addDeadLetter(offset: number, letter: DeadLetter, now: number): void {
    this.take(offset, now);
    this.letters.push(letter);
  }

  /** An offset that is already in ClickHouse: it moves the batch's range, adds no row. */
  addStored(offset: number, now: number): void {
    this.take(offset, now);
    this.skipped++;
  }

  /** Offsets of the rows, in order. */
  offsets(): readonly number[] {
    return this.rowOffsets;
  }

  /**
   * The rows as one JSONEachRow body, leaving out offsets in `exclude` (rows found stored after a failed insert).
   * Without exclusions the body is a view of the batch's buffer: do not add rows while it is in use.
   */
  body(exclude?: ReadonlySet<number>): { body: Buffer; rows: number } {
    if (exclude === undefined || exclude.size === 0) return { body: this.buf.subarray(0, this.bytes), rows: this.rows };
    const kept = this.without(exclude);
    return { body: kept.buf.subarray(0, kept.bytes), rows: kept.rows };
  }

  /** A batch of the rows in [from, to) by index, for splitting a batch whose insert ClickHouse rejects. */
  slice(from: number, to: number): PartitionBatch {
    const part = new PartitionBatch(this.topic, this.partition);
    for (let i = from; i < to; i++) part.copyRow(this, i);
    return part;
  }

  /** A batch of the rows whose offsets are not in `exclude`. */
  without(exclude: ReadonlySet<number>): PartitionBatch {
    const part = new PartitionBatch(this.topic, this.partition);
    for (let i = 0; i < this.starts.length; i++) if (!exclude.has(this.rowOffsets[i]!)) part.copyRow(this, i);
    return part;
  }

  /** A copy of a row's bytes as sent (a JSON line or a RowBinary row). */
  rowAt(index: number): Buffer {
    return Buffer.from(this.buf.subarray(this.starts[index]!, this.end(index)));
  }
}
