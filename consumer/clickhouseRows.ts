/**
 * The consumer's view of a ClickHouse table through a Sink: inserts row bodies (RowBinary, JSONEachRow or
 * JSONCompactEachRow with `null` read as the column default), answers which Kafka offsets of a partition are
 * already stored (the `_topic`, `_partition`, `_offset` columns every row carries), and makes retries safe.
 *
 * An insert sent over HTTP can outlive the attempt that sent it: a client that gave up on a slow or frozen server, or
 * a process killed while its request waits in the server's socket buffer, leaves a request the server may run later,
 * after the partition's next owner (or the same one, retrying) read what is stored. Two ways to make that harmless:
 *
 * Deduplication (the embedded engine, and servers that take `insert_deduplication_token` on a table with a
 * deduplication window: our migrations set one). Every insert carries its batch's token and
 * `deduplicate_blocks_in_dependent_materialized_views`, and a batch is only ever sent again whole, with the same
 * token: stored once in the table and once in each rollup, whichever of them an earlier attempt reached, and a late
 * request of an earlier attempt lands nowhere. It holds while the table's deduplication window (blocks) still holds
 * the token. Inserts go straight into the table: the block's identity includes the chain of views it went through,
 * so an insert through another table (an entry, below) would not be recognized as the same (checked on 26.x).
 *
 * Fencing (servers without deduplication: Debian's 18.16). Inserts go through an *entry*: a `Null`-engine table with
 * the table's insertable columns and a materialized view that moves every inserted block into the table. Each process
 * has one entry at a time, named `<table>__in_<random>`; every insert carries a query id that starts with the
 * entry's name. To fence an entry: DROP it (an insert not yet started through it now fails with "table doesn't
 * exist", whenever the server gets to it), then wait until `system.processes` holds no query of that entry (KILL
 * QUERY speeds that up): an insert that started before the DROP is registered there until it ends. After `fence`
 * resolves, nothing sent through that entry can land, and the stored offsets of a batch are final: the consumer reads
 * them and sends only the missing rows. The Kafka ledger (ledger.ts) names the entry of every batch before it is
 * sent, so the next owner knows what to fence.
 *
 * Replicated tables without tokens (`ReplicatedMergeTree` on 18.16): deduplication by content. A replicated table
 * drops a block whose part has the same data as one inserted before, on any replica: the part's checksum is its block
 * id, kept in ZooKeeper (the last `replicated_deduplication_window` ids, 10,000 in our migrations), and committed in
 * one ZooKeeper transaction with the part. So these tables take the token path with the block itself as the token: a
 * batch is only ever sent again whole and identical (formed again up to the ledger's last offset after a takeover),
 * and each of its parts lands once whichever replica an earlier attempt reached, even a replica that is down or that
 * the one written now has not caught up with (measured: the identical insert on the lagging replica is dropped while
 * the other is down, and the lagging one fetches the part when it is back). It needs identical blocks: no column may
 * be filled by the server with the time or at random (`DEFAULT now()`), which `start` checks; the replicated series of
 * our migrations has no `_ingested_at` for that reason. Entries are not used: a fence would have to reach the replica
 * holding the entry, and waiting for a frozen or dead replica is what replicas are there to avoid.
 *
 * Several replicas (`ClickHouseReplicas`): inserts go to one, and move on when it fails. The reads that recovery still
 * makes (no ledger of ours, a batch that cannot be formed again) ask every replica and need them to agree, so that no
 * acknowledged row is missed because one replica lags; until they do, the read is retried.
 */
import { randomBytes } from 'node:crypto';
import { ApilogError, ConfigError } from '../runtime/errors.ts';
import { isLegacyServer } from '../clickhouse/apiCallsTable.ts';
import { ColumnsChangedError, clickHouseCode } from '../clickhouse/errors.ts';
import { ClickHouseReplicas } from '../clickhouse/replicas.ts';
import type { InsertAttempt, RowStore } from './partitionIngest.ts';
import { quoteString } from '../clickhouse/serverSink.ts';
import { checkColumnName, checkTableName, type QueryParams, type RowLayout, type Sink } from '../clickhouse/sink.ts';
import type { StoredPage } from './storedOffsets.ts';

/** An entry table and the column types it was created with. */
interface Entry {
  readonly name: string;
  readonly types: ReadonlyMap<string, string>;
}

