/**
 * Brings the API-call table (and, on current ClickHouse, its rollups) up to date by applying the migrations
 * in schemas/clickhouse/migrations/ for the engine the sink speaks to: the current series on ClickHouse 20.x
 * and later (the embedded engine), the legacy series on Debian's 18.16 server.
 */
import { ConfigError } from '../runtime/errors.ts';
import { migrate, type Dialect, type MigrateResult, type Retention } from './migrations.ts';
import { ClickHouseReplicas } from './replicas.ts';
import type { Sink } from './sink.ts';

export const DEFAULT_TABLE = 'api_calls';

/** True for servers that lack DateTime64 and Map (before 20.x). */
export async function isLegacyServer(sink: Sink): Promise<boolean> {
  const major = Number.parseInt((await sink.version()).split('.')[0] ?? '0', 10);
  return major < 20;
}

/**
 * Which migration series a sink takes: the replicated legacy series on the replicas of a shard of 18.16 servers
 * (several URLs). ConfigError for replicas of current servers: there is no replicated current series yet.
 */
export async function dialectOf(sink: Sink): Promise<Dialect> {
  const legacy = await isLegacyServer(sink);
  if (!(sink instanceof ClickHouseReplicas)) return legacy ? 'legacy' : 'current';
  if (legacy) return 'legacy-replicated';
  throw new ConfigError(
    `ClickHouse ${await sink.version()} replicas at ${sink.address}: apilog has migrations for replicas of 18.x servers only ` +
      '(no current server runs where they are tested); create the Replicated tables by hand and run `apilog consume` without --create-table',
  );
}

export interface EnsureTableOptions {
  /** Apply migrations up to this version only (tests of schema evolution). @default all */
  readonly to?: number;
  /** Retention to set; see MigrateOptions.retention. */
  readonly retention?: Partial<Retention>;
}

/** Applies the pending migrations for `table`; safe to call on every start. */
export async function ensureApiCallsTable(sink: Sink, table = DEFAULT_TABLE, options: EnsureTableOptions = {}): Promise<MigrateResult> {
  return migrate(sink, { table, dialect: await dialectOf(sink), ...options });
}
