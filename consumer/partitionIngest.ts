/**
 * Exactly-once ingestion of one Kafka partition into ClickHouse, with no state store beyond Kafka and ClickHouse.
 *
 * Every row carries its `_topic`, `_partition`, `_offset`. The partition's committed Kafka offset carries a
 * write-ahead ledger (ledger.ts): before a batch is sent, its range, token and entry; after it is durable, "clean".
 * The group coordinator takes commits only from the current generation, so a new owner reads the last word of every
 * earlier one.
 *
 * The contract, per partition, for one owner (one PartitionIngest per partition per group generation):
 * 1. `recover(from)` before the first message reads the ledger. Clean: nothing after it was sent, nothing to look
 *    for. An intent for [C, L]: where the table deduplicates, the same batch is formed again (`reform`) and sent with
 *    the same token: the table and each of its rollups take it once, whichever of them an earlier attempt reached,
 *    and an earlier attempt's request that runs late finds the token taken. Without deduplication (18.16) the entry
 *    it names is fenced first (nothing the earlier owner sent can land after this), then the offsets of [C, L]
 *    already stored are read (one batch at most) and skipped. No ledger of ours (a new group on an existing table,
 *    offsets reset): ClickHouse is read page by page (storedOffsets.ts), so the work does not grow with the table.
 * 2. `admit(offset)` for every fetched message, in order: false for offsets already taken (a re-fetch) or stored.
 *    The caller decodes admitted messages and calls `addEncoded`/`addRow` or `addDeadLetter`. No await per message
 *    (`prepare` reads pages of stored offsets once per fetch, when there are any).
 * 3. `flush(lease)` (or `startFlush(lease)` … `settle()`): commits the intent, inserts the rows, sends the dead
 *    letters, commits the next offset as clean. An insert whose outcome is unknown (a timeout, a lost connection)
 *    may still land: its entry is fenced and a new intent names the next one before anything else happens; then
 *    the batch is sent again with its token (deduplicating tables) or the stored offsets of its range are read and
 *    only the missing rows are sent. Rows ClickHouse rejects as data errors are isolated by splitting and
 *    dead-lettered. `startFlush` runs these steps while the caller keeps adding messages to the next batch; at most
 *    one flush runs per partition, in offset order, and one that failed stops those queued after it. `settle()`
 *    waits for it and throws its error; the caller settles before eachBatch returns.
 *
 * Crash points and what recovery does (each driven by test/unit/consumerExactlyOnce.test.ts):
 * - before the intent: nothing sent → re-consumed from the committed (clean) offset.
 * - after the intent, during or after the insert (none, some or all parts landed, rollups behind the table or not):
 *   the entry is fenced and the batch sent again with its token, or its stored offsets skipped.
 * - during the commit: either committed (clean, normal resume) or not (as above).
 * The lease is checked before every attempt: no attempt starts once the group is rebalancing, the member was
 * evicted, or retries went on longer than the rebalance timeout; the partition is then abandoned (and rewound).
 */
import { randomBytes } from 'node:crypto';
import { ApilogError, DecodeError, describeError } from '../runtime/errors.ts';
import { backoffDelay, isRetriable, retrying, wait, type BackoffPolicy } from '../runtime/backoff.ts';
import { RowsRejectedError } from '../clickhouse/errors.ts';
import type { DeadLetter } from './deadLetters.ts';
import { cleanMetadata, intentMetadata, parseLedger, type LedgerRecord } from './ledger.ts';
import { PartitionBatch } from './partitionBatch.ts';
import type { RowEncoder } from './rowBinary.ts';
import type { RowLayout } from '../clickhouse/sink.ts';
import { StoredOffsets, type StoredOffsetsSource } from './storedOffsets.ts';

/** How one insert is sent (see ClickHouseRows). */
export interface InsertAttempt {
  /** The batch's deduplication token (sent where the table deduplicates). */
  readonly token: string;
  /** The entry table it goes through, as `entry()` returned it (undefined without entries). */
  readonly entry: string | undefined;
  /** What it is, for its query id: `topic/partition/first-last`. */
  readonly label: string;
}

