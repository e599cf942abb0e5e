/**
 * The replicas of one ClickHouse shard as one Sink (`--clickhouse http://a:8123,http://b:8123`): every request goes
 * to the replica in use, and a request that fails with a retriable error (the replica down, frozen past the request
 * timeout, its tables read-only because it lost ZooKeeper) moves the set on to the next replica for the requests that
 * follow. The failed request itself is not sent again here: its outcome is unknown, and what to do about it is the
 * exactly-once core's decision (consumer/partitionIngest.ts), which retries with backoff, and so reaches the next replica.
 *
 * Reads that must see everything any replica acknowledged (`everyReplica`) ask every replica: a replica that has not
 * fetched a part yet does not know it holds it (see consumer/clickhouseRows.ts, which requires the replicas to agree).
 */
import { UnreachableError, describeError } from '../runtime/errors.ts';
import { isRetriable } from '../runtime/backoff.ts';
import type { ClickHouseServerSink } from './serverSink.ts';
import type { InsertOptions, QueryParams, RowFormat, Sink, TableColumn } from './sink.ts';

export interface ReplicaSwitch {
  readonly from: string;
  readonly to: string;
  readonly error: string;
}

export class ClickHouseReplicas implements Sink {
  readonly kind = 'server' as const;
  readonly takesRowBinary = true;
  readonly address: string;
  private current = 0;
  /** Called when requests move to another replica (the consumer logs it). */
  onSwitch: (change: ReplicaSwitch) => void = () => undefined;

  constructor(readonly replicas: readonly ClickHouseServerSink[]) {
    if (replicas.length < 2) throw new Error('ClickHouseReplicas needs at least two replicas');
    this.address = replicas.map((r) => r.address).join(',');
  }

  /** The replica requests go to now. */
  get active(): ClickHouseServerSink {
    return this.replicas[this.current]!;
  }

  /** Runs `request` on the replica in use; a retriable failure moves the set to the next replica (then rethrows). */
  private async use<T>(request: (replica: ClickHouseServerSink) => Promise<T>): Promise<T> {
    const index = this.current;
    try {
      return await request(this.replicas[index]!);
    } catch (error) {
      // Another request may have moved on already: move once per failed replica.
      if (isRetriable(error) && this.current === index) {
        this.current = (index + 1) % this.replicas.length;
        this.onSwitch({ from: this.replicas[index]!.address, to: this.active.address, error: describeError(error) });
      }
      throw error;
    }
  }

  /**
   * Runs `request` on every replica at once; resolves with their answers in replica order. Rejects when any replica
   * fails (retriable when it is unreachable): an answer that misses a replica is no answer.
   */
  async everyReplica<T>(request: (replica: ClickHouseServerSink) => Promise<T>): Promise<T[]> {
    return Promise.all(this.replicas.map((replica) => request(replica)));
  }

  /** Succeeds when some replica answers, and makes it the one in use. */
  async ping(): Promise<void> {
    const errors: string[] = [];
    for (let i = 0; i < this.replicas.length; i++) {
      try {
        await this.use((replica) => replica.ping());
        return;
      } catch (error) {
        errors.push(describeError(error));
        if (!isRetriable(error)) throw error;
      }
    }
    throw new UnreachableError('ClickHouse', this.address, `no replica answers (${errors.join('; ')})`);
  }

  version(): Promise<string> {
    return this.use((replica) => replica.version());
  }

  command(sql: string): Promise<void> {
    return this.use((replica) => replica.command(sql));
  }

  query<T>(sql: string, params?: QueryParams): Promise<T[]> {
    return this.use((replica) => replica.query<T>(sql, params));
  }

  describe(table: string): Promise<TableColumn[]> {
    return this.use((replica) => replica.describe(table));
  }

  insertJsonEachRow(table: string, body: Buffer, options?: InsertOptions): Promise<void> {
    return this.use((replica) => replica.insertJsonEachRow(table, body, options));
  }

  insertRows(table: string, body: Buffer, format: RowFormat, columns: readonly string[], options?: InsertOptions): Promise<void> {
    return this.use((replica) => replica.insertRows(table, body, format, columns, options));
  }

  async close(): Promise<void> {
    await Promise.all(this.replicas.map((replica) => replica.close()));
  }
}
