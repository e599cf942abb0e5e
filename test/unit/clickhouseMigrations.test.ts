/**
 * The current migration series on the embedded engine (chdb, ClickHouse 26.x; in-process, no service needed):
 * applied twice, the second run changes nothing; the resulting tables, views and columns; retention changes;
 * a changed migration file is refused; a retried insert (same deduplication token) is dropped by the raw table
 * and by every rollup alike.
 */
import { describe, expect, it } from 'vitest';
import { ensureApiCallsTable } from '../../clickhouse/apiCallsTable.ts';
import { RowWriter } from '../../consumer/rowWriter.ts';
import { SyntheticEvents } from '../../producer/syntheticEvents.ts';
import { DEFAULT_RETENTION, MIGRATIONS_TABLE, appliedMigrations, loadMigrations, migrate, renderStatement, tableRetentionDays, zookeeperPath } from '../../clickhouse/migrations.ts';
import { embeddedClickHouse } from './embeddedClickHouse.ts';

const sink = embeddedClickHouse('apilog-migrations-');

const tablesOf = async (prefix: string) =>
  sink.query<{ name: string; engine: string }>(
    "SELECT name, engine FROM system.tables WHERE database = currentDatabase() AND (name = {p:String} OR startsWith(name, {p_:String})) ORDER BY name",
    { p: prefix, p_: `${prefix}_` },
  );

