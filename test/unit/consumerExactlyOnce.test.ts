/**
 * The exactly-once core (consumer/partitionIngest.ts) driven through every crash point with in-memory twins of our
 * own interfaces: a table that stores rows by offset and can fail before, in the middle of (some parts landed) or
 * after an insert; a lease whose commit can fail or die; a "process" that is killed and restarted from the committed
 * offset. After any sequence, every good offset is stored exactly once and every poison one is dead-lettered.
 */
import { describe, expect, it } from 'vitest';
import { ApilogError, DecodeError } from '../../runtime/errors.ts';
import { RowsRejectedError } from '../../consumer/clickhouseErrors.ts';
import type { DeadLetter } from '../../consumer/deadLetters.ts';
import { PartitionIngest, PartitionLostError, type PartitionLease, type RowStore } from '../../consumer/partitionIngest.ts';
import { prng } from '../../producer/syntheticEvents.ts';

/** The process dies here (SIGKILL): nothing after this point runs. */
class Crash extends Error {}

type InsertOutcome = 'ok' | 'fail-before' | 'fail-partial' | 'fail-after' | 'crash-before' | 'crash-partial' | 'crash-after' | 'reject';
type CommitOutcome = 'ok' | 'fail' | 'crash-before' | 'crash-after' | 'lost';

const retriable = () => new ApilogError('ClickHouse unreachable', { retriable: true });

class MemoryTable implements RowStore {
  readonly stored: number[] = [];
  insertPlan: () => InsertOutcome = () => 'ok';
  queryFails = 0;
  inserts = 0;

  async insert(body: Buffer): Promise<void> {
    this.inserts++;
    const offsets = body.toString('utf8').trim().split('\n').map((l) => (JSON.parse(l) as { _offset: number })._offset);
    if (offsets.some((o) => o % 97 === 13)) throw new RowsRejectedError('Code: 27. Cannot parse input', 27); // ClickHouse rejects the whole body
    const outcome = this.insertPlan();
    if (outcome === 'reject') throw new RowsRejectedError('Code: 27. Cannot parse input', 27);
    if (outcome === 'crash-before') throw new Crash();
    if (outcome === 'fail-before') throw retriable();
    // "partial": the batch spanned several ClickHouse partitions and only some parts were written.
    const landing = outcome === 'fail-partial' || outcome === 'crash-partial' ? offsets.filter((o) => o % 3 !== 1) : offsets;
    this.stored.push(...landing);
    if (outcome === 'crash-partial' || outcome === 'crash-after') throw new Crash();
    if (outcome === 'fail-partial' || outcome === 'fail-after') throw retriable();
  }

  async storedOffsets(_topic: string, _partition: number, from: number, to?: number): Promise<number[]> {
    if (this.queryFails > 0) {
      this.queryFails--;
      throw retriable();
    }
    return this.stored.filter((o) => o >= from && (to === undefined || o <= to));
  }
}

class MemoryKafka {
  committed = 0;
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
      async commit(next: number) {
        const outcome = self.commitPlan();
        if (outcome === 'crash-before') throw new Crash();
        if (outcome === 'fail') throw retriable();
        if (outcome === 'lost') throw new PartitionLostError('t:0 (commit refused)');
        self.committed = next;
        if (outcome === 'crash-after') throw new Crash();
      },
    };
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
  table: MemoryTable;
  kafka: MemoryKafka;
}

/**
 * Consumes a log of `size` offsets into the table, restarting the "process" after each Crash, until the log is done.
 * Fetches are random-sized and sometimes re-deliver offsets already taken (as kafkajs does after a seek).
 */
async function run(size: number, seed: number, table: MemoryTable, kafka: MemoryKafka, maxBatchRows = 40, pipelined = false): Promise<RunResult> {
  const rand = prng(seed);
  let crashes = 0;
  for (let life = 0; life < 500; life++) {
    const ingest = new PartitionIngest('t', 0, { rows: table, deadLetters: { send: async (l) => void kafka.deadLetters.push(...l) }, backoff: noWait });
    const lease = kafka.lease();
    try {
      let position = kafka.committed;
      await ingest.recover(position, lease);
      while (position < size) {
        const from = rand() < 0.1 ? Math.max(kafka.committed, position - 5) : position; // a re-fetch overlaps
        const to = Math.min(size, position + 1 + Math.floor(rand() * 30));
        for (let offset = from; offset < to; offset++) {
          if (!ingest.admit(offset)) continue;
          if (isPoison(offset)) ingest.addDeadLetter(offset, letter(offset));
          else ingest.addRow(offset, `{"_offset":${offset}}\n`);
        }
        position = to;
        if (pipelined) {
          // As the consumer does: a full batch is inserted while the next messages are added; at most one in flight.
          if (ingest.pending.rows >= maxBatchRows || rand() < 0.3) {
            if (ingest.flushing) await ingest.settle();
            ingest.startFlush(lease);
          }
          if (rand() < 0.3) await ingest.settle(); // the end of a kafkajs batch
          else await Promise.resolve(); // let the flush in progress run a step
        } else if (ingest.pending.rows >= maxBatchRows || rand() < 0.3) {
          await ingest.flush(lease);
        }
      }
      await ingest.flush(lease);
      return { crashes, table, kafka };
    } catch (error) {
      if (!(error instanceof Crash)) throw error;
      crashes++;
    }
  }
  throw new Error('did not finish in 500 lives');
}