/** The rows' side: ClickHouse. */
export interface RowStore extends StoredOffsetsSource {
  /** Whether sending a batch again with its token stores it once, in the table and its rollups. */
  readonly deduplicates: boolean;
  /**
   * The entry inserts go through now, made if need be (undefined when inserts cannot outlive this process). With
   * `layout`, one whose columns take those rows; throws ColumnsChangedError when the table cannot.
   */
  entry(layout?: RowLayout): Promise<string | undefined>;
  /** After this resolves nothing sent through `entry` can land any more (ClickHouseRows.fence). */
  fence(entry: string): Promise<void>;
  /**
   * Inserts a body of `rows` rows in `layout` (JSONEachRow when undefined). On rejection the outcome is unknown:
   * none, some or all rows may be stored, now or later (until the attempt's entry is fenced).
   */
  insert(body: Buffer, rows: number, layout: RowLayout | undefined, attempt: InsertAttempt): Promise<void>;
}

/** Where undecodable records go, acknowledged before their offsets are committed. At-least-once. */
export interface DeadLetterStore {
  send(letters: readonly DeadLetter[]): Promise<void>;
}

/** A partition's committed offset (-1 when none) and the metadata committed with it. */
export interface CommittedOffset {
  readonly offset: number;
  readonly metadata: string | null;
}

/** This process's right to write a partition, valid for one group generation. */
export interface PartitionLease {
  /**
   * Throws PartitionLostError unless this process still owns the partition and may start an attempt: not once the
   * group is rebalancing, and not after retrying for longer than the rebalance timeout.
   */
  check(): void;
  /**
   * Keeps the group session alive while an insert or a retry runs; cheap when no heartbeat is due. Never rejects:
   * a heartbeat that shows the partition lost makes the next `check()` throw.
   */
  heartbeat(): Promise<void>;
  /** Commits `offset` with `metadata` for this partition (the generation's own commit; refused once it is over). */
  commit(offset: number, metadata: string): Promise<void>;
  /** The partition's committed offset and metadata, as the group coordinator has them now. */
  committed(): Promise<CommittedOffset>;
  /** Called when an operation failed and will be retried: starts the retry budget's clock. */
  failed?(): void;
}

export type RetriedOperation = 'insert' | 'stored-offsets' | 'dead-letters' | 'commit' | 'schemas' | 'fence' | 'ledger';

export interface IngestObserver {
  inserted(rows: number, bytes: number, seconds: number): void;
  retried(operation: RetriedOperation, error: unknown, attempt: number, delayMs: number): void;
  deadLettered(letters: readonly DeadLetter[]): void;
  skippedStored(count: number): void;
  committed(topic: string, partition: number, nextOffset: number): void;
}

export class PartitionLostError extends ApilogError {
  constructor(what: string) {
    super(`partition ${what} is no longer owned by this process; its batch is abandoned (ClickHouse keeps what is stored)`);
  }
}

/**
 * The batch being formed again after a recovery cannot be formed as it was: its rows now have several column lists
 * (the table's columns changed between the crash and the recovery). The partition is read again and recovers by
 * skipping the stored offsets of that batch instead.
 */
export class ReformConflictError extends ApilogError {
  constructor(what: string) {
    super(`the batch ${what} cannot be formed again as it was sent (its rows now fill other columns): recovering by skipping its stored offsets`);
  }
}

/** Where a crash can happen between the steps of a flush (see the contract above). */
export type CrashPoint = 'before-intent' | 'before-insert' | 'after-insert' | 'after-commit';
export const CRASH_POINTS: readonly CrashPoint[] = ['before-intent', 'before-insert', 'after-insert', 'after-commit'];

export interface IngestDeps {
  readonly rows: RowStore;
  /**
   * Called at each crash point; the chaos test passes one that SIGKILLs the process now and then, so that kills
   * land exactly between the steps, not only where timing happens to put them.
   */
  readonly crashPoint?: (point: CrashPoint) => void;
  readonly deadLetters: DeadLetterStore;
  readonly backoff: BackoffPolicy;
  readonly observer?: IngestObserver;
  readonly now?: () => number;
  /**
   * Intents whose batch could not be formed again (ReformConflictError), as `partition:token`: their recovery skips
   * stored offsets instead. Shared by the partition's successive PartitionIngests in one process.
   */
  readonly unreformable?: Set<string>;
}

export interface FlushLimits {
  readonly maxBatchRows: number;
  readonly maxBatchBytes: number;
  readonly maxBatchAgeMs: number;
}

export type FlushReason = 'rows' | 'bytes' | 'age';

/** What recovery found. */
export interface Recovery {
  readonly ledger: LedgerRecord['kind'];
  /** Stored offsets found (exact reads) or pages of them (scan). */
  readonly stored: number;
  /** The last offset of a batch being formed again, when one is. */
  readonly reformTo?: number;
  /** Rows of earlier owners may be stored up to here (the ledger's `upTo`). */
  readonly upTo?: number;
}

