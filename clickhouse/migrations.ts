/**
 * ClickHouse migrations: versioned SQL files applied in order, each recorded in `apilog_migrations`, so running
 * them again does nothing. Three series, because the engines differ:
 * - `schemas/clickhouse/migrations/NNNN_name.sql` for current ClickHouse (20.x and later; verified on the embedded engine),
 * - `schemas/clickhouse/migrations/legacy/NNNN_name.sql` for Debian's 18.16 server (no DateTime64, Map, TTL, codecs),
 * - `schemas/clickhouse/migrations/legacy-replicated/NNNN_name.sql` for the replicas of one shard of 18.16 servers
 *   (ReplicatedMergeTree; every statement runs on every replica, each migration is recorded once, in a replicated
 *   `apilog_migrations`). There is no replicated current series: no current server runs here to prove one.
 *
 * A file holds statements, each ending with `;` at the end of a line; `--` lines are comments. Placeholders:
 * `{table}` (the raw table; the rollups are `{table}_1m`, `{table}_1h`, `{table}_clients_1h`) and the retention
 * clauses `{raw_ttl}`, `{minute_ttl}`, `{hour_ttl}` (a TTL clause, or nothing when that level keeps data forever). Every statement is idempotent by itself
 * (IF NOT EXISTS; on the legacy server, which lacks ADD COLUMN IF NOT EXISTS, a single-column ADD COLUMN is skipped
 * when the column exists), so a migration interrupted half-way is simply run again; it is recorded only after all its
 * statements succeeded. An applied migration whose file changed since is an error: write a new migration instead.
 */
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { ApilogError, ConfigError } from '../runtime/errors.ts';
import { checkTableName, type Sink } from './sink.ts';

export type Dialect = 'current' | 'legacy' | 'legacy-replicated';

export interface Migration {
  readonly version: number;
  /** The file name without the number and extension, e.g. 'rollup_minute'. */
  readonly name: string;
  readonly file: string;
  /** sha256 of the file's text, recorded when applied. */
  readonly checksum: string;
  /** The statements, placeholders not yet filled. */
  readonly statements: readonly string[];
}

/**
 * How long each level keeps data, in days (a ClickHouse TTL); 0 keeps it forever. Not on the legacy server.
 * The default keeps everything: deleting data is a decision to take, not a default to discover (a replay of old
 * events, or a test with fixed dates, would otherwise lose rows silently). Suggested: 30 / 90 / 730.
 */
export interface Retention {
  /** Raw rows. @default 0 (forever) */
  readonly rawDays: number;
  /** Per-minute rollups. @default 0 (forever) */
  readonly minuteDays: number;
  /** Hourly rollups (per API and per client). @default 0 (forever) */
  readonly hourDays: number;
}

export const DEFAULT_RETENTION: Retention = { rawDays: 0, minuteDays: 0, hourDays: 0 };

export const MIGRATIONS_TABLE = 'apilog_migrations';

const DIRECTORIES: Record<Dialect, URL> = {
  current: new URL('../schemas/clickhouse/migrations/', import.meta.url),
  legacy: new URL('../schemas/clickhouse/migrations/legacy/', import.meta.url),
  'legacy-replicated': new URL('../schemas/clickhouse/migrations/legacy-replicated/', import.meta.url),
};

/** The replicas a replicated series runs on; `query` reads through any of them. */
export interface Replicas extends Sink {
  readonly replicas: readonly Sink[];
}

const isReplicas = (sink: Sink): sink is Replicas => Array.isArray((sink as Partial<Replicas>).replicas);

/** Splits a migration file into statements: comment lines dropped, statements end with `;` at a line end. */
export function splitStatements(text: string): string[] {
  const body = text
    .split('\n')
    .filter((line) => !line.trimStart().startsWith('--'))
    .join('\n');
  return body
    .split(/;[ \t]*$/m)
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
}

