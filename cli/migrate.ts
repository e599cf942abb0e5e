/**
 * `apilog migrate`: applies the pending ClickHouse migrations (schemas/clickhouse/migrations/) to the configured
 * ClickHouse, in order, recording each in apilog_migrations; running it again does nothing. The embedded engine
 * and servers 20.x+ take the current series, Debian's 18.16 the legacy one. `--status` only reports.
 */
import type { Command } from 'commander';
import { DEFAULT_TABLE, dialectOf } from '../clickhouse/apiCallsTable.ts';
import { ConfigError } from '../runtime/errors.ts';
import { appliedMigrations, loadMigrations, migrate, tableRetentionDays, type Retention } from '../clickhouse/migrations.ts';
import { positiveInt } from './arguments.ts';
import { resolveEndpoints, sinkFor, withEndpoints, type EndpointFlags } from './endpoints.ts';
import { preflight } from './preflight.ts';

interface MigrateFlags extends EndpointFlags {
  table: string;
  to?: number;
  status?: boolean;
  rawTtlDays?: number;
  minuteTtlDays?: number;
  hourTtlDays?: number;
}

const days = (value: string): number => {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new ConfigError(`"${value}" is not a whole number of days (0 keeps data forever)`);
  return n;
};

const say = (line: string) => process.stdout.write(`${line}\n`);

export function registerMigrate(program: Command): void {
  withEndpoints(program.command('migrate').description('apply pending ClickHouse migrations (tables, rollups, new columns); safe to run again'))
    .option('--table <name>', 'raw API-call table (the rollups are named after it)', DEFAULT_TABLE)
    .option('--to <version>', 'apply migrations up to this version only', positiveInt)
    .option('--status', 'list applied and pending migrations, change nothing')
    .option('--raw-ttl-days <days>', 'keep raw rows this many days (0: forever; default for new tables: forever)', days)
    .option('--minute-ttl-days <days>', 'keep per-minute rollups this many days (0: forever)', days)
    .option('--hour-ttl-days <days>', 'keep hourly rollups this many days (0: forever)', days)
    .action(async (flags: MigrateFlags) => {
      const endpoints = resolveEndpoints(flags);
      const sink = await sinkFor(endpoints, flags);
      try {
        await preflight({ sink });
        const dialect = await dialectOf(sink);
        const retention: Partial<Retention> = {
          ...(flags.rawTtlDays !== undefined ? { rawDays: flags.rawTtlDays } : {}),
          ...(flags.minuteTtlDays !== undefined ? { minuteDays: flags.minuteTtlDays } : {}),
          ...(flags.hourTtlDays !== undefined ? { hourDays: flags.hourTtlDays } : {}),
        };
        if (dialect !== 'current' && Object.keys(retention).length > 0) {
          throw new ConfigError(`ClickHouse ${await sink.version()} has no TTL: the --*-ttl-days options need 20.x or later`);
        }
        say(`ClickHouse ${await sink.version()} at ${sink.address}: ${dialect} migration series, table ${flags.table}`);
        if (flags.status) {
          const applied = new Map((await appliedMigrations(sink, flags.table)).map((m) => [m.version, m]));
          for (const m of loadMigrations(dialect)) {
            const state = !applied.has(m.version) ? 'pending' : applied.get(m.version)!.checksum === m.checksum ? 'applied' : 'CHANGED since applied';
            say(`  ${m.file.padEnd(28)} ${state}`);
          }
          if (dialect === 'current') {
            const raw = await tableRetentionDays(sink, flags.table);
            say(`  retention of raw rows: ${raw === undefined ? 'forever' : `${raw} days`}`);
          }
          return;
        }
        const result = await migrate(sink, { table: flags.table, dialect, ...(flags.to !== undefined ? { to: flags.to } : {}), retention });
        for (const m of result.skipped) say(`  ${m.file.padEnd(28)} already applied`);
        for (const m of result.applied) say(`  ${m.file.padEnd(28)} applied`);
        for (const s of result.retentionChanges) say(`  ${s}`);
        say(JSON.stringify({ applied: result.applied.map((m) => m.version), skipped: result.skipped.map((m) => m.version) }));
      } finally {
        await sink.close();
      }
    });
}