function expectExactlyOnce(result: RunResult, size: number): void {
  const counts = new Map<number, number>();
  for (const o of result.table.stored) counts.set(o, (counts.get(o) ?? 0) + 1);
  const rejectedByClickHouse = new Set(result.kafka.deadLetters.filter((l) => l.error.reason === 'does-not-fit-table').map((l) => Number(l.offset)));
  const missing: number[] = [];
  const doubled: number[] = [];
  for (let o = 0; o < size; o++) {
    const n = counts.get(o) ?? 0;
    if (isPoison(o) || o % 97 === 13) {
      expect(n).toBe(0);
      continue;
    }
    if (n === 0) missing.push(o);
    if (n > 1) doubled.push(o);
  }
  expect({ missing, doubled }).toEqual({ missing: [], doubled: [] });
  expect(result.kafka.committed).toBe(size);
  const lettered = new Set(result.kafka.deadLetters.map((l) => Number(l.offset)));
  for (let o = 0; o < size; o++) if (isPoison(o)) expect(lettered.has(o)).toBe(true);
  for (let o = 0; o < size; o++) if (o % 97 === 13 && !isPoison(o)) expect(rejectedByClickHouse.has(o)).toBe(true);
}

/** An outcome sequence: `first` once at the n-th call, then 'ok'. */
const once = <T extends string>(at: number, first: T) => {
  let n = 0;
  return () => (n++ === at ? first : ('ok' as T));
};