/** The insert went to an entry that is gone (another owner fenced it): nothing of it landed. Retriable. */
export class EntryFencedError extends ApilogError {
  constructor(entry: string, cause: unknown) {
    super(`entry ${entry} was fenced (dropped) before the insert ran: nothing of it landed`, { retriable: true, cause });
  }
}

/** The replicas answered a read differently: one has not caught up yet. Retriable: replication catches up. */
export class ReplicasDisagreeError extends ApilogError {
  constructor(what: string, addresses: string) {
    super(`ClickHouse replicas ${addresses} do not agree on ${what} yet (one has not fetched every part): read again`, { retriable: true });
  }
}

/**
 * How a table drops a batch sent again: by its token (`insert_deduplication_token`, servers 21+ and the embedded
 * engine), by its content (a replicated table on a server without tokens: 18.16), or not at all.
 */
export type Deduplication = 'token' | 'content' | 'none';

export interface ClickHouseRowsOptions {
  /** Extra settings sent with every insert. */
  readonly settings?: Record<string, string | number>;
  /**
   * Insert through fenceable entry tables. @default true for a server whose table does not deduplicate (known after
   * `start`), false otherwise (the embedded engine's inserts end with its process)
   */
  readonly entries?: boolean;
  /** Polls system.processes this often while fencing. @default 100 */
  readonly fencePollMs?: number;
}

