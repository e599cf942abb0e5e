/**
 * The exactly-once core (consumer/partitionIngest.ts) driven through every crash point with in-memory twins of our
 * own interfaces:
 * - a ClickHouse twin with a raw table and a rollup fed by it (a materialized view), three ClickHouse partitions per
 *   insert (one part each), deduplication by token where it is switched on (ClickHouse 21+ and the embedded engine)
 *   or by each part's rows (a replicated table on 18.16: only a batch sent again identically is recognized), and
 *   fenceable entry tables; an insert can fail or crash before, in the middle of (some parts landed), between
 *   the raw table and its rollup, or after it; and it can be *orphaned*: the client gives up while the request
 *   waits at the server, which runs it later, at a random moment of the next owner's work (during its recovery
 *   reads too), unless the entry it was sent through was fenced by then;
 * - a Kafka twin whose committed offsets carry metadata (the ledger), and whose commits can fail or die;
 * - a "process" that is killed and restarted from the committed offset.
 * After any sequence, every good offset is stored exactly once in the raw table and (where rollups exist) exactly
 * once in the rollup, and every poison one is dead-lettered. Two control runs show the twin can see the failures:
 * with fences that do nothing, orphans double rows; without deduplication, rollups lose rows.
 */
import { describe, expect, it } from 'vitest';
import { ApilogError, DecodeError } from '../../runtime/errors.ts';
import { RowsRejectedError } from '../../clickhouse/errors.ts';
import type { DeadLetter } from '../../consumer/deadLetters.ts';
import { CLEAN_METADATA, parseLedger } from '../../consumer/ledger.ts';
import {
  PartitionIngest, PartitionLostError, type CommittedOffset, type InsertAttempt, type PartitionLease, type RowStore,
} from '../../consumer/partitionIngest.ts';
import { PAGE_SIZE, type StoredPage } from '../../consumer/storedOffsets.ts';
import { prng } from '../../producer/syntheticEvents.ts';

/** The process dies here (SIGKILL): nothing after this point runs. */
class Crash extends Error {}

type InsertOutcome =
  | 'ok' | 'fail-before' | 'fail-partial' | 'fail-before-rollup' | 'fail-after'
  | 'crash-before' | 'crash-partial' | 'crash-before-rollup' | 'crash-after'
  | 'orphan' | 'reject';
type CommitOutcome = 'ok' | 'fail' | 'crash-before' | 'crash-after' | 'lost';

const retriable = () => new ApilogError('ClickHouse unreachable', { retriable: true });
const PARTS = 3; // ClickHouse partitions an insert spans: offset % 3
const isRejected = (offset: number) => offset % 97 === 13; // ClickHouse rejects the row (a data error)

interface Landing {
  readonly offsets: readonly number[];
  readonly attempt: InsertAttempt;
}

class MemoryClickHouse implements RowStore {
  /** Offsets in the raw table, with repeats. */
  readonly raw: number[] = [];
  /** Offsets in the rollup (what the materialized view aggregated), with repeats. */
  readonly rollup: number[] = [];
  private readonly rawBlocks = new Set<string>();
  private readonly rollupBlocks = new Set<string>();
  private readonly liveEntries = new Set<string>();
  private currentEntry: string | undefined;
  private entryCount = 0;
  /** Requests the client gave up on, which the server has not run yet. */
  readonly orphans: Landing[] = [];
  insertPlan: () => InsertOutcome = () => 'ok';
  queryFails = 0;
  inserts = 0;
  /** Offsets returned by stored-offset reads (recovery must not grow with the table). */
  offsetsRead = 0;
  /** Called before each read of stored offsets: the driver runs orphans then, at random. */
  beforeRead: () => void = () => undefined;
  /** Control: a fence that does nothing (what the consumer had before entries). */
  brokenFence = false;
  fenced: string[] = [];

  constructor(
    readonly deduplicates: boolean,
    /** Inserts go through entries (a server); false: the embedded engine (nothing outlives the process). */
    readonly entries: boolean,
    /**
     * Deduplication by the block's content, not its token (a replicated table on 18.16): a part is dropped when a
     * part with the same rows landed before. Only a batch sent again identically is recognized.
     */
    readonly byContent = false,
  ) {}