describe('exactly-once core: every crash point (unit, in-memory twins)', () => {
  const insertPoints: InsertOutcome[] = ['crash-before', 'crash-partial', 'crash-after', 'fail-before', 'fail-partial', 'fail-after'];
  for (const point of insertPoints) {
    for (const at of [0, 1, 3]) {
      it(`insert ${point} at insert #${at}: each offset stored once, commit reaches the end`, async () => {
        const table = new MemoryTable();
        const kafka = new MemoryKafka();
        table.insertPlan = once(at, point);
        const result = await run(400, 7 + at, table, kafka);
        expect(result.crashes).toBe(point.startsWith('crash') ? 1 : 0);
        expectExactlyOnce(result, 400);
      });
    }
  }

  for (const point of ['crash-before', 'crash-after', 'fail', 'lost'] as CommitOutcome[]) {
    it(`commit ${point}: the next owner finds the batch stored and skips exactly it`, async () => {
      const table = new MemoryTable();
      const kafka = new MemoryKafka();
      kafka.commitPlan = once(2, point);
      let result: RunResult;
      if (point === 'lost') {
        // A lost lease is not a crash: the owner abandons, a new owner (next life) takes over.
        await expect(run(300, 3, table, kafka)).rejects.toBeInstanceOf(PartitionLostError);
        result = await run(300, 4, table, kafka);
      } else {
        result = await run(300, 3, table, kafka);
      }
      expectExactlyOnce(result, 300);
    });
  }

  it('the recovery query failing (ClickHouse down) is retried, not skipped', async () => {
    const table = new MemoryTable();
    const kafka = new MemoryKafka();
    table.insertPlan = once(1, 'fail-partial');
    table.queryFails = 5;
    expectExactlyOnce(await run(200, 11, table, kafka), 200);
  });

  it('a lease lost before the commit leaves the rows for the next owner, who commits past them', async () => {
    const table = new MemoryTable();
    const kafka = new MemoryKafka();
    const ingest = new PartitionIngest('t', 0, { rows: table, deadLetters: { send: async () => undefined }, backoff: noWait });
    const lease = kafka.lease();
    await ingest.recover(0, lease);
    for (let o = 0; o < 10; o++) if (ingest.admit(o)) ingest.addRow(o, `{"_offset":${o}}\n`);
    let inserted = false;
    table.insertPlan = () => {
      inserted = true;
      lease.lost = true; // the session expired while the insert ran
      return 'ok';
    };
    await expect(ingest.flush(lease)).rejects.toBeInstanceOf(PartitionLostError);
    expect(inserted).toBe(true);
    expect(kafka.committed).toBe(0);
    const next = new PartitionIngest('t', 0, { rows: table, deadLetters: { send: async () => undefined }, backoff: noWait });
    expect(await next.recover(0, kafka.lease())).toBe(10);
    for (let o = 0; o < 12; o++) if (next.admit(o)) next.addRow(o, `{"_offset":${o}}\n`);
    expect(next.pending.rows).toBe(2);
    expect(next.pending.skipped).toBe(10);
    await next.flush(kafka.lease());
    expect(kafka.committed).toBe(12);
    expect([...table.stored].sort((a, b) => a - b)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
  });

  for (const pipelined of [false, true]) {
    const how = pipelined ? 'pipelined flushes (startFlush while adding, settle later)' : 'one flush at a time';
    it(`random crashes and failures at every step, 200 seeds, ${how}: nothing lost, nothing doubled`, async () => {
      let totalCrashes = 0;
      for (let seed = 1; seed <= 200; seed++) {
        const rand = prng(seed * (pipelined ? 104729 : 7919));
        const table = new MemoryTable();
        const kafka = new MemoryKafka();
        const pick = <T>(options: readonly T[]) => options[Math.floor(rand() * options.length)]!;
        table.insertPlan = () => (rand() < 0.25 ? pick(insertPoints) : 'ok');
        kafka.commitPlan = () => (rand() < 0.15 ? pick(['crash-before', 'crash-after', 'fail'] as CommitOutcome[]) : 'ok');
        const result = await run(250, seed, table, kafka, 1 + Math.floor(rand() * 60), pipelined);
        totalCrashes += result.crashes;
        expectExactlyOnce(result, 250);
      }
      expect(totalCrashes).toBeGreaterThan(200); // the scenarios really crashed
    });
  }

  it('startFlush: the next batch is inserted only after the previous one is committed, in offset order', async () => {
    const events: string[] = [];
    let release: () => void = () => undefined;
    const gate = new Promise<void>((r) => (release = r));
    const kafka = new MemoryKafka();
    const table: MemoryTable = new MemoryTable();
    const slow = {
      insert: async (body: Buffer) => {
        const first = (JSON.parse(body.toString('utf8').split('\n')[0]!) as { _offset: number })._offset;
        events.push(`insert ${first}`);
        if (first === 0) await gate;
        await table.insert(body);
      },
      storedOffsets: (topic: string, partition: number, from: number, to?: number) => table.storedOffsets(topic, partition, from, to),
    };
    const ingest = new PartitionIngest('t', 0, { rows: slow, deadLetters: { send: async () => undefined }, backoff: noWait });
    const lease = kafka.lease();
    const commit = lease.commit.bind(lease);
    lease.commit = async (next) => {
      events.push(`commit ${next}`);
      await commit(next);
    };
    await ingest.recover(0, lease);
    for (let o = 0; o < 5; o++) if (ingest.admit(o)) ingest.addRow(o, `{"_offset":${o}}\n`);
    ingest.startFlush(lease);
    for (let o = 5; o < 8; o++) if (ingest.admit(o)) ingest.addRow(o, `{"_offset":${o}}\n`); // added while the insert runs
    ingest.startFlush(lease);
    await new Promise((r) => setTimeout(r, 5));
    expect(events).toEqual(['insert 0']); // the second batch waits for the first
    release();
    await ingest.settle();
    expect(events).toEqual(['insert 0', 'commit 5', 'insert 5', 'commit 8']);
    expect(kafka.committed).toBe(8);
    expect(ingest.flushing).toBe(false);
  });

  it('startFlush: a failed flush stops the ones queued after it, and settle() reports it', async () => {
    const table = new MemoryTable();
    const kafka = new MemoryKafka();
    const ingest = new PartitionIngest('t', 0, { rows: table, deadLetters: { send: async () => undefined }, backoff: noWait });
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
    expect(kafka.committed).toBe(0);
  });

  it('due(): flushes by rows, by bytes, and by age only once caught up', () => {
    let now = 1000;
    const ingest = new PartitionIngest('t', 0, { rows: new MemoryTable(), deadLetters: { send: async () => undefined }, backoff: noWait, now: () => now });
    const limits = { maxBatchRows: 3, maxBatchBytes: 1000, maxBatchAgeMs: 500 };
    return ingest.recover(0, new MemoryKafka().lease()).then(() => {
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
  });
});