/** The route of a batch's inserts, shared by its attempts and split halves: the entry changes when one is fenced. */
interface Route {
  entry: string | undefined;
  /** The batch's range and token, as its intent names them (split halves carry tokens of their own). */
  readonly first: number;
  readonly last: number;
  readonly token: string;
}

export class PartitionIngest {
  private stored: StoredOffsets | undefined;
  /**
   * Rows of earlier owners may be stored up to this offset (-1: none): every commit says so (`upTo`) until the
   * committed offset is past it, so that a crash of this owner does not make its successor forget them.
   */
  private horizon = -1;
  /** While a batch is formed again: its last offset and token. */
  private reform: { readonly last: number; readonly token: string } | undefined;
  /** The next offset not yet taken; -1 before the first message. */
  private expected = -1;
  private batch: PartitionBatch;
  private committedNext = -1;
  private durable = -1;
  private readonly now: () => number;
  /** The flush in progress (startFlush), which later flushes chain after. */
  private inflight: Promise<PartitionBatch> | undefined;

  constructor(
    readonly topic: string,
    readonly partition: number,
    private readonly deps: IngestDeps,
  ) {
    this.batch = new PartitionBatch(topic, partition);
    this.now = deps.now ?? Date.now;
  }

  get recovered(): boolean {
    return this.stored !== undefined;
  }

  get pending(): PartitionBatch {
    return this.batch;
  }

  /** Every offset below this is stored (or dead-lettered) for sure; -1 before recovery. */
  get durableNext(): number {
    return this.durable;
  }

  /** The last offset committed by this owner + 1, or -1. */
  get committed(): number {
    return this.committedNext;
  }

  /** Whether the pending batch may be cut (flushed) now: not while a batch is formed again short of its last offset. */
  get canCut(): boolean {
    return this.reform === undefined || this.batch.last >= this.reform.last;
  }

  /** Whether the pending batch is a batch formed again that is complete: it must be cut before the next offset. */
  get reformComplete(): boolean {
    return this.reform !== undefined && this.batch.last >= this.reform.last;
  }

  /** Reads the ledger and what it says to read of ClickHouse; fences the entry it names. Retries until they answer. */
  async recover(from: number, lease: PartitionLease): Promise<Recovery> {
    const { rows } = this.deps;
    const committed = await this.retry('ledger', lease, () => lease.committed());
    // A ledger speaks for offsets from its own on; kafkajs may resume later (the committed offset was out of range).
    const record: LedgerRecord = committed.offset >= 0 && from >= committed.offset ? parseLedger(committed.metadata) : { kind: 'unknown' };
    const scan = () => this.retry('stored-offsets', lease, () => StoredOffsets.scan(rows, this.topic, this.partition, from));
    let recovery: Recovery;
    if (record.kind === 'unknown') {
      const stored = await scan();
      this.stored = stored;
      this.horizon = stored.highest;
      recovery = { ledger: 'unknown', stored: stored.pageCount };
    } else {
      const batch = record.kind === 'intent' ? record : undefined;
      if (batch?.entry !== undefined) {
        const entry = batch.entry;
        await this.retry('fence', lease, () => rows.fence(entry));
      }
      const batchLast = batch?.last ?? -1;
      const upTo = record.upTo ?? -1;
      const reformable = batch !== undefined && rows.deduplicates && from === committed.offset && from <= batchLast && !this.deps.unreformable?.has(`${this.partition}:${batch.token}`);
      let found: number[] = [];
      if (reformable) {
        // Send the same batch again with its token, whatever of it landed: the table and each rollup take it once, and
        // a late request of the earlier attempt finds its token taken.
        this.reform = { last: batchLast, token: batch.token };
      } else if (batch !== undefined && from <= batchLast) {
        // The ledger's batch, at most one batch of offsets, read exactly (its entry is fenced: this is final).
        found = await this.retry('stored-offsets', lease, () => rows.storedOffsets(this.topic, this.partition, from, batchLast));
      }
      // Beyond the batch, what earlier owners left (upTo) is read page by page: it may be a whole table's worth.
      this.stored = upTo > batchLast && upTo >= from ? await scan() : StoredOffsets.exact(found);
      // What is stored now is all there will be (fenced, or deduplicated): the bound to pass on is the highest found.
      this.horizon = this.stored.highest;
      recovery = { ledger: record.kind, stored: found.length, ...(this.reform ? { reformTo: batchLast } : {}), ...(upTo >= from ? { upTo } : {}) };
    }
    this.durable = from;
    return recovery;
  }