  async entry(): Promise<string | undefined> {
    if (!this.entries) return undefined;
    if (this.currentEntry === undefined) {
      this.currentEntry = `t__in_${this.entryCount++}`;
      this.liveEntries.add(this.currentEntry);
    }
    return this.currentEntry;
  }

  async fence(entry: string): Promise<void> {
    this.fenced.push(entry);
    if (this.currentEntry === entry) this.currentEntry = undefined;
    if (!this.brokenFence) this.liveEntries.delete(entry);
  }

  /** The server runs one orphaned request now (if any). */
  runOrphan(rand: () => number): void {
    if (this.orphans.length === 0) return;
    const [landing] = this.orphans.splice(Math.floor(rand() * this.orphans.length), 1);
    this.land(landing!, 'all');
  }

  runAllOrphans(): void {
    while (this.orphans.length > 0) this.land(this.orphans.shift()!, 'all');
  }

  /** Writes `landing`'s parts (all, or parts 0 and 2 only) and then, for 'all', the rollup. False when fenced. */
  private land(landing: Landing, how: 'all' | 'some-parts' | 'raw-only'): boolean {
    const { attempt, offsets } = landing;
    if (attempt.entry !== undefined && !this.liveEntries.has(attempt.entry)) return false; // the entry was dropped
    for (let part = 0; part < PARTS; part++) {
      if (how === 'some-parts' && part === 1) continue;
      const rows = offsets.filter((o) => o % PARTS === part);
      if (rows.length === 0) continue; // no part for a ClickHouse partition the insert has no rows of
      const block = this.byContent ? `${part}:${rows.join(',')}` : `${attempt.token}#${part}`;
      if (this.deduplicates && this.rawBlocks.has(block)) continue;
      this.rawBlocks.add(block);
      this.raw.push(...rows);
    }
    if (how !== 'all') return true;
    const rollupBlock = this.byContent ? offsets.join(',') : attempt.token;
    if (this.deduplicates && this.rollupBlocks.has(rollupBlock)) return true;
    this.rollupBlocks.add(rollupBlock);
    this.rollup.push(...offsets);
    return true;
  }

  async insert(body: Buffer, _rows: number, _layout: unknown, attempt: InsertAttempt): Promise<void> {
    this.inserts++;
    const offsets = body.toString('utf8').trim().split('\n').map((l) => (JSON.parse(l) as { _offset: number })._offset);
    if (offsets.some(isRejected)) throw new RowsRejectedError('Code: 27. Cannot parse input', 27); // the whole body
    const outcome = this.insertPlan();
    if (outcome === 'reject') throw new RowsRejectedError('Code: 27. Cannot parse input', 27);
    if (outcome === 'crash-before') throw new Crash();
    if (outcome === 'fail-before') throw retriable();
    const landing = { offsets, attempt };
    if (outcome === 'orphan') {
      this.orphans.push(landing); // the server has the request and will run it, later
      throw retriable();
    }
    const how = outcome === 'fail-partial' || outcome === 'crash-partial' ? 'some-parts' : outcome.endsWith('before-rollup') ? 'raw-only' : 'all';
    if (!this.land(landing, how)) {
      throw new ApilogError(`entry ${attempt.entry} was fenced`, { retriable: true });
    }
    if (outcome.startsWith('crash')) throw new Crash();
    if (outcome.startsWith('fail')) throw retriable();
  }

  private read(): void {
    this.beforeRead();
    if (this.queryFails > 0) {
      this.queryFails--;
      throw retriable();
    }
  }

  async storedOffsets(_topic: string, _partition: number, from: number, to?: number): Promise<number[]> {
    this.read();
    const found = this.raw.filter((o) => o >= from && o <= (to ?? Infinity));
    this.offsetsRead += found.length;
    return found;
  }