/** The migrations of a series, in version order. Fails on a gap or a repeated number. */
export function loadMigrations(dialect: Dialect): Migration[] {
  const dir = DIRECTORIES[dialect];
  const out: Migration[] = [];
  for (const file of readdirSync(dir).sort()) {
    if (!file.endsWith('.sql')) continue;
    const m = /^(\d{4})_([a-z0-9_]+)\.sql$/.exec(file);
    if (!m) throw new ApilogError(`migration file ${file} is not named NNNN_name.sql`);
    const text = readFileSync(new URL(file, dir), 'utf8');
    out.push({
      version: Number(m[1]),
      name: m[2]!,
      file,
      checksum: createHash('sha256').update(text).digest('hex'),
      statements: splitStatements(text),
    });
  }
  out.forEach((migration, i) => {
    if (migration.version !== i + 1) throw new ApilogError(`${dialect} migrations must be numbered 0001, 0002, … without gaps; found ${migration.file}`);
  });
  return out;
}

/** Retention values are whole days, 0 for forever; anything else fails with a message naming the level. */
export function checkRetention(retention: Partial<Retention>): void {
  for (const [key, value] of Object.entries(retention)) {
    if (value !== undefined && (!Number.isInteger(value) || value < 0)) {
      throw new ConfigError(`retention ${key} must be a whole number of days (0 keeps data forever), not ${String(value)}`);
    }
  }
}

/** The TTL expression of each level of the current series, given its retention in days. */
const TTL_EXPRESSIONS = {
  raw: (days: number) => `toDateTime(ts) + INTERVAL ${days} DAY`,
  minute: (days: number) => `minute + INTERVAL ${days} DAY`,
  hour: (days: number) => `hour + INTERVAL ${days} DAY`,
} as const;

const ttlClause = (level: keyof typeof TTL_EXPRESSIONS, days: number) => (days === 0 ? '' : `TTL ${TTL_EXPRESSIONS[level](days)}`);

/**
 * The ZooKeeper path of a replicated table: `/clickhouse/tables/{shard}/<db>.<table>`, `{shard}` being each server's
 * macro. The database is part of it, so tables of one name in two databases do not share a path.
 */
export function zookeeperPath(qualifiedTable: string): string {
  if (!checkTableName(qualifiedTable).includes('.')) throw new ApilogError(`zookeeperPath needs a qualified table name (db.table), got ${qualifiedTable}`);
  return `/clickhouse/tables/{shard}/${qualifiedTable}`;
}

/** Fills the placeholders of one statement. `qualified`: the table with its database, for `{zookeeper_path}`. */
export function renderStatement(statement: string, table: string, retention: Retention, qualified?: string): string {
  checkRetention(retention);
  if (statement.includes('{zookeeper_path}') && qualified === undefined) throw new ApilogError('a replicated statement needs the qualified table name');
  const rendered = statement
    .replaceAll('{zookeeper_path}', qualified === undefined ? '{zookeeper_path}' : zookeeperPath(qualified))
    .replaceAll('{table}', checkTableName(table))
    .replaceAll('{raw_ttl}', ttlClause('raw', retention.rawDays))
    .replaceAll('{minute_ttl}', ttlClause('minute', retention.minuteDays))
    .replaceAll('{hour_ttl}', ttlClause('hour', retention.hourDays));
  const left = /\{(table|zookeeper_path|[a-z_]+_ttl)\}/.exec(rendered);
  if (left) throw new ApilogError(`migration statement has an unknown placeholder ${left[0]}`);
  return rendered;
}

export interface MigrateOptions {
  /** The raw table; the rollups are named after it. */
  readonly table: string;
  readonly dialect: Dialect;
  /** Apply migrations up to this version only. @default the last */
  readonly to?: number;
  /**
   * Retention for tables created now; values given here are also applied to existing tables (ALTER … MODIFY TTL)
   * when they differ. Values not given keep what the tables have. @default DEFAULT_RETENTION for new tables
   */
  readonly retention?: Partial<Retention>;
}

export interface AppliedMigration {
  readonly version: number;
  readonly name: string;
  readonly checksum: string;
}

export interface MigrateResult {
  /** Versions applied by this call. */
  readonly applied: readonly Migration[];
  /** Versions that were already recorded. */
  readonly skipped: readonly Migration[];
  /** ALTER … MODIFY TTL statements run because the retention changed. */
  readonly retentionChanges: readonly string[];
}

function definedOnly(retention: Partial<Retention>): Partial<Retention> {
  return Object.fromEntries(Object.entries(retention).filter(([, v]) => v !== undefined)) as Partial<Retention>;
}