const UNKNOWN_TABLE = 60;
const TYPE_MISMATCH = 53;
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export class ClickHouseRows implements RowStore {
  private readonly table: string;
  private readonly settings: Record<string, string | number>;
  private usesEntries: boolean;
  private readonly entriesOption: boolean | undefined;
  private readonly fencePollMs: number;
  private dedup: Deduplication = 'none';
  private current: Entry | undefined;
  private creating: Promise<Entry> | undefined;

  constructor(
    private readonly sink: Sink,
    table: string,
    options: ClickHouseRowsOptions = {},
  ) {
    this.table = checkTableName(table);
    this.settings = options.settings ?? {};
    this.entriesOption = options.entries;
    this.usesEntries = options.entries ?? false;
    this.fencePollMs = options.fencePollMs ?? 100;
  }

  /** Whether a batch sent again whole lands once, by its token or its content (known after `start`). */
  get deduplicates(): boolean {
    return this.dedup !== 'none';
  }

  /** How the table deduplicates (known after `start`). */
  get deduplication(): Deduplication {
    return this.dedup;
  }

  /** Whether inserts go through fenceable entries. */
  get fences(): boolean {
    return this.usesEntries;
  }

  /**
   * Reads what the server and the table support, and chooses between deduplication and entries. ConfigError when
   * the URLs given are not replicas of one replicated table, or a replicated table without tokens has a column the
   * server fills differently at each insert.
   */
  async start(): Promise<void> {
    if (this.sink instanceof ClickHouseReplicas) await checkReplicas(this.sink, this.table);
    this.dedup = await tableDeduplication(this.sink, this.table);
    if (this.dedup === 'content') await checkIdenticalBlocks(this.sink, this.table);
    this.usesEntries = this.entriesOption ?? (this.sink.kind === 'server' && this.dedup === 'none');
  }

  /**
   * The entry inserts go through now (undefined without entries), made if there is none. With `layout`, an entry
   * whose columns cannot take those rows is fenced and replaced; ColumnsChangedError when even a new one cannot
   * (the rows were encoded for column types the table no longer has).
   */
  async entry(layout?: RowLayout): Promise<string | undefined> {
    if (!this.usesEntries) return undefined;
    let entry = this.current ?? (await this.make());
    if (layout !== undefined && !fits(entry, layout)) {
      await this.fence(entry.name);
      entry = this.current ?? (await this.make());
      if (!fits(entry, layout)) throw new ColumnsChangedError(`table ${this.table} changed under rows waiting to be inserted: ${misfits(entry, layout).join('; ')}`);
    }
    return entry.name;
  }

  private make(): Promise<Entry> {
    if (this.creating === undefined) {
      this.creating = this.createEntry().then(
        (entry) => {
          this.current = entry;
          this.creating = undefined;
          return entry;
        },
        (error: unknown) => {
          this.creating = undefined;
          throw error;
        },
      );
    }
    return this.creating;
  }

  private async createEntry(): Promise<Entry> {
    const columns = await this.sink.describe(this.table);
    const legacy = await isLegacyServer(this.sink);
    const name = `${this.table}__in_${randomBytes(6).toString('hex')}`;
    const insertable = columns.filter((c) => c.defaultKind === '' || c.defaultKind === 'DEFAULT');
    const definitions = insertable.map((c) => `${checkColumnName(c.name)} ${c.type}${c.defaultKind === 'DEFAULT' ? ` DEFAULT ${c.defaultExpression}` : ''}`);
    // 18.16 wants the target's MATERIALIZED columns from the view; later versions compute them and refuse them.
    const computed = legacy ? columns.filter((c) => c.defaultKind === 'MATERIALIZED').map((c) => `${c.defaultExpression} AS ${checkColumnName(c.name)}`) : [];
    await this.sink.command(`CREATE TABLE ${name} (${definitions.join(', ')}) ENGINE = Null`);
    try {
      await this.sink.command(`CREATE MATERIALIZED VIEW ${name}_mv TO ${this.table} AS SELECT ${[...insertable.map((c) => c.name), ...computed].join(', ')} FROM ${name}`);
    } catch (error) {
      await this.sink.command(`DROP TABLE IF EXISTS ${name}`).catch(() => undefined);
      throw error;
    }
    return { name, types: new Map(insertable.map((c) => [c.name, c.type])) };
  }

  /**
   * Makes sure nothing sent through `entry` can land any more: drops it, then waits until no insert through it
   * runs. Idempotent; the next insert of this process makes a new entry if `entry` was its current one.
   */
  async fence(entry: string): Promise<void> {
    checkTableName(entry);
    if (this.current?.name === entry) this.current = undefined;
    await this.sink.command(`DROP TABLE IF EXISTS ${entry}`);
    const prefix = `${entry}/`;
    for (;;) {
      const [running] = await this.sink.query<{ n: string | number }>('SELECT count() AS n FROM system.processes WHERE startsWith(query_id, {prefix:String})', { prefix });
      if (Number(running?.n ?? 0) === 0) break;
      await this.sink.query(`KILL QUERY WHERE startsWith(query_id, ${quoteString(prefix)}) ASYNC`);
      await sleep(this.fencePollMs);
    }
    await this.sink.command(`DROP TABLE IF EXISTS ${entry}_mv`);
  }

  async insert(body: Buffer, _rows: number, layout?: RowLayout, attempt?: InsertAttempt): Promise<void> {
    const target = attempt?.entry ?? this.table;
    const settings: Record<string, string | number> =
      this.dedup === 'token' && attempt !== undefined
        ? { ...this.settings, insert_deduplication_token: attempt.token, deduplicate_blocks_in_dependent_materialized_views: 1 }
        : this.dedup === 'content'
          ? { ...this.settings, insert_deduplicate: 1 } // the default, made sure of: a profile may switch it off
          : this.settings;
    // What `fence` looks for: every insert through an entry has a query id that starts with the entry's name.
    const queryId = attempt?.entry === undefined ? undefined : `${attempt.entry}/${attempt.label}/${randomBytes(4).toString('hex')}`;
    try {
      if (layout === undefined || layout.format === 'JSONEachRow') {
        await this.sink.insertJsonEachRow(target, body, { settings, ...(queryId ? { queryId } : {}) });
      } else if (layout.format === 'RowBinary') {
        // Through an entry the body is read with the entry's types (checked by `entry(layout)`), and the view converts
        // to the table's; straight into the table, the sink checks the table's types.
        const types = attempt?.entry === undefined ? layout.types : undefined;
        await this.sink.insertRows(target, body, 'RowBinary', layout.columns, { settings, ...(types ? { types } : {}), ...(queryId ? { queryId } : {}) });
      } else {
        // A compact row sends null for a field its writer schema lacks: the column's default (see RowWriterOptions.format).
        await this.sink.insertRows(target, body, layout.format, layout.columns, { settings: { ...settings, input_format_null_as_default: 1 }, ...(queryId ? { queryId } : {}) });
      }
    } catch (error) {
      const entry = attempt?.entry;
      if (entry === undefined || !(error instanceof Error)) throw error;
      const code = clickHouseCode(error.message);
      if (code === UNKNOWN_TABLE && error.message.includes(entry)) throw new EntryFencedError(entry, error);
      if (code === TYPE_MISMATCH && error.message.includes(`${entry}_mv`)) {
        // The table's column types changed since the entry was made, and the server (18.16) does not convert in the
        // view: nothing was stored. The entry goes; rows are encoded again for the table's types.
        await this.fence(entry);
        throw new ColumnsChangedError(`table ${this.table} changed under entry ${entry}: ${error.message}`);
      }
      throw error;
    }
  }

  /** Fences this process's entry (a clean stop: nothing of it is in flight any more). */
  async close(): Promise<void> {
    const entry = this.current?.name;
    if (entry !== undefined) await this.fence(entry);
  }

  async storedOffsets(topic: string, partition: number, from: number, to: number): Promise<number[]> {
    const read = async (sink: Sink) => {
      const rows = await sink.query<{ o: string | number }>(
        `SELECT _offset AS o FROM ${this.table} WHERE _topic = {topic:String} AND _partition = {partition:UInt32} AND _offset >= {from:UInt64} AND _offset <= {to:UInt64} ORDER BY o`,
        { topic, partition, from, to },
      );
      const out = new Array<number>(rows.length);
      for (let i = 0; i < rows.length; i++) out[i] = Number(rows[i]!.o);
      return out;
    };
    return this.readAgreed(`the stored offsets of ${topic}:${partition} ${from}-${to}`, read);
  }

  async storedPages(topic: string, partition: number, from: number, pageSize: number): Promise<StoredPage[]> {
    const read = async (sink: Sink) => {
      const rows = await sink.query<{ page: string | number; n: string | number; lo: string | number; hi: string | number }>(
        `SELECT intDiv(_offset, {size:UInt64}) AS page, count() AS n, min(_offset) AS lo, max(_offset) AS hi FROM ${this.table}
         WHERE _topic = {topic:String} AND _partition = {partition:UInt32} AND _offset >= {from:UInt64} GROUP BY page ORDER BY page`,
        { topic, partition, from, size: pageSize },
      );
      return rows.map((r) => ({ page: Number(r.page), rows: Number(r.n), lo: Number(r.lo), hi: Number(r.hi) }));
    };
    return this.readAgreed(`the stored offsets of ${topic}:${partition} from ${from}`, read);
  }

  /**
   * One server: its answer. Replicas: every replica's, which must be the same (a lagging replica misses parts the
   * others acknowledged); ReplicasDisagreeError (retriable) until they are.
   */
  private async readAgreed<T>(what: string, read: (sink: Sink) => Promise<T>): Promise<T> {
    if (!(this.sink instanceof ClickHouseReplicas)) return read(this.sink);
    const answers = await this.sink.everyReplica(read);
    const first = JSON.stringify(answers[0]);
    if (answers.some((a) => JSON.stringify(a) !== first)) throw new ReplicasDisagreeError(what, this.sink.address);
    return answers[0]!;
  }
}