  async storedPages(_topic: string, _partition: number, from: number, pageSize: number): Promise<StoredPage[]> {
    this.read();
    const pages = new Map<number, { rows: number; lo: number; hi: number }>();
    for (const o of this.raw) {
      if (o < from) continue;
      const n = Math.floor(o / pageSize);
      const p = pages.get(n) ?? { rows: 0, lo: o, hi: o };
      p.rows++;
      p.lo = Math.min(p.lo, o);
      p.hi = Math.max(p.hi, o);
      pages.set(n, p);
    }
    return [...pages].sort((a, b) => a[0] - b[0]).map(([page, p]) => ({ page, ...p }));
  }
}

class MemoryKafka {
  committed: CommittedOffset = { offset: -1, metadata: null };
  commitPlan: () => CommitOutcome = () => 'ok';
  readonly deadLetters: DeadLetter[] = [];

  lease(): PartitionLease & { lost: boolean } {
    const self = this;
    return {
      lost: false,
      check() {
        if (this.lost) throw new PartitionLostError('t:0');
      },
      heartbeat: async () => undefined,
      async commit(offset: number, metadata: string) {
        if (this.lost) throw new PartitionLostError('t:0 (commit refused: generation over)');
        const outcome = self.commitPlan();
        if (outcome === 'crash-before') throw new Crash();
        if (outcome === 'fail') throw retriable();
        if (outcome === 'lost') {
          this.lost = true;
          throw new PartitionLostError('t:0 (commit refused)');
        }
        self.committed = { offset, metadata };
        if (outcome === 'crash-after') throw new Crash();
      },
      committed: async () => self.committed,
    };
  }

  /** Where the next owner resumes: the committed offset, or the start. */
  get position(): number {
    return Math.max(0, this.committed.offset);
  }
}

const noWait = { initialMs: 1, maxMs: 1, sleep: async () => undefined };
const isPoison = (offset: number) => offset % 50 === 7; // cannot be decoded: dead letter
const letter = (offset: number): DeadLetter => ({
  topic: 't', partition: 0, offset: String(offset), key: null, value: null,
  error: new DecodeError('corrupt-avro', `poison at ${offset}`),
});

interface RunResult {
  crashes: number;
  table: MemoryClickHouse;
  kafka: MemoryKafka;
}

const ingestFor = (table: MemoryClickHouse, kafka: MemoryKafka, unreformable?: Set<string>) =>
  new PartitionIngest('t', 0, {
    rows: table, deadLetters: { send: async (l) => void kafka.deadLetters.push(...l) }, backoff: noWait, ...(unreformable ? { unreformable } : {}),
  });

/**
 * Consumes a log of `size` offsets into the table, restarting the "process" after each Crash, until the log is done.
 * Fetches are random-sized and sometimes re-deliver offsets already taken (as kafkajs does after a seek). Orphaned
 * requests run at random moments: between steps, and before stored-offset reads (inside a recovery).
 */
async function run(size: number, seed: number, table: MemoryClickHouse, kafka: MemoryKafka, maxBatchRows = 40, pipelined = false): Promise<RunResult> {
  const rand = prng(seed);
  let crashes = 0;
  const unreformable = new Set<string>();
  table.beforeRead = () => {
    if (rand() < 0.3) table.runOrphan(rand);
  };
  for (let life = 0; life < 500; life++) {
    const ingest = ingestFor(table, kafka, unreformable);
    const lease = kafka.lease();
    try {
      let position = kafka.position;
      await ingest.recover(position, lease);
      while (position < size) {
        const from = rand() < 0.1 ? Math.max(kafka.position, position - 5) : position; // a re-fetch overlaps
        const to = Math.min(size, position + 1 + Math.floor(rand() * 30));
        await ingest.prepare(from, to - 1, lease);
        for (let offset = from; offset < to; offset++) {
          if (ingest.reformComplete) {
            if (ingest.flushing) await ingest.settle();
            ingest.startFlush(lease);
          }
          if (!ingest.admit(offset)) continue;
          if (isPoison(offset)) ingest.addDeadLetter(offset, letter(offset));
          else ingest.addRow(offset, `{"_offset":${offset}}\n`);
        }
        position = to;
        if (rand() < 0.2) table.runOrphan(rand);
        const full = ingest.pending.rows >= maxBatchRows || rand() < 0.3;
        if (pipelined) {
          // As the consumer does: a full batch is inserted while the next messages are added; at most one in flight.
          if (ingest.canCut && (full || ingest.reformComplete)) {
            if (ingest.flushing) await ingest.settle();
            ingest.startFlush(lease);
          }
          if (rand() < 0.3) await ingest.settle(); // the end of a kafkajs batch
          else await Promise.resolve(); // let the flush in progress run a step
        } else if (ingest.canCut && (full || ingest.reformComplete)) {
          await ingest.flush(lease);
        }
      }
      await ingest.flush(lease);
      table.runAllOrphans(); // whatever the server still holds runs at last
      return { crashes, table, kafka };
    } catch (error) {
      // A crash, or the partition's batch abandoned (a lost lease): the next "owner" starts from what is committed.
      if (!(error instanceof Crash) && !(error instanceof PartitionLostError)) throw error;
      await ingest.settle().catch(() => undefined);
      crashes++;
    }
  }
  throw new Error('did not finish in 500 lives');
}