  /** The `upTo` every commit carries while rows of earlier owners may lie beyond it. */
  private upTo(next: number): number | undefined {
    return this.horizon >= next ? this.horizon : undefined;
  }

  /** Offsets read so far by recovery and `prepare` (tests: bounded). */
  get storedOffsetsLoaded(): number {
    return this.stored?.loaded ?? 0;
  }

  /** Reads what `admit` needs to know of stored offsets in [first, last] (a fetch); no query when nothing is stored. */
  async prepare(first: number, last: number, lease: PartitionLease): Promise<void> {
    const stored = this.stored!;
    if (stored.empty) return;
    await this.retry('stored-offsets', lease, () => stored.prepare(first, last));
  }

  /**
   * When the pending batch was opened, for its age: set by its first row (the batch keeps only that), no clock read
   * per message. `producedAt` (the Kafka timestamp of that row, ms) when given and in the past: the batch's age is its
   * oldest row's age, counted from when it was produced, not from when it was fetched. Counted from the fetch, a
   * caught-up partition's rows waited a fetch cycle in Kafka and then maxBatchAgeMs more in the batch (bench:latency:
   * p99 2.7-3.9 s at 10,000 events/s with a 1 s age). A producer's clock behind this one's makes its batches due
   * sooner (smaller inserts), never later. For any later row it answers 0, which the batch does not read (a small
   * integer, where the time would be a heap number per row).
   */
  private openedAt(producedAt?: number | string): number {
    if (!this.batch.isEmpty) return 0;
    const now = this.now();
    // Parsed here, for a batch's first row only: kafkajs gives the timestamp as text, and most rows are not first.
    const at = Number(producedAt);
    return at > 0 && at < now ? at : now;
  }

  /** Whether the message at `offset` must be decoded and added. Synchronous; call for every message in order. */
  admit(offset: number): boolean {
    if (offset < this.expected) return false;
    this.expected = offset + 1;
    const stored = this.stored!;
    // A batch formed again is sent whole (its token deduplicates what landed); stored offsets are skipped after it.
    if (!stored.empty && (this.reform === undefined || offset > this.reform.last) && stored.has(offset)) {
      this.batch.addStored(offset, this.openedAt());
      return false;
    }
    return true;
  }

  /**
   * `layout`: the writer's (RowWriter.layout); a batch holds rows of one layout, flush before it changes.
   * `producedAt`: as for addEncoded.
   */
  addRow(offset: number, line: string, layout?: RowLayout, producedAt?: number | string): void {
    this.batch.addRow(offset, line, this.openedAt(producedAt), layout);
  }

  /**
   * Encodes a message's value into the pending batch (see PartitionBatch.addEncoded); throws DecodeError, adding nothing.
   * `producedAt`: the message's Kafka timestamp (ms, as kafkajs's text or a number), which starts the batch's age when
   * it is the first row.
   */
  addEncoded(offset: number, encoder: RowEncoder, value: Buffer, offsetText: string, producedAt?: number | string): void {
    this.batch.addEncoded(offset, this.openedAt(producedAt), encoder, value, this.partition, offsetText);
  }

  addDeadLetter(offset: number, letter: DeadLetter): void {
    this.batch.addDeadLetter(offset, letter, this.openedAt());
  }

  /**
   * Cuts the pending batch before rows of another layout are added. A batch formed again cannot be cut short
   * (ReformConflictError): the intent is remembered as unreformable, and the caller abandons the partition.
   */
  cutForLayout(lease: PartitionLease): void {
    if (!this.canCut) {
      const reform = this.reform!;
      this.deps.unreformable?.add(`${this.partition}:${reform.token}`);
      throw new ReformConflictError(`${this.topic}:${this.partition}:${this.batch.first}-${reform.last}`);
    }
    this.startFlush(lease);
  }

  /** Why the pending batch should be flushed now, if it should. Age counts only when `caughtUp`. */
  due(limits: FlushLimits, caughtUp: boolean): FlushReason | undefined {
    const b = this.batch;
    if (b.isEmpty || !this.canCut) return undefined;
    if (this.reform !== undefined) return 'rows'; // a complete batch formed again
    if (b.rows >= limits.maxBatchRows) return 'rows';
    if (b.bytes >= limits.maxBatchBytes) return 'bytes';
    if (caughtUp && this.now() - b.openedAt >= limits.maxBatchAgeMs) return 'age';
    return undefined;
  }

