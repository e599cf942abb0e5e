/**
 * Exactly-once ingestion of one Kafka partition into ClickHouse, with no state store beyond Kafka and ClickHouse.
 *
 * Every row carries its `_topic`, `_partition`, `_offset`. ClickHouse is the source of truth; the Kafka commit only
 * records progress (lag) and bounds how far back recovery must look.
 *
 * The contract, per partition, for one owner (one PartitionIngest per partition per group generation):
 * 1. `recover(from)` before the first message: reads the offsets ≥ `from` already stored (left by an owner that
 *    crashed between insert and commit, or in the middle of an insert that became several parts). They are skipped,
 *    exactly those, never re-inserted. The set is bounded: the committed offset trails what is stored by at most
 *    the batches whose commit failed, each at most `maxBatchRows`.
 * 2. `admit(offset)` for every fetched message, in order: false for offsets already taken (a re-fetch) or stored.
 *    The caller decodes admitted messages and calls `addRow` or `addDeadLetter`. No await per message.
 * 3. `flush(lease)` (or `startFlush(lease)` … `settle()`): insert the rows; if an insert fails retriably, its outcome is unknown (a part may have
 *    landed), so the stored offsets of the batch's range are read again and only the missing rows are retried.
 *    Rows ClickHouse rejects as data errors are isolated by splitting and dead-lettered. Then the dead letters are
 *    sent, and only then is `nextOffset` committed to Kafka.
 *    `startFlush` runs the same steps while the caller keeps admitting and adding messages into the next batch
 *    (decoding overlaps the insert). At most one flush runs per partition: a flush starts only after the previous
 *    one finished, so inserts and commits keep offset order, and one that failed stops those queued after it.
 *    `settle()` waits for it and throws its error; the caller settles before giving the partition up (kafkajs's
 *    eachBatch returns), so no insert outlives the group generation that owns the partition.
 *
 * Crash points and what recovery does (each driven by test/unit/consumerExactlyOnce.test.ts):
 * - before the insert: nothing stored, nothing committed → re-consumed from the committed offset.
 * - in the middle of an insert (some parts landed): recovery finds those offsets and skips exactly them.
 * - after the insert, before the commit: recovery finds the whole batch stored and skips it, then commits past it.
 * - during the commit: either committed (normal resume) or not (as above).
 * The lease is checked before each insert and before the commit: a partition lost to a rebalance is abandoned
 * (the next owner recovers from ClickHouse).
 */
import { ApilogError, DecodeError, describeError } from '../runtime/errors.ts';
import { backoffDelay, isRetriable, retrying, wait, type BackoffPolicy } from './backoff.ts';
import { RowsRejectedError } from './clickhouseErrors.ts';
import type { DeadLetter } from './deadLetters.ts';
import { PartitionBatch } from './partitionBatch.ts';
import type { RowEncoder } from './rowBinary.ts';
import type { RowLayout } from './sink.ts';

/** The rows' side: ClickHouse. */
export interface RowStore {
  /**
   * Inserts a body of `rows` lines in `layout` (JSONEachRow when undefined). On rejection the outcome is unknown:
   * none, some or all rows may be stored.
   */
  insert(body: Buffer, rows: number, batchId: string, layout?: RowLayout): Promise<void>;
  /** Offsets of `topic`/`partition` stored in [from, to] (to omitted: no upper bound), in any order. */
  storedOffsets(topic: string, partition: number, from: number, to?: number): Promise<number[]>;
}

/** Where undecodable records go, acknowledged before their offsets are committed. At-least-once. */
export interface DeadLetterStore {
  send(letters: readonly DeadLetter[]): Promise<void>;
}

/** This process's right to write a partition, valid for one group generation. */
export interface PartitionLease {
  /** Throws PartitionLostError unless this process still owns the partition (and is not shutting down hard). */
  check(): void;
  /**
   * Keeps the group session alive while an insert or a retry runs; cheap when no heartbeat is due. Never rejects:
   * a heartbeat that shows the partition lost makes the next `check()` throw.
   */
  heartbeat(): Promise<void>;
  /** Commits `nextOffset` for this partition to Kafka (the generation's own commit). */
  commit(nextOffset: number): Promise<void>;
}

export type RetriedOperation = 'insert' | 'stored-offsets' | 'dead-letters' | 'commit' | 'schemas';

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

/** Where a crash can happen between the steps of a flush (see the contract above). */
export type CrashPoint = 'before-insert' | 'after-insert' | 'after-commit';

export interface IngestDeps {
  readonly rows: RowStore;
  /**
   * Called at each crash point; the chaos test passes one that SIGKILLs the process now and then, so that kills
   * land exactly between the insert and the commit, not only where timing happens to put them.
   */
  readonly crashPoint?: (point: CrashPoint) => void;
  readonly deadLetters: DeadLetterStore;
  readonly backoff: BackoffPolicy;
  readonly observer?: IngestObserver;
  readonly now?: () => number;
}

export interface FlushLimits {
  readonly maxBatchRows: number;
  readonly maxBatchBytes: number;
  readonly maxBatchAgeMs: number;
}

export type FlushReason = 'rows' | 'bytes' | 'age';