interface Tally {
  missing: number[];
  doubled: number[];
}

/** `never`: offsets that must not be stored (the random runs' poison and rejected rows). */
function tally(stored: readonly number[], size: number, never: (offset: number) => boolean = () => false): Tally {
  const counts = new Map<number, number>();
  for (const o of stored) counts.set(o, (counts.get(o) ?? 0) + 1);
  const missing: number[] = [];
  const doubled: number[] = [];
  for (let o = 0; o < size; o++) {
    const n = counts.get(o) ?? 0;
    if (never(o)) {
      if (n > 0) doubled.push(o); // never stored
      continue;
    }
    if (n === 0) missing.push(o);
    if (n > 1) doubled.push(o);
  }
  return { missing, doubled };
}

function expectExactlyOnce(result: RunResult, size: number): void {
  const never = (o: number) => isPoison(o) || isRejected(o);
  expect(tally(result.table.raw, size, never)).toEqual({ missing: [], doubled: [] });
  if (result.table.deduplicates) expect(tally(result.table.rollup, size, never)).toEqual({ missing: [], doubled: [] });
  expect(result.kafka.committed.offset).toBe(size);
  expect(parseLedger(result.kafka.committed.metadata).kind).toBe('clean');
  const lettered = new Set(result.kafka.deadLetters.map((l) => Number(l.offset)));
  const rejectedByClickHouse = new Set(result.kafka.deadLetters.filter((l) => l.error.reason === 'does-not-fit-table').map((l) => Number(l.offset)));
  for (let o = 0; o < size; o++) if (isPoison(o)) expect(lettered.has(o)).toBe(true);
  for (let o = 0; o < size; o++) if (isRejected(o) && !isPoison(o)) expect(rejectedByClickHouse.has(o)).toBe(true);
}

/** An outcome sequence: `first` once at the n-th call, then 'ok'. */
const once = <T extends string>(at: number, first: T) => {
  let n = 0;
  return () => (n++ === at ? first : ('ok' as T));
};

/** The four kinds of ClickHouse the consumer meets. */
const ENGINES = [
  // Tokens, no entries: a late request finds its token taken.
  { name: 'server with deduplication (current ClickHouse)', deduplicates: true, entries: false, orphans: true, byContent: false },
  // Entries and fences: a late request finds its entry gone.
  { name: 'server without deduplication (18.16)', deduplicates: false, entries: true, orphans: true, byContent: false },
  // A replicated table on 18.16: no tokens; a late request, or a batch sent again, is the same block and is dropped.
  { name: 'replicated table without tokens (18.16: deduplication by content)', deduplicates: true, entries: false, orphans: true, byContent: true },
  // In-process: nothing outlives the consumer.
  { name: 'embedded engine', deduplicates: true, entries: false, orphans: false, byContent: false },
] as const;
const engineTable = (e: (typeof ENGINES)[number]) => new MemoryClickHouse(e.deduplicates, e.entries, e.byContent);

const insertPoints: InsertOutcome[] = [
  'crash-before', 'crash-partial', 'crash-before-rollup', 'crash-after',
  'fail-before', 'fail-partial', 'fail-before-rollup', 'fail-after', 'orphan',
];