/**
 * Checks that the URLs of a replica set serve replicas of one replicated table: on each replica that answers, the
 * table is Replicated*, with the same ZooKeeper path and a replica name of its own. Inserts move between them, so a
 * table that is not one table on all of them would split the rows.
 */
async function checkReplicas(replicas: ClickHouseReplicas, table: string): Promise<void> {
  const [db, name] = splitTable(table);
  const sql = `SELECT zookeeper_path AS path, replica_name AS replica FROM system.replicas WHERE database = ${db === undefined ? 'currentDatabase()' : '{db:String}'} AND table = {name:String}`;
  const params: QueryParams = db === undefined ? { name } : { db, name };
  const answers = await Promise.all(
    replicas.replicas.map(async (replica) => {
      try {
        return { address: replica.address, rows: await replica.query<{ path: string; replica: string }>(sql, params) };
      } catch (error) {
        if (error instanceof ApilogError && error.retriable) return undefined; // down now: checked by the others
        throw error;
      }
    }),
  );
  const seen = answers.filter((a) => a !== undefined);
  if (seen.length === 0) return; // none answers: the preflight and the first insert will say so
  for (const a of seen) {
    if (a.rows.length === 0) {
      throw new ConfigError(
        `several ClickHouse URLs are replicas of one shard, but ${table} at ${a.address} is not a replicated table (ReplicatedMergeTree): ` +
          'inserts that move between servers would split the rows. Create it with `apilog migrate` given every replica\'s URL',
      );
    }
  }
  const paths = new Set(seen.map((a) => a.rows[0]!.path));
  const names = new Set(seen.map((a) => a.rows[0]!.replica));
  if (paths.size > 1) throw new ConfigError(`${table} is not one replicated table on ${replicas.address}: ZooKeeper paths ${[...paths].join(', ')}`);
  if (names.size < seen.length) throw new ConfigError(`${replicas.address} are not distinct replicas of ${table}: replica names ${seen.map((a) => a.rows[0]!.replica).join(', ')}`);
}

