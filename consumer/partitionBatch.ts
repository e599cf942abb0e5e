/**
 * One partition's pending work between two flushes: the JSONEachRow lines and their Kafka offsets, the dead letters,
 * and the offsets found already stored (skipped). Its identity is `topic:partition:first-last`; `nextOffset` is what
 * gets committed once the batch is durable.
 *
 * Hot path: `addRow` pushes one string and one number; nothing else is allocated per event.
 */
import type { DeadLetter } from './deadLetters.ts';

export class PartitionBatch {
  private lines: string[] = [];
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

  constructor(
    readonly topic: string,
    readonly partition: number,
  ) {}

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
    return this.lines.length;
  }

  private take(offset: number, now: number): void {
    if (this.first < 0) {
      this.first = offset;
      this.openedAt = now;
    }
    this.last = offset;
  }

  addRow(offset: number, line: string, now: number): void {
    this.take(offset, now);
    this.lines.push(line);
    this.rowOffsets.push(offset);
    this.bytes += line.length;
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

  /** The rows as one JSONEachRow body, leaving out offsets in `exclude` (rows found stored after a failed insert). */
  body(exclude?: ReadonlySet<number>): { body: Buffer; rows: number } {
    if (exclude === undefined || exclude.size === 0) return { body: Buffer.from(this.lines.join(''), 'utf8'), rows: this.lines.length };
    const kept: string[] = [];
    for (let i = 0; i < this.lines.length; i++) if (!exclude.has(this.rowOffsets[i]!)) kept.push(this.lines[i]!);
    return { body: Buffer.from(kept.join(''), 'utf8'), rows: kept.length };
  }

  /** A batch of the rows in [from, to) by index, for splitting a batch whose insert ClickHouse rejects. */
  slice(from: number, to: number): PartitionBatch {
    const part = new PartitionBatch(this.topic, this.partition);
    for (let i = from; i < to; i++) part.addRow(this.rowOffsets[i]!, this.lines[i]!, this.openedAt);
    return part;
  }

  /** A batch of the rows whose offsets are not in `exclude`. */
  without(exclude: ReadonlySet<number>): PartitionBatch {
    const part = new PartitionBatch(this.topic, this.partition);
    for (let i = 0; i < this.lines.length; i++) {
      if (!exclude.has(this.rowOffsets[i]!)) part.addRow(this.rowOffsets[i]!, this.lines[i]!, this.openedAt);
    }
    return part;
  }

  lineAt(index: number): string {
    return this.lines[index]!;
  }
}
