/**
 * `apilog query "<SQL>"`: runs one query against the configured ClickHouse (server or embedded) and prints a table.
 * `apilog query --named <name>` runs a question from the analysts' page (docs/queries.sql), on the rollups by
 * default or on raw rows with --raw, over --window ending now (or --from/--to).
 */
import { InvalidArgumentError, type Command } from 'commander';
import { DEFAULT_TABLE } from '../clickhouse/apiCallsTable.ts';
import type { QueryParams, Sink } from '../clickhouse/sink.ts';
import { ConfigError } from '../runtime/errors.ts';
import { dateTimeParam, forTable, loadAnalystQueries, parseWindow, windowParams } from '../schemas/analystQueries.ts';
import { resolveEndpoints, sinkFor, withEndpoints, type EndpointFlags } from './endpoints.ts';
import { preflight } from './preflight.ts';

interface QueryFlags extends EndpointFlags {
  named?: string;
  raw?: boolean;
  window?: string;
  from?: string;
  to?: string;
  param: string[];
  table: string;
  format: 'table' | 'json';
}

const collectParam = (value: string, previous: string[]) => {
  if (!/^[A-Za-z_][A-Za-z0-9_]*=/.test(value)) throw new InvalidArgumentError('expected name=value');
  return [...previous, value];
};

const timeArg = (value: string): number => {
  const ms = Date.parse(/Z$|[+-]\d\d:?\d\d$/.test(value) ? value : `${value.replace(' ', 'T')}Z`);
  if (Number.isNaN(ms)) throw new ConfigError(`"${value}" is not a time (expected e.g. 2026-11-28T10:00:00Z, UTC if no zone)`);
  return ms;
};

/** Right-aligns numbers, left-aligns text; maps and arrays as compact JSON. */
export function formatTable(rows: readonly Record<string, unknown>[]): string {
  if (rows.length === 0) return '(no rows)\n';
  const columns = Object.keys(rows[0]!);
  const cell = (v: unknown) => (v === null || v === undefined ? 'NULL' : typeof v === 'object' ? JSON.stringify(v) : String(v));
  const numeric = columns.map((c) => rows.every((r) => r[c] === null || typeof r[c] === 'number' || /^-?\d+(\.\d+)?$/.test(String(r[c]))));
  const widths = columns.map((c) => Math.max(c.length, ...rows.map((r) => cell(r[c]).length)));
  const line = (values: string[]) =>
    values.map((v, i) => (numeric[i] ? v.padStart(widths[i]!) : v.padEnd(widths[i]!))).join('  ').trimEnd();
  const out = [line(columns), line(widths.map((w) => '-'.repeat(w))), ...rows.map((r) => line(columns.map((c) => cell(r[c]))))];
  return `${out.join('\n')}\n${rows.length} row${rows.length === 1 ? '' : 's'}\n`;
}

export async function runQuery(sink: Sink, sql: string, params: QueryParams | undefined, format: 'table' | 'json'): Promise<number> {
  const rows = await sink.query<Record<string, unknown>>(sql, params);
  process.stdout.write(format === 'json' ? rows.map((r) => `${JSON.stringify(r)}\n`).join('') : formatTable(rows));
  return rows.length;
}

export function registerQuery(program: Command): void {
  withEndpoints(
    program
      .command('query')
      .description("run a query against ClickHouse and print a table; --named runs a question from the analysts' page (docs/queries.sql)")
      .argument('[sql]', 'the SQL to run; {name:Type} placeholders are bound from --param name=value'),
  )
    .option('--named <name>', "a question from docs/queries.sql (run with --list to see them)")
    .option('--list', "list the analysts' questions and exit")
    .option('--raw', 'with --named: read raw rows instead of the rollups')
    .option('--window <length>', 'with --named: window ending now, e.g. 15m, 2h, 7d (default: the question\'s own)')
    .option('--from <time>', 'with --named: window start, UTC (e.g. 2026-11-28T10:00:00Z)')
    .option('--to <time>', 'with --named: window end, UTC (default: the end of the current minute, so the minute in progress counts)')
    .option('--param <name=value>', 'bind a {name:Type} query parameter (repeatable)', collectParam, [])
    .option('--table <name>', 'raw table the analysts\' queries read (rollups are named after it)', DEFAULT_TABLE)
    .option('--format <format>', 'table or json (one JSON object per row)', 'table')
    .action(async (sql: string | undefined, flags: QueryFlags & { list?: boolean }) => {
      if (flags.format !== 'table' && flags.format !== 'json') throw new ConfigError(`--format ${String(flags.format)}: expected table or json`);
      if (flags.list) {
        for (const q of loadAnalystQueries()) process.stdout.write(`${q.name.padEnd(16)} ${q.question}\n`);
        return;
      }
      if ((sql === undefined) === (flags.named === undefined)) throw new ConfigError('give either a SQL text or --named <name> (not both)');
      const params: QueryParams = {};
      for (const p of flags.param) {
        const eq = p.indexOf('=');
        params[p.slice(0, eq)] = p.slice(eq + 1);
      }
      let text = sql ?? '';
      if (flags.named !== undefined) {
        const query = loadAnalystQueries().find((q) => q.name === flags.named);
        if (!query) throw new ConfigError(`--named ${flags.named}: no such question; --list shows them`);
        text = forTable(query.sql[flags.raw ? 'raw' : 'rollup'], flags.table);
        const to = flags.to !== undefined ? timeArg(flags.to) : Date.now();
        if (flags.from !== undefined) Object.assign(params, { from: dateTimeParam(timeArg(flags.from)), to: dateTimeParam(to) });
        else Object.assign(params, windowParams(flags.window !== undefined ? parseWindow(flags.window) : query.windowMs, to));
        process.stderr.write(`${query.question} [${params['from']} .. ${params['to']}) from ${flags.raw ? 'raw rows' : 'rollups'}\n`);
      }
      const endpoints = resolveEndpoints(flags);
      const sink = await sinkFor(endpoints, flags);
      try {
        await preflight({ sink });
        await runQuery(sink, text, Object.keys(params).length > 0 ? params : undefined, flags.format);
      } finally {
        await sink.close();
      }
    });
}