/** The migrations table sits in the raw table's database. */
function migrationsTableFor(table: string): string {
  const dot = checkTableName(table).indexOf('.');
  return dot < 0 ? MIGRATIONS_TABLE : `${table.slice(0, dot)}.${MIGRATIONS_TABLE}`;
}

async function ensureMigrationsTable(sink: Sink, table: string): Promise<string> {
  const name = migrationsTableFor(table);
  if (isReplicas(sink)) {
    // On every replica, replicated: a migration is recorded once and every replica reads the record.
    const qualified = await qualify(sink, name);
    const sql = `CREATE TABLE IF NOT EXISTS ${name} (target String, version UInt32, name String, checksum String, applied_at DateTime DEFAULT now())
     ENGINE = ReplicatedMergeTree('${zookeeperPath(qualified)}', '{replica}') ORDER BY (target, version)`;
    await Promise.all(sink.replicas.map((replica) => replica.command(sql)));
    return name;
  }
  await sink.command(
    `CREATE TABLE IF NOT EXISTS ${name} (target String, version UInt32, name String, checksum String, applied_at DateTime DEFAULT now())
     ENGINE = MergeTree ORDER BY (target, version)`,
  );
  return name;
}

/** `db.table` as it is, `table` with the server's current database. */
async function qualify(sink: Sink, table: string): Promise<string> {
  if (checkTableName(table).includes('.')) return table;
  const [row] = await sink.query<{ db: string }>('SELECT currentDatabase() AS db');
  return `${row?.db ?? 'default'}.${table}`;
}

/** Migrations recorded for `table`, by version (a migration recorded twice by two concurrent runs counts once). */
export async function appliedMigrations(sink: Sink, table: string): Promise<AppliedMigration[]> {
  const name = await ensureMigrationsTable(sink, table);
  const rows = await sink.query<{ version: number | string; name: string; checksum: string }>(
    `SELECT version, any(name) AS name, any(checksum) AS checksum FROM ${name} WHERE target = {target:String} GROUP BY version ORDER BY version`,
    { target: table },
  );
  return rows.map((r) => ({ version: Number(r.version), name: r.name, checksum: r.checksum }));
}

/** Applies the migrations of `options.dialect` that `table` has not had yet, in order. Safe to run again. */
export async function migrate(sink: Sink, options: MigrateOptions): Promise<MigrateResult> {
  const table = checkTableName(options.table);
  const replicated = options.dialect === 'legacy-replicated';
  if (replicated !== isReplicas(sink)) {
    throw new ConfigError(
      replicated
        ? `the ${options.dialect} series runs on every replica of a shard: give each replica's URL (comma-separated)`
        : `several ClickHouse servers are replicas: the ${options.dialect} series is for one server`,
    );
  }
  const qualified = replicated ? await qualify(sink, table) : undefined;
  const migrations = loadMigrations(options.dialect);
  const to = options.to ?? migrations.length;
  if (!Number.isInteger(to) || to < 0 || to > migrations.length) {
    throw new ConfigError(`--to ${to}: the ${options.dialect} series has versions 1 to ${migrations.length}`);
  }
  if (options.retention) checkRetention(options.retention);
  const retention: Retention = { ...DEFAULT_RETENTION, ...definedOnly(options.retention ?? {}) };
  const done = new Map((await appliedMigrations(sink, table)).map((m) => [m.version, m])); // creates the records table if need be
  const recordsTable = migrationsTableFor(table);
  const applied: Migration[] = [];
  const skipped: Migration[] = [];
  for (const migration of migrations.slice(0, to)) {
    const recorded = done.get(migration.version);
    if (recorded) {
      if (recorded.checksum !== migration.checksum) {
        throw new ApilogError(
          `migration ${migration.file} was applied to ${table} with checksum ${recorded.checksum.slice(0, 12)}… but the file now ` +
            `has ${migration.checksum.slice(0, 12)}…: applied migrations must not change; add a new one`,
        );
      }
      skipped.push(migration);
      continue;
    }
    for (const statement of migration.statements) {
      const sql = renderStatement(statement, table, retention, qualified);
      if (isReplicas(sink)) {
        await applyOnEveryReplica(sink, sql, migration.file);
        continue;
      }
      if (await columnAlreadyAdded(sink, sql)) continue;
      await sink.command(sql);
    }
    const record = { target: table, version: migration.version, name: migration.name, checksum: migration.checksum };
    await sink.insertJsonEachRow(recordsTable, Buffer.from(`${JSON.stringify(record)}\n`));
    applied.push(migration);
  }
  const retentionChanges = options.dialect === 'current' && options.retention ? await applyRetention(sink, table, options.retention) : [];
  return { applied, skipped, retentionChanges };
}