describe('current migration series on the embedded engine', () => {
  it('applies every migration once; the second run applies nothing and changes nothing', async () => {
    const first = await ensureApiCallsTable(sink, 'calls');
    expect(first.applied.map((m) => m.version)).toEqual([1, 2, 3, 4, 5, 6]);
    const tables = await tablesOf('calls');
    const columns = await sink.describe('calls');
    const second = await ensureApiCallsTable(sink, 'calls');
    expect(second.applied).toEqual([]);
    expect(second.skipped.map((m) => m.version)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(await tablesOf('calls')).toEqual(tables);
    expect(await sink.describe('calls')).toEqual(columns);
    expect(tables).toEqual([
      { name: 'calls', engine: 'MergeTree' },
      { name: 'calls_1h', engine: 'AggregatingMergeTree' },
      { name: 'calls_1h_mv', engine: 'MaterializedView' },
      { name: 'calls_1m', engine: 'AggregatingMergeTree' },
      { name: 'calls_1m_mv', engine: 'MaterializedView' },
      { name: 'calls_clients_1h', engine: 'AggregatingMergeTree' },
      { name: 'calls_clients_1h_mv', engine: 'MaterializedView' },
    ]);
    const recorded = await sink.query<{ version: number; n: string }>(
      `SELECT version, count() AS n FROM ${MIGRATIONS_TABLE} WHERE target = 'calls' GROUP BY version ORDER BY version`,
    );
    expect(recorded.map((r) => [r.version, Number(r.n)])).toEqual([[1, 1], [2, 1], [3, 1], [4, 1], [5, 1], [6, 1]]);
    const checksums = (await appliedMigrations(sink, 'calls')).map((m) => m.checksum);
    expect(checksums).toEqual(loadMigrations('current').map((m) => m.checksum));
  });

  it('gives the raw table the contract columns, the Kafka coordinates and the v2 columns with their defaults', async () => {
    const byName = new Map((await sink.describe('calls')).map((c) => [c.name, c]));
    expect(byName.get('ts')?.type).toBe("DateTime64(3, 'UTC')");
    expect(byName.get('attributes')?.type).toBe('Map(LowCardinality(String), String)');
    expect(byName.get('client_id')?.type).toBe('LowCardinality(Nullable(String))');
    expect(byName.get('_topic')?.type).toBe('LowCardinality(String)');
    expect(byName.get('_partition')?.type).toBe('UInt32');
    expect(byName.get('_offset')?.type).toBe('UInt64');
    expect(byName.get('protocol')).toMatchObject({ type: 'LowCardinality(String)', defaultKind: 'DEFAULT' });
    expect(byName.get('retry_attempt')).toMatchObject({ type: 'UInt16', defaultKind: 'DEFAULT' });
    expect(byName.get('upstream_latency_us')?.type).toBe('Nullable(UInt64)');
    const [create] = await sink.query<{ q: string }>("SELECT create_table_query AS q FROM system.tables WHERE database = currentDatabase() AND name = 'calls'");
    expect(create!.q).toMatch(/PROJECTION by_offset/);
    expect(create!.q).toMatch(/ORDER BY \(api, ts\)/);
    expect(create!.q).toMatch(/non_replicated_deduplication_window = 10000/); // 0006
    expect(await tableRetentionDays(sink, 'calls')).toBeUndefined();
  });

  it('stops at --to and continues from there later', async () => {
    expect((await migrate(sink, { table: 'staged', dialect: 'current', to: 4 })).applied.map((m) => m.version)).toEqual([1, 2, 3, 4]);
    expect((await sink.describe('staged')).some((c) => c.name === 'protocol')).toBe(false);
    expect((await migrate(sink, { table: 'staged', dialect: 'current' })).applied.map((m) => m.version)).toEqual([5, 6]);
    expect((await sink.describe('staged')).some((c) => c.name === 'protocol')).toBe(true);
    await expect(migrate(sink, { table: 'staged', dialect: 'current', to: 9 })).rejects.toThrow(/versions 1 to 6/);
  });

  it('sets, changes and removes retention only for the levels given', async () => {
    const r1 = await ensureApiCallsTable(sink, 'calls', { retention: { rawDays: 30, hourDays: 400 } });
    expect(r1.retentionChanges).toEqual([
      'ALTER TABLE calls MODIFY TTL toDateTime(ts) + INTERVAL 30 DAY',
      'ALTER TABLE calls_1h MODIFY TTL hour + INTERVAL 400 DAY',
      'ALTER TABLE calls_clients_1h MODIFY TTL hour + INTERVAL 400 DAY',
    ]);
    expect(await tableRetentionDays(sink, 'calls')).toBe(30);
    expect(await tableRetentionDays(sink, 'calls_1m')).toBeUndefined();
    expect((await ensureApiCallsTable(sink, 'calls', { retention: { rawDays: 30 } })).retentionChanges).toEqual([]);
    expect((await ensureApiCallsTable(sink, 'calls')).retentionChanges).toEqual([]);
    expect(await tableRetentionDays(sink, 'calls')).toBe(30);
    expect((await ensureApiCallsTable(sink, 'calls', { retention: { rawDays: 0 } })).retentionChanges).toEqual(['ALTER TABLE calls REMOVE TTL']);
    expect(await tableRetentionDays(sink, 'calls')).toBeUndefined();
  });

  it('refuses to go on when an applied migration file has changed since', async () => {
    await migrate(sink, { table: 'tampered', dialect: 'current', to: 1 });
    await sink.command(`ALTER TABLE ${MIGRATIONS_TABLE} UPDATE checksum = 'f00d' WHERE target = 'tampered' AND version = 1 SETTINGS mutations_sync = 1`);
    await expect(migrate(sink, { table: 'tampered', dialect: 'current' })).rejects.toThrow(/0001_api_calls\.sql was applied .* must not change/);
  });

  it('drops a retried insert (same deduplication token) in the raw table and in every rollup', async () => {
    const writer = new RowWriter({ columns: await sink.describe('calls') });
    const events = new SyntheticEvents({ seed: 3, apis: 5, startMs: Date.UTC(2026, 10, 2), stepMs: 1000 }).take(2000);
    events.forEach((e, i) => writer.append(e as unknown as Record<string, unknown>, 'topic-a', 0, String(i)));
    const body = writer.take();
    const totals = async () => {
      const [row] = await sink.query<Record<string, string>>(
        `SELECT (SELECT count() FROM calls) AS raw, (SELECT sum(requests) FROM calls_1m) AS m,
                (SELECT sum(requests) FROM calls_1h) AS h, (SELECT sum(requests) FROM calls_clients_1h) AS c`,
      );
      return Object.values(row!).map(Number);
    };
    const before = await totals();
    await sink.insertJsonEachRow('calls', body, { settings: { insert_deduplication_token: 'topic-a:0:0-1999' } });
    await sink.insertJsonEachRow('calls', body, { settings: { insert_deduplication_token: 'topic-a:0:0-1999' } });
    expect((await totals()).map((n, i) => n - before[i]!)).toEqual([2000, 2000, 2000, 2000]);
  });
});

describe('replicated legacy series (the replicas of one shard of 18.16 servers)', () => {
  /** Column names a series' files create or add, in order. */
  const columnsOf = (dialect: 'legacy' | 'legacy-replicated') =>
    loadMigrations(dialect).flatMap((m) =>
      m.statements.flatMap((sql) => {
        const add = /^ALTER\s+TABLE\s+\S+\s+ADD\s+COLUMN\s+([A-Za-z_]\w*)/i.exec(sql);
        if (add) return [add[1]!];
        const body = /^CREATE\s+TABLE[^(]+\(([^]*)\)\s*ENGINE/i.exec(sql)?.[1] ?? '';
        return body.split('\n').map((line) => /^\s*([A-Za-z_]\w*)\s/.exec(line)?.[1]).filter((c): c is string => c !== undefined);
      }),
    );

  it('has the legacy columns (v1 and v2 fields, Kafka coordinates) except _ingested_at, whose now() would make each send of a batch new data', () => {
    const legacy = columnsOf('legacy');
    const replicated = columnsOf('legacy-replicated');
    expect(legacy).toContain('_ingested_at');
    expect([...replicated].sort()).toEqual(legacy.filter((c) => c !== '_ingested_at').sort());
    expect(new Set(replicated).size).toBe(replicated.length);
  });

  it('is a ReplicatedMergeTree under /clickhouse/tables/{shard}/<db>.<table>, with each server\'s {replica} macro and a 10,000-block window', () => {
    const [create] = loadMigrations('legacy-replicated')[0]!.statements;
    const sql = renderStatement(create!, 'calls', DEFAULT_RETENTION, 'default.calls');
    expect(sql).toContain("ENGINE = ReplicatedMergeTree('/clickhouse/tables/{shard}/default.calls', '{replica}')");
    expect(sql).toContain('SETTINGS replicated_deduplication_window = 10000');
    expect(() => renderStatement(create!, 'calls', DEFAULT_RETENTION)).toThrow(/qualified table name/);
    expect(() => zookeeperPath('calls')).toThrow(/qualified/);
  });

  it('runs only on replicas, and the other series only on one server', async () => {
    await expect(migrate(sink, { table: 'calls_r', dialect: 'legacy-replicated' })).rejects.toThrow(/give each replica's URL/);
  });
});
