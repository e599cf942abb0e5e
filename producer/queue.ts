/**
 * The SDK's bounded in-memory queue: a ring of event references with their estimated sizes, bounded by count
 * and by bytes. `push` is O(1) and allocates nothing; the sender takes batches from the head.
 */
export class EventQueue<T> {
  private readonly items: (T | undefined)[];
  private readonly sizes: Float64Array;
  private head = 0;
  private count = 0;
  private byteCount = 0;

  constructor(
    readonly maxEvents: number,
    readonly maxBytes: number,
  ) {
    this.items = new Array<T | undefined>(maxEvents).fill(undefined);
    this.sizes = new Float64Array(maxEvents);
  }

  get length(): number {
    return this.count;
  }

  get bytes(): number {
    return this.byteCount;
  }

  /** Adds an event unless the queue is full by count or bytes; returns whether it was added. */
  push(item: T, size: number): boolean {
    if (this.count === this.maxEvents || (this.byteCount + size > this.maxBytes && this.count > 0)) return false;
    let tail = this.head + this.count;
    if (tail >= this.maxEvents) tail -= this.maxEvents;
    this.items[tail] = item;
    this.sizes[tail] = size;
    this.count++;
    this.byteCount += size;
    return true;
  }

  /** Removes up to `maxEvents` events (and at most `maxBytes`, but always at least one) from the head, into `out`. */
  take(maxEvents: number, maxBytes: number, out: T[]): T[] {
    let bytes = 0;
    while (this.count > 0 && out.length < maxEvents) {
      const size = this.sizes[this.head]!;
      if (out.length > 0 && bytes + size > maxBytes) break;
      out.push(this.items[this.head] as T);
      this.items[this.head] = undefined;
      bytes += size;
      this.byteCount -= size;
      this.count--;
      this.head = this.head + 1 === this.maxEvents ? 0 : this.head + 1;
    }
    if (this.count === 0) this.byteCount = 0; // no drift from float sums
    return out;
  }
}