  /** Milliseconds until the pending batch is due by age (0 when due, Infinity when empty or not cuttable). */
  msUntilAge(limits: FlushLimits): number {
    if (this.batch.isEmpty || !this.canCut) return Infinity;
    return Math.max(0, this.batch.openedAt + limits.maxBatchAgeMs - this.now());
  }

  /**
   * Makes the pending batch durable and commits past it. Throws PartitionLostError when the lease ends first
   * (the batch is abandoned; whatever was stored stays and the next owner skips it), or a non-retriable error.
   */
  async flush(lease: PartitionLease): Promise<PartitionBatch | undefined> {
    this.startFlush(lease);
    return this.settle();
  }

  /** Whether a flush started by startFlush has not been settled yet. */
  get flushing(): boolean {
    return this.inflight !== undefined;
  }

  /**
   * Takes the pending batch and starts making it durable and committing past it, after the flush in progress if
   * any; returns at once (new messages go into a fresh batch). Its outcome is reported by `settle()`.
   */
  startFlush(lease: PartitionLease): void {
    const batch = this.batch;
    if (batch.isEmpty) return;
    if (!this.canCut) throw new Error(`batch ${batch.id} is being formed again up to ${this.reform!.last}: it cannot be cut before`);
    if (this.reform !== undefined) {
      batch.token = this.reform.token;
      this.reform = undefined;
    }
    // The next batch starts with room for one like this (a little more), so it rarely grows.
    this.batch = new PartitionBatch(this.topic, this.partition, Math.max(64 * 1024, Math.ceil(batch.bytes * 1.1)));
    const previous = this.inflight;
    const run = previous === undefined ? this.flushBatch(batch, lease) : previous.then(() => this.flushBatch(batch, lease));
    // Reported by settle(), which the caller always reaches; until then the rejection must not count as unhandled.
    run.catch(() => undefined);
    this.inflight = run;
  }

  /** Waits for the flushes started so far; resolves with the last one's batch, throws the first one's error. */
  async settle(): Promise<PartitionBatch | undefined> {
    const run = this.inflight;
    if (run === undefined) return undefined;
    try {
      return await run;
    } finally {
      if (this.inflight === run) this.inflight = undefined;
    }
  }

  private async flushBatch(batch: PartitionBatch, lease: PartitionLease): Promise<PartitionBatch> {
    if (batch.skipped > 0) this.deps.observer?.skippedStored(batch.skipped);
    const rejected: DeadLetter[] = [];
    this.deps.crashPoint?.('before-intent');
    if (batch.rows > 0) {
      const { rows } = this.deps;
      const token = (batch.token ??= `${this.topic}/${this.partition}/${batch.first}-${batch.last}/${randomBytes(6).toString('hex')}`);
      lease.check();
      const route: Route = { entry: await this.retry('fence', lease, () => rows.entry(batch.layout)), first: batch.first, last: batch.last, token };
      // The write-ahead intent: from here on, the next owner knows what may have been sent and through which entry.
      await this.retry('commit', lease, () => lease.commit(route.first, intentMetadata(route.last, route.token, route.entry, this.upTo(route.last + 1))));
      this.deps.crashPoint?.('before-insert');
      await this.insertDurably(batch, token, route, lease, rejected);
    }
    this.deps.crashPoint?.('after-insert');
    const letters = rejected.length > 0 ? [...batch.letters, ...rejected] : batch.letters;
    if (letters.length > 0) {
      await this.retry('dead-letters', lease, () => this.deps.deadLetters.send(letters));
      this.deps.observer?.deadLettered(letters);
    }
    this.durable = batch.nextOffset;
    lease.check();
    await this.retry('commit', lease, () => lease.commit(batch.nextOffset, cleanMetadata(this.upTo(batch.nextOffset))));
    this.committedNext = batch.nextOffset;
    this.deps.crashPoint?.('after-commit');
    this.deps.observer?.committed(this.topic, this.partition, batch.nextOffset);
    return batch;
  }

