/**
 * Which offsets of a partition ClickHouse already holds, from the point a new owner resumes: the set a recovery
 * skips. Its size never grows with the table:
 * - after a clean ledger record nothing is stored (`none`);
 * - after an intent, at most the offsets of one batch (`exact`, read for that range only);
 * - with no ledger (a new group on an existing table, offsets reset or expired) ClickHouse answers per page of
 *   PAGE_SIZE offsets with count, min and max (`scan`): a page whose stored offsets are contiguous is one range, and
 *   only pages with holes are read offset by offset, when the consumer reaches them (`prepare`), and dropped after.
 *
 * Hot path: `has` is called for every fetched message; with nothing stored it is one comparison.
 */

/** One page of a partition's stored offsets, as ClickHouse summarizes it. */
export interface StoredPage {
  /** floor(offset / page size) */
  readonly page: number;
  /** Rows in the page (more than hi - lo + 1 when offsets are stored twice). */
  readonly rows: number;
  readonly lo: number;
  readonly hi: number;
}

/** Reads stored offsets of one partition: exact offsets of a range, or page summaries. */
export interface StoredOffsetsSource {
  /** Offsets stored in [from, to], in any order. */
  storedOffsets(topic: string, partition: number, from: number, to: number): Promise<number[]>;
  /** Summaries of the pages holding offsets ≥ from, in page order. */
  storedPages(topic: string, partition: number, from: number, pageSize: number): Promise<StoredPage[]>;
}

export const PAGE_SIZE = 100_000;

interface LoadedPage {
  readonly summary: StoredPage;
  /** Set once read, for pages with holes. */
  offsets?: Set<number>;
}

export class StoredOffsets {
  /** Pages still ahead of the consumer, by page number; entries behind it are dropped by `prepare`. */
  private readonly pages: Map<number, LoadedPage>;
  /** Offsets at or above this may be stored; below it, none (or the consumer has passed them). */
  private floor: number;
  /** Offsets above this are not stored. */
  private readonly ceiling: number;
  /** Offsets read so far (for tests and logs: recovery must not grow with the table). */
  loaded = 0;

  private constructor(
    pages: Map<number, LoadedPage>,
    floor: number,
    ceiling: number,
    /** Offsets per page; Infinity: one page, 0. */
    private readonly pageSize: number,
    private readonly source?: { read: StoredOffsetsSource; topic: string; partition: number },
  ) {
    this.pages = pages;
    this.floor = floor;
    this.ceiling = ceiling;
  }

  /** Nothing stored. */
  static none(): StoredOffsets {
    return new StoredOffsets(new Map(), Infinity, -1, Infinity);
  }

  /** Exactly these offsets (one batch's range, read by the caller). */
  static exact(offsets: readonly number[]): StoredOffsets {
    if (offsets.length === 0) return StoredOffsets.none();
    const set = new Set(offsets);
    let lo = Infinity;
    let hi = -1;
    for (const o of offsets) {
      if (o < lo) lo = o;
      if (o > hi) hi = o;
    }
    const pages = new Map<number, LoadedPage>([[0, { summary: { page: 0, rows: set.size, lo, hi }, offsets: set }]]);
    const stored = new StoredOffsets(pages, lo, hi, Infinity);
    stored.loaded = offsets.length;
    return stored;
  }

  /** Page summaries of everything stored at or after `from`; pages with holes are read later, by `prepare`. */
  static async scan(read: StoredOffsetsSource, topic: string, partition: number, from: number, pageSize = PAGE_SIZE): Promise<StoredOffsets> {
    const summaries = await read.storedPages(topic, partition, from, pageSize);
    if (summaries.length === 0) return StoredOffsets.none();
    const pages = new Map<number, LoadedPage>();
    let lo = Infinity;
    let hi = -1;
    for (const s of summaries) {
      pages.set(s.page, { summary: s });
      if (s.lo < lo) lo = s.lo;
      if (s.hi > hi) hi = s.hi;
    }
    return new StoredOffsets(pages, lo, hi, pageSize, { read, topic, partition });
  }

  /** True when nothing at all is stored. */
  get empty(): boolean {
    return this.pages.size === 0;
  }

  /** The highest stored offset (-1 when nothing is stored). */
  get highest(): number {
    return this.pages.size === 0 ? -1 : this.ceiling;
  }

  /** How many pages the scan found (tests: the summary is small). */
  get pageCount(): number {
    return this.pages.size;
  }

  /**
   * Reads the exact offsets of the pages with holes that [first, last] touches, and forgets pages below `first`
   * (the consumer never goes back). Call before `has` for a fetch's offsets; one query per page with holes.
   */
  async prepare(first: number, last: number): Promise<void> {
    if (this.pages.size === 0 || last < this.floor || first > this.ceiling) return;
    for (const [n, page] of this.pages) {
      const s = page.summary;
      if (s.hi < first) {
        this.pages.delete(n);
        continue;
      }
      if (s.lo > last || page.offsets !== undefined || s.rows === s.hi - s.lo + 1 || this.source === undefined) continue;
      const { read, topic, partition } = this.source;
      const offsets = await read.storedOffsets(topic, partition, s.lo, s.hi);
      this.loaded += offsets.length;
      page.offsets = new Set(offsets);
    }
    if (first > this.floor) this.floor = first;
  }

  /** Whether `offset` is stored. The pages covering it must have been prepared. */
  has(offset: number): boolean {
    if (offset < this.floor || offset > this.ceiling) return false;
    const page = this.pages.get(this.pageSize === Infinity ? 0 : Math.floor(offset / this.pageSize));
    if (page === undefined) return false;
    const s = page.summary;
    if (offset < s.lo || offset > s.hi) return false;
    if (page.offsets !== undefined) return page.offsets.has(offset);
    if (s.rows === s.hi - s.lo + 1) return true;
    throw new Error(`stored offsets of page ${s.page} were not read before offset ${offset} was looked up (call prepare first)`);
  }
}