describe('exactly-once core: every crash point (unit, in-memory twins)', () => {
  for (const engine of ENGINES) {
    describe(engine.name, () => {
      for (const point of insertPoints) {
        if (point === 'orphan' && !engine.orphans) continue; // nothing outlives the embedded engine's process
        for (const at of [0, 1, 3]) {
          it(`insert ${point} at insert #${at}: each offset stored once (raw and rollup), commit reaches the end`, async () => {
            const table = engineTable(engine);
            const kafka = new MemoryKafka();
            table.insertPlan = once(at, point);
            const result = await run(400, 7 + at, table, kafka);
            expect(result.crashes).toBe(point.startsWith('crash') ? 1 : 0);
            expectExactlyOnce(result, 400);
          });
        }
      }

      for (const point of ['crash-before', 'crash-after', 'fail', 'lost'] as CommitOutcome[]) {
        it(`commit ${point} (the second commit: an intent or a clean record): the next owner completes the batch once`, async () => {
          const table = engineTable(engine);
          const kafka = new MemoryKafka();
          kafka.commitPlan = once(2, point);
          expectExactlyOnce(await run(300, 3, table, kafka), 300);
        });
      }

      for (const pipelined of [false, true]) {
        const how = pipelined ? 'pipelined flushes (startFlush while adding, settle later)' : 'one flush at a time';
        it(`random crashes, failures and orphaned inserts at every step, 150 seeds, ${how}: nothing lost, nothing doubled`, async () => {
          let totalCrashes = 0;
          for (let seed = 1; seed <= 150; seed++) {
            const rand = prng(seed * (pipelined ? 104729 : 7919));
            const table = engineTable(engine);
            const kafka = new MemoryKafka();
            const pick = <T>(options: readonly T[]) => options[Math.floor(rand() * options.length)]!;
            const points = engine.orphans ? insertPoints : insertPoints.filter((p) => p !== 'orphan');
            table.insertPlan = () => (rand() < 0.25 ? pick(points) : 'ok');
            kafka.commitPlan = () => (rand() < 0.15 ? pick(['crash-before', 'crash-after', 'fail'] as CommitOutcome[]) : 'ok');
            const result = await run(250, seed, table, kafka, 1 + Math.floor(rand() * 60), pipelined);
            totalCrashes += result.crashes;
            expectExactlyOnce(result, 250);
          }
          expect(totalCrashes).toBeGreaterThan(150); // the scenarios really crashed
        });
      }
    });
  }

  it('control: with fences that do nothing, orphaned inserts double rows (the twin sees what fencing prevents)', async () => {
    let doubled = 0;
    for (let seed = 1; seed <= 20; seed++) {
      const rand = prng(seed);
      const table = new MemoryClickHouse(false, true);
      table.brokenFence = true;
      const kafka = new MemoryKafka();
      table.insertPlan = () => (rand() < 0.2 ? 'orphan' : 'ok');
      const result = await run(250, seed, table, kafka);
      doubled += tally(result.table.raw, 250, (o) => isPoison(o) || isRejected(o)).doubled.length;
    }
    expect(doubled).toBeGreaterThan(0);
  });

  it('control: without deduplication, an insert that reached the raw table but not its rollup loses rollup rows', async () => {
    // What every consumer did before the ledger: the stored offsets are skipped, the rollup never gets them.
    const table = new MemoryClickHouse(false, false);
    const kafka = new MemoryKafka();
    table.insertPlan = once(1, 'crash-before-rollup');
    const result = await run(300, 5, table, kafka);
    const never = (o: number) => isPoison(o) || isRejected(o);
    expect(tally(result.table.raw, 300, never)).toEqual({ missing: [], doubled: [] });
    expect(tally(result.table.rollup, 300, never).missing.length).toBeGreaterThan(0);
  });

  it('an orphaned insert that runs while the next owner recovers lands nowhere: the owner fenced its entry first', async () => {
    const table = new MemoryClickHouse(false, true);
    const kafka = new MemoryKafka();
    const first = ingestFor(table, kafka);
    const lease = kafka.lease();
    await first.recover(0, lease);
    for (let o = 0; o < 10; o++) if (first.admit(o)) first.addRow(o, `{"_offset":${o}}\n`);
    table.insertPlan = () => {
      lease.lost = true; // the client gives up and the member is evicted while the request waits at the server
      return 'orphan';
    };
    await expect(first.flush(lease)).rejects.toBeInstanceOf(PartitionLostError);
    expect(table.orphans).toHaveLength(1);
    expect(parseLedger(kafka.committed.metadata)).toMatchObject({ kind: 'intent', last: 9, entry: 't__in_0' });
    // The next owner reads the ledger; the orphan runs just before it reads the stored offsets.
    table.insertPlan = () => 'ok';
    table.beforeRead = () => table.runAllOrphans();
    const next = ingestFor(table, kafka);
    const recovery = await next.recover(0, kafka.lease());
    expect(table.fenced).toEqual(['t__in_0']);
    expect(recovery).toMatchObject({ ledger: 'intent', stored: 0 });
    expect(table.raw).toEqual([]); // it ran after the fence: nothing landed
    for (let o = 0; o < 12; o++) if (next.admit(o)) next.addRow(o, `{"_offset":${o}}\n`);
    await next.flush(kafka.lease());
    expect([...table.raw].sort((a, b) => a - b)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
  });

  it('a batch that reached the raw table but not its rollup is sent again whole, with its token, after a crash', async () => {
    const table = new MemoryClickHouse(true, false);
    const kafka = new MemoryKafka();
    const first = ingestFor(table, kafka);
    const lease = kafka.lease();
    await first.recover(0, lease);
    for (let o = 0; o < 10; o++) if (first.admit(o)) first.addRow(o, `{"_offset":${o}}\n`);
    table.insertPlan = once(0, 'crash-before-rollup');
    await expect(first.flush(lease)).rejects.toBeInstanceOf(Crash);
    expect(table.raw).toHaveLength(10);
    expect(table.rollup).toHaveLength(0);
    const next = ingestFor(table, kafka);
    expect(await next.recover(0, kafka.lease())).toMatchObject({ ledger: 'intent', reformTo: 9 });
    for (let o = 0; o < 12; o++) {
      if (next.reformComplete) next.startFlush(kafka.lease());
      if (next.admit(o)) next.addRow(o, `{"_offset":${o}}\n`);
    }
    await next.flush(kafka.lease());
    expect(tally(table.raw, 12)).toEqual({ missing: [], doubled: [] });
    expect(tally(table.rollup, 12)).toEqual({ missing: [], doubled: [] });
    expect(kafka.committed).toEqual({ offset: 12, metadata: CLEAN_METADATA });
  });

  it('a batch formed again cannot be cut short, and a layout change inside it falls back to skipping its stored offsets', async () => {
    const table = new MemoryClickHouse(true, false);
    const kafka = new MemoryKafka();
    const unreformable = new Set<string>();
    const first = ingestFor(table, kafka, unreformable);
    await first.recover(0, kafka.lease());
    for (let o = 0; o < 10; o++) if (first.admit(o)) first.addRow(o, `{"_offset":${o}}\n`);
    table.insertPlan = once(0, 'crash-partial');
    await expect(first.flush(kafka.lease())).rejects.toBeInstanceOf(Crash);
    const next = ingestFor(table, kafka, unreformable);
    await next.recover(0, kafka.lease());
    for (let o = 0; o < 5; o++) if (next.admit(o)) next.addRow(o, `{"_offset":${o}}\n`);
    expect(next.canCut).toBe(false);
    expect(() => next.startFlush(kafka.lease())).toThrow(/cannot be cut before/);
    expect(() => next.cutForLayout(kafka.lease())).toThrow(/cannot be formed again/);
    // The partition is read again: this time the stored offsets of the batch are skipped instead.
    const third = ingestFor(table, kafka, unreformable);
    const recovery = await third.recover(0, kafka.lease());
    expect(recovery.reformTo).toBeUndefined();
    for (let o = 0; o < 10; o++) if (third.admit(o)) third.addRow(o, `{"_offset":${o}}\n`);
    await third.flush(kafka.lease());
    expect(tally(table.raw, 10)).toEqual({ missing: [], doubled: [] });
  });

  it('recovery without a ledger reads page summaries, not every stored offset: a million stored offsets load none', async () => {
    // A new group (no committed offset) on a table that already holds a million rows of this partition.
    const table = new MemoryClickHouse(false, true);
    for (let o = 0; o < 1_000_000; o++) table.raw.push(o);
    const kafka = new MemoryKafka();
    const ingest = ingestFor(table, kafka);
    const lease = kafka.lease();
    const recovery = await ingest.recover(0, lease);
    expect(recovery).toMatchObject({ ledger: 'unknown', stored: 10 });
    expect(table.offsetsRead).toBe(0);
    await ingest.prepare(0, 999, lease);
    for (let o = 0; o < 1000; o++) expect(ingest.admit(o)).toBe(false);
    expect(ingest.pending.skipped).toBe(1000);
    expect(table.offsetsRead).toBe(0);
  });

  it('recovery without a ledger reads exact offsets only for pages with holes, and only when the consumer reaches them', async () => {
    const table = new MemoryClickHouse(false, true);
    for (let o = 0; o < 300_000; o++) if (o !== 150_000) table.raw.push(o); // a hole in the second page
    const kafka = new MemoryKafka();
    const ingest = ingestFor(table, kafka);
    const lease = kafka.lease();
    await ingest.recover(0, lease);
    await ingest.prepare(0, 99_999, lease);
    expect(table.offsetsRead).toBe(0);
    await ingest.prepare(149_990, 150_010, lease);
    expect(table.offsetsRead).toBe(PAGE_SIZE - 1); // one page, read once
    for (let o = 0; o < 149_990; o++) ingest.admit(o); // (taken as skipped; the consumer would fetch them first)
    for (let o = 149_990; o <= 150_010; o++) expect(ingest.admit(o)).toBe(o === 150_000);
  });

  it('recovery after an intent reads the stored offsets of that batch only', async () => {
    const table = new MemoryClickHouse(false, true);
    for (let o = 0; o < 500_000; o++) table.raw.push(o);
    const kafka = new MemoryKafka();
    const lease = kafka.lease();
    await lease.commit(500_000, CLEAN_METADATA);
    const first = ingestFor(table, kafka);
    await first.recover(500_000, lease);
    for (let o = 500_000; o < 500_040; o++) if (first.admit(o)) first.addRow(o, `{"_offset":${o}}\n`);
    table.insertPlan = once(0, 'crash-partial');
    await expect(first.flush(lease)).rejects.toBeInstanceOf(Crash);
    table.offsetsRead = 0;
    const next = ingestFor(table, kafka);
    const recovery = await next.recover(500_000, kafka.lease());
    expect(recovery.ledger).toBe('intent');
    expect(table.offsetsRead).toBeLessThanOrEqual(40);
    expect(table.offsetsRead).toBeGreaterThan(0);
  });

  it('the recovery query failing (ClickHouse down) is retried, not skipped', async () => {
    const table = new MemoryClickHouse(false, true);
    const kafka = new MemoryKafka();
    table.insertPlan = once(1, 'crash-partial');
    table.queryFails = 5;
    expectExactlyOnce(await run(200, 11, table, kafka), 200);
  });

  it('startFlush: the next batch is inserted only after the previous one is committed, in offset order', async () => {
    const events: string[] = [];
    let release: () => void = () => undefined;
    const gate = new Promise<void>((r) => (release = r));
    const kafka = new MemoryKafka();
    const table = new MemoryClickHouse(true, false);
    const insert = table.insert.bind(table);
    table.insert = async (body, rows, layout, attempt) => {
      const first = (JSON.parse(body.toString('utf8').split('\n')[0]!) as { _offset: number })._offset;
      events.push(`insert ${first}`);
      if (first === 0) await gate;
      await insert(body, rows, layout, attempt);
    };
    const ingest = ingestFor(table, kafka);
    const lease = kafka.lease();
    const commit = lease.commit.bind(lease);
    lease.commit = async (offset, metadata) => {
      events.push(`${parseLedger(metadata).kind} ${offset}`);
      await commit(offset, metadata);
    };
    await ingest.recover(0, lease);
    for (let o = 0; o < 5; o++) if (ingest.admit(o)) ingest.addRow(o, `{"_offset":${o}}\n`);
    ingest.startFlush(lease);
    for (let o = 5; o < 8; o++) if (ingest.admit(o)) ingest.addRow(o, `{"_offset":${o}}\n`); // added while the insert runs
    ingest.startFlush(lease);
    await new Promise((r) => setTimeout(r, 5));
    expect(events).toEqual(['intent 0', 'insert 0']); // the second batch waits for the first
    release();
    await ingest.settle();
    expect(events).toEqual(['intent 0', 'insert 0', 'clean 5', 'intent 5', 'insert 5', 'clean 8']);
    expect(kafka.committed.offset).toBe(8);
    expect(ingest.flushing).toBe(false);
  });

  it('startFlush: a failed flush stops the ones queued after it, and settle() reports it', async () => {
    const table = new MemoryClickHouse(true, true);
    const kafka = new MemoryKafka();
    const ingest = ingestFor(table, kafka);
    const lease = kafka.lease();
    await ingest.recover(0, lease);
    for (let o = 0; o < 3; o++) if (ingest.admit(o)) ingest.addRow(o, `{"_offset":${o}}\n`);
    table.insertPlan = () => {
      lease.lost = true;
      return 'ok';
    };
    ingest.startFlush(lease);
    for (let o = 3; o < 6; o++) if (ingest.admit(o)) ingest.addRow(o, `{"_offset":${o}}\n`);
    ingest.startFlush(lease);
    await expect(ingest.settle()).rejects.toBeInstanceOf(PartitionLostError);
    expect(table.inserts).toBe(1); // the second batch was never inserted
    expect(parseLedger(kafka.committed.metadata).kind).toBe('intent');
  });

  it('due(): flushes by rows, by bytes, and by age only once caught up', async () => {
    let now = 1000;
    const ingest = new PartitionIngest('t', 0, { rows: new MemoryClickHouse(true, false), deadLetters: { send: async () => undefined }, backoff: noWait, now: () => now });
    const limits = { maxBatchRows: 3, maxBatchBytes: 1000, maxBatchAgeMs: 500 };
    await ingest.recover(0, new MemoryKafka().lease());
    expect(ingest.due(limits, true)).toBeUndefined();
    ingest.admit(0);
    ingest.addRow(0, 'x'.repeat(10));
    expect(ingest.due(limits, true)).toBeUndefined();
    now += 500;
    expect(ingest.due(limits, false)).toBeUndefined();
    expect(ingest.due(limits, true)).toBe('age');
    ingest.admit(1);
    ingest.addRow(1, 'x'.repeat(2000));
    expect(ingest.due(limits, false)).toBe('bytes');
    ingest.admit(2);
    ingest.addRow(2, 'x');
    expect(ingest.due(limits, false)).toBe('rows');
  });

  it("a batch's age counts from its first row's Kafka timestamp when that is in the past, else from now", async () => {
    let now = 10_000;
    const ingest = new PartitionIngest('t', 0, { rows: new MemoryClickHouse(true, false), deadLetters: { send: async () => undefined }, backoff: noWait, now: () => now });
    const limits = { maxBatchRows: 100, maxBatchBytes: 100_000, maxBatchAgeMs: 1000 };
    const lease = new MemoryKafka().lease();
    await ingest.recover(0, lease);
    ingest.admit(0);
    ingest.addRow(0, '{"_offset":0}\n', undefined, now - 700); // produced 700 ms ago: due in 300 ms
    ingest.admit(1);
    ingest.addRow(1, '{"_offset":1}\n', undefined, now - 5000); // not the first row: the batch's age stays its first row's
    expect(ingest.msUntilAge(limits)).toBe(300);
    now += 300;
    expect(ingest.due(limits, true)).toBe('age');
    await ingest.flush(lease);
    ingest.admit(2);
    ingest.addRow(2, '{"_offset":2}\n', undefined, now + 60_000); // a producer clock ahead of this one: counted from now
    expect(ingest.msUntilAge(limits)).toBe(1000);
  });
});