  /**
   * Inserts the batch's rows so that each is stored exactly once, whatever each attempt's outcome. Rows ClickHouse
   * rejects as data errors are isolated by halving the batch; a rejected single row becomes a dead letter.
   */
  private async insertDurably(batch: PartitionBatch, token: string, route: Route, lease: PartitionLease, rejected: DeadLetter[]): Promise<void> {
    const { rows: store } = this.deps;
    let exclude: Set<number> | undefined;
    for (let attempt = 0; ; attempt++) {
      await lease.heartbeat(); // a heartbeat if one is due, so the lease check sees a fresh session
      lease.check();
      const { body, rows } = batch.body(exclude);
      if (rows === 0) return;
      try {
        const started = performance.now();
        const sent: InsertAttempt = { token, entry: route.entry, label: `${this.topic}/${this.partition}/${batch.first}-${batch.last}` };
        await withHeartbeats(lease, () => store.insert(body, rows, batch.layout, sent));
        this.deps.observer?.inserted(rows, body.length, (performance.now() - started) / 1000);
        return;
      } catch (error) {
        if (!(error instanceof RowsRejectedError) && !isRetriable(error)) throw error;
        if (!(error instanceof RowsRejectedError)) {
          lease.failed?.();
          const { backoff } = this.deps;
          const delay = backoffDelay(backoff, attempt + 1);
          this.deps.observer?.retried('insert', error, attempt + 1, delay);
          await wait(backoff, delay);
          await lease.heartbeat();
          // The attempt's outcome is unknown and it may still land: fence it before anything is read or sent again,
          // and name the next entry in the ledger before it is used.
          if (route.entry !== undefined) {
            lease.check();
            const fenced = route.entry;
            await this.retry('fence', lease, () => store.fence(fenced));
            route.entry = await this.retry('fence', lease, () => store.entry(batch.layout));
            await this.retry('commit', lease, () => lease.commit(route.first, intentMetadata(route.last, route.token, route.entry, this.upTo(route.last + 1))));
          }
          // The same batch with the same token: stored once, in the table and in its rollups.
          if (store.deduplicates) continue;
        }
        // Without deduplication: the failed insert may have landed in part (one part per ClickHouse partition) or
        // whole; ask what is stored and send the rest. With it, the halves of a rejected batch are sent whole, each
        // with its own token, so that a recovery splits the batch the same way and each half lands once.
        if (!store.deduplicates) {
          exclude = new Set(await this.retry('stored-offsets', lease, () => store.storedOffsets(this.topic, this.partition, batch.first, batch.last)));
        }
        if (error instanceof RowsRejectedError) {
          const remaining = exclude === undefined ? batch : batch.without(exclude);
          if (remaining.rows === 0) return;
          if (remaining.rows === 1) {
            rejected.push({
              topic: this.topic,
              partition: this.partition,
              offset: String(remaining.first),
              key: null,
              value: remaining.rowAt(0), // the row as sent, not the record: a JSON line or RowBinary bytes
              error: new DecodeError('does-not-fit-table', `ClickHouse rejected the row: ${describeError(error)}`, error),
              ...(remaining.layout ? { row: remaining.layout } : {}),
            });
            return;
          }
          const mid = remaining.rows >>> 1;
          const head = remaining.slice(0, mid);
          const tail = remaining.slice(mid, remaining.rows);
          // Halves carry tokens of their own, derived from the batch's: the same halves after a recovery.
          await this.insertDurably(head, `${token}/${head.first}-${head.last}`, route, lease, rejected);
          await this.insertDurably(tail, `${token}/${tail.first}-${tail.last}`, route, lease, rejected);
          return;
        }
      }
    }
  }

  /**
   * Runs `task` until it succeeds or throws a non-retriable error, reporting each retry as `operation`; between
   * attempts the lease is checked (PartitionLostError ends it) and the group heartbeated.
   */
  retry<T>(operation: Exclude<RetriedOperation, 'insert'>, lease: PartitionLease, task: () => Promise<T>): Promise<T> {
    return retrying(this.deps.backoff, task, {
      onRetry: (error, attempt, delay) => {
        lease.failed?.();
        this.deps.observer?.retried(operation, error, attempt, delay);
      },
      between: async () => {
        lease.check();
        await lease.heartbeat();
      },
    });
  }
}

/** Runs `task` while heartbeating the group, so a slow insert does not let the session expire. */
async function withHeartbeats<T>(lease: PartitionLease, task: () => Promise<T>): Promise<T> {
  const timer = setInterval(() => void lease.heartbeat(), 1000);
  try {
    return await task();
  } finally {
    clearInterval(timer);
  }
}