export class PartitionIngest {
  private stored: Set<number> | undefined;
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

  /** Loads the offsets ≥ `from` that ClickHouse already holds for this partition. Retries until ClickHouse answers. */
  async recover(from: number, lease: PartitionLease): Promise<number> {
    const found = await this.retry('stored-offsets', lease, () => this.deps.rows.storedOffsets(this.topic, this.partition, from));
    this.stored = new Set(found);
    this.durable = from;
    return found.length;
  }

  /** When the pending batch was opened: now for its first offset (the batch keeps only that), no clock read per message. */
  private openedAt(): number {
    return this.batch.isEmpty ? this.now() : this.batch.openedAt;
  }

  /** Whether the message at `offset` must be decoded and added. Synchronous; call for every message in order. */
  admit(offset: number): boolean {
    if (offset < this.expected) return false;
    this.expected = offset + 1;
    const stored = this.stored!;
    if (stored.size > 0 && stored.delete(offset)) {
      this.batch.addStored(offset, this.openedAt());
      return false;
    }
    return true;
  }

  /** `layout`: the writer's (RowWriter.layout); a batch holds rows of one layout, flush before it changes. */
  addRow(offset: number, line: string, layout?: RowLayout): void {
    this.batch.addRow(offset, line, this.openedAt(), layout);
  }

  /** Encodes a message's value into the pending batch (see PartitionBatch.addEncoded); throws DecodeError, adding nothing. */
  addEncoded(offset: number, encoder: RowEncoder, value: Buffer, offsetText: string): void {
    this.batch.addEncoded(offset, this.openedAt(), encoder, value, this.partition, offsetText);
  }

  addDeadLetter(offset: number, letter: DeadLetter): void {
    this.batch.addDeadLetter(offset, letter, this.openedAt());
  }

  /** Why the pending batch should be flushed now, if it should. Age counts only when `caughtUp`. */
  due(limits: FlushLimits, caughtUp: boolean): FlushReason | undefined {
    const b = this.batch;
    if (b.isEmpty) return undefined;
    if (b.rows >= limits.maxBatchRows) return 'rows';
    if (b.bytes >= limits.maxBatchBytes) return 'bytes';
    if (caughtUp && this.now() - b.openedAt >= limits.maxBatchAgeMs) return 'age';
    return undefined;
  }

  /** Milliseconds until the pending batch is due by age (0 when due, Infinity when empty). */
  msUntilAge(limits: FlushLimits): number {
    if (this.batch.isEmpty) return Infinity;
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
    this.deps.crashPoint?.('before-insert');
    if (batch.rows > 0) await this.insertDurably(batch, lease, rejected);
    this.deps.crashPoint?.('after-insert');
    const letters = rejected.length > 0 ? [...batch.letters, ...rejected] : batch.letters;
    if (letters.length > 0) {
      await this.retry('dead-letters', lease, () => this.deps.deadLetters.send(letters));
      this.deps.observer?.deadLettered(letters);
    }
    this.durable = batch.nextOffset;
    lease.check();
    await this.retry('commit', lease, () => lease.commit(batch.nextOffset));
    this.committedNext = batch.nextOffset;
    this.deps.crashPoint?.('after-commit');
    this.deps.observer?.committed(this.topic, this.partition, batch.nextOffset);
    return batch;
  }

  /**
   * Inserts the batch's rows so that each is stored exactly once, whatever each attempt's outcome. Rows ClickHouse
   * rejects as data errors are isolated by halving the batch; a rejected single row becomes a dead letter.
   */
  private async insertDurably(batch: PartitionBatch, lease: PartitionLease, rejected: DeadLetter[]): Promise<void> {
    let exclude: Set<number> | undefined;
    for (let attempt = 0; ; attempt++) {
      await lease.heartbeat(); // a heartbeat if one is due, so the lease check sees a fresh session
      lease.check();
      const { body, rows } = batch.body(exclude);
      if (rows === 0) return;
      try {
        const started = performance.now();
        await withHeartbeats(lease, () => this.deps.rows.insert(body, rows, batch.id, batch.layout));
        this.deps.observer?.inserted(rows, body.length, (performance.now() - started) / 1000);
        return;
      } catch (error) {
        if (!(error instanceof RowsRejectedError) && !isRetriable(error)) throw error;
        if (!(error instanceof RowsRejectedError)) {
          const { backoff } = this.deps;
          const delay = backoffDelay(backoff, attempt + 1);
          this.deps.observer?.retried('insert', error, attempt + 1, delay);
          await wait(backoff, delay);
          await lease.heartbeat();
        }
        // The failed insert may have landed in part (one part per ClickHouse partition) or whole: ask what is stored.
        exclude = new Set(await this.retry('stored-offsets', lease, () =>
          this.deps.rows.storedOffsets(this.topic, this.partition, batch.first, batch.last),
        ));
        if (error instanceof RowsRejectedError) {
          const remaining = batch.without(exclude);
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
          await this.insertDurably(remaining.slice(0, mid), lease, rejected);
          await this.insertDurably(remaining.slice(mid, remaining.rows), lease, rejected);
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
      onRetry: (error, attempt, delay) => this.deps.observer?.retried(operation, error, attempt, delay),
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