/** Functions whose value differs between two inserts of the same rows. */
const VOLATILE = /\b(now|now64|today|yesterday|rand|rand32|rand64|randConstant|generateUUIDv4|uptime)\s*\(/i;

/**
 * A table that deduplicates by content needs each batch to make the same blocks every time it is sent: ConfigError
 * when a column is filled by the server with a value that changes between inserts (e.g. `DEFAULT now()`).
 */
async function checkIdenticalBlocks(sink: Sink, table: string): Promise<void> {
  const volatile = (await sink.describe(table)).filter((c) => (c.defaultKind === 'DEFAULT' || c.defaultKind === 'MATERIALIZED') && VOLATILE.test(c.defaultExpression ?? ''));
  if (volatile.length === 0) return;
  throw new ConfigError(
    `${table} is replicated and deduplicates a batch sent again by its content (this server has no insert_deduplication_token), ` +
      `but ${volatile.map((c) => `${c.name} ${c.defaultKind} ${c.defaultExpression ?? ''}`).join(', ')} gives each send other data: ` +
      'a batch sent again after a failure would be stored twice. Drop that default (our replicated migrations have no _ingested_at)',
  );
}

/** `db.table` → [db, table]; `table` → [undefined, table]. */
function splitTable(table: string): [string | undefined, string] {
  const dot = table.indexOf('.');
  return dot < 0 ? [undefined, table] : [table.slice(0, dot), table.slice(dot + 1)];
}

function misfits(entry: Entry, layout: RowLayout): string[] {
  return layout.columns.flatMap((c, i) => {
    const type = entry.types.get(c);
    if (type === undefined) return [`${c} is not a column of entry ${entry.name}`];
    const wanted = layout.types?.[i];
    return wanted !== undefined && wanted !== type ? [`${c} was ${wanted}, now ${type}`] : [];
  });
}

const fits = (entry: Entry, layout: RowLayout) => misfits(entry, layout).length === 0;

/**
 * How a repeated insert lands in `table`: once by its `insert_deduplication_token` where the server takes the setting
 * and the table is Replicated (deduplicates by default) or has a non-replicated deduplication window; once by its
 * content where the table is Replicated on a server without tokens; otherwise as often as it is sent.
 */
export async function tableDeduplication(sink: Sink, table: string): Promise<Deduplication> {
  const [setting] = await sink.query<{ n: string | number }>("SELECT count() AS n FROM system.settings WHERE name = 'insert_deduplication_token'");
  const tokens = Number(setting?.n ?? 0) > 0;
  const [db, name] = splitTable(table);
  const [row] = await sink.query<{ engine: string; engine_full: string }>(
    db === undefined
      ? 'SELECT engine, engine_full FROM system.tables WHERE database = currentDatabase() AND name = {name:String}'
      : 'SELECT engine, engine_full FROM system.tables WHERE database = {db:String} AND name = {name:String}',
    db === undefined ? { name } : { db, name },
  );
  if (row === undefined) return 'none';
  const replicated = row.engine.startsWith('Replicated');
  if (!tokens) return replicated ? 'content' : 'none';
  return replicated || /non_replicated_deduplication_window\s*=\s*[1-9]/.test(row.engine_full) ? 'token' : 'none';
}

/** Whether a repeated insert with the same token or content lands once in `table` (see tableDeduplication). */
export async function tableDeduplicates(sink: Sink, table: string): Promise<boolean> {
  return (await tableDeduplication(sink, table)) !== 'none';
}