/**
 * Runs a statement of the replicated series on every replica (CREATE … IF NOT EXISTS: idempotent). An ALTER of a
 * replicated table is replicated by ClickHouse itself, from one replica to the others as they catch up: a runner
 * would have to send it once and wait for every replica to apply it before anything inserts the new columns. No
 * migration of the series needs that yet, so it is refused rather than half done.
 */
async function applyOnEveryReplica(replicas: Replicas, sql: string, file: string): Promise<void> {
  if (/^\s*ALTER\s/i.test(sql)) throw new ApilogError(`${file}: ALTER statements are not supported in the replicated series yet`);
  await Promise.all(replicas.replicas.map((replica) => replica.command(sql)));
}

/**
 * True for `ALTER TABLE t ADD COLUMN c …` (one column, no IF NOT EXISTS: the legacy server lacks it) when `t`
 * already has `c`, so re-running an interrupted legacy migration does not fail on the columns it added.
 */
async function columnAlreadyAdded(sink: Sink, sql: string): Promise<boolean> {
  const m = /^ALTER\s+TABLE\s+(\S+)\s+ADD\s+COLUMN\s+(?!IF\s)([A-Za-z_][A-Za-z0-9_]*)\s[^,]*$/i.exec(sql);
  if (!m) return false;
  const columns = await sink.describe(m[1]!);
  return columns.some((c) => c.name === m[2]);
}

/** The tables of the current series whose retention `retention` names, with their TTL level. */
function ttlTargets(table: string, retention: Partial<Retention>): { table: string; days: number; level: keyof typeof TTL_EXPRESSIONS }[] {
  const out: { table: string; days: number; level: keyof typeof TTL_EXPRESSIONS }[] = [];
  if (retention.rawDays !== undefined) out.push({ table, days: retention.rawDays, level: 'raw' });
  if (retention.minuteDays !== undefined) out.push({ table: `${table}_1m`, days: retention.minuteDays, level: 'minute' });
  if (retention.hourDays !== undefined) {
    for (const t of [`${table}_1h`, `${table}_clients_1h`]) out.push({ table: t, days: retention.hourDays, level: 'hour' });
  }
  return out;
}

/** Retention in days of an existing table, read from its engine definition; undefined if it has no TTL or does not exist. */
export async function tableRetentionDays(sink: Sink, table: string): Promise<number | undefined> {
  const dot = table.indexOf('.');
  const rows = await sink.query<{ engine_full: string }>(
    dot < 0
      ? 'SELECT engine_full FROM system.tables WHERE database = currentDatabase() AND name = {name:String}'
      : 'SELECT engine_full FROM system.tables WHERE database = {db:String} AND name = {name:String}',
    dot < 0 ? { name: table } : { db: table.slice(0, dot), name: table.slice(dot + 1) },
  );
  const m = /TTL .*?toIntervalDay\((\d+)\)/.exec(rows[0]?.engine_full ?? '');
  return m ? Number(m[1]) : undefined;
}

/** Changes the TTL of the tables whose retention differs from `retention` (only the levels it names). */
async function applyRetention(sink: Sink, table: string, retention: Partial<Retention>): Promise<string[]> {
  const changes: string[] = [];
  for (const target of ttlTargets(table, retention)) {
    const current = (await tableRetentionDays(sink, target.table)) ?? 0;
    if (current === target.days) continue;
    const statement =
      target.days === 0
        ? `ALTER TABLE ${target.table} REMOVE TTL`
        : `ALTER TABLE ${target.table} MODIFY TTL ${TTL_EXPRESSIONS[target.level](target.days)}`;
    await sink.command(statement);
    changes.push(statement);
  }
  return changes;
}
