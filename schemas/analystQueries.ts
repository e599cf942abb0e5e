/**
 * The analysts' page, docs/queries.sql, as data: each question by name with its rollup and raw versions, its
 * default window and the parameters it binds. `apilog query --named`, the bench and the tests read it from here,
 * so the page people read is the page that is tested.
 */
import { readFileSync } from 'node:fs';
import { ApilogError, ConfigError } from '../runtime/errors.ts';
import { checkTableName } from '../clickhouse/sink.ts';

export type QuerySource = 'rollup' | 'raw';

export interface AnalystQuery {
  readonly name: string;
  readonly question: string;
  /** Default window length in milliseconds (from the `window:` header). */
  readonly windowMs: number;
  readonly sql: Readonly<Record<QuerySource, string>>;
}

export const QUERIES_FILE = new URL('../docs/queries.sql', import.meta.url);

const UNITS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** '15m', '2h', '7d', '30s' → milliseconds. */
export function parseWindow(text: string): number {
  const m = /^(\d+)([smhd])$/.exec(text.trim());
  if (!m || Number(m[1]) === 0) throw new ConfigError(`window "${text}": expected a positive number followed by s, m, h or d, e.g. 15m`);
  return Number(m[1]) * UNITS[m[2]!]!;
}

/** Parses the page: blocks that start with `-- name:`, headers `-- key: value`, SQL up to a `;` at a line end. */
export function parseAnalystQueries(text: string): AnalystQuery[] {
  const byName = new Map<string, { question?: string; windowMs?: number; sql: Partial<Record<QuerySource, string>> }>();
  const blocks = text.split(/^(?=-- name:)/m).filter((b) => b.startsWith('-- name:'));
  for (const block of blocks) {
    const headers = new Map<string, string>();
    const sqlLines: string[] = [];
    for (const line of block.split('\n')) {
      const header = /^-- ([a-z]+): (.*)$/.exec(line);
      if (header && sqlLines.length === 0) headers.set(header[1]!, header[2]!.trim());
      else if (!line.startsWith('--')) sqlLines.push(line);
    }
    const name = headers.get('name')!;
    const source = headers.get('source');
    if (source !== 'rollup' && source !== 'raw') throw new ApilogError(`query ${name} in docs/queries.sql needs "-- source: rollup" or "-- source: raw"`);
    const sql = sqlLines.join('\n').trim().replace(/;\s*$/, '');
    if (sql.length === 0 || sql.includes(';')) throw new ApilogError(`query ${name} (${source}) must be exactly one statement ending with ;`);
    const entry = byName.get(name) ?? { sql: {} };
    if (entry.sql[source]) throw new ApilogError(`query ${name} has two ${source} versions`);
    entry.sql[source] = sql;
    const question = headers.get('question');
    if (question) entry.question = question;
    const window = headers.get('window');
    if (window) entry.windowMs = parseWindow(window);
    byName.set(name, entry);
  }
  return [...byName].map(([name, e]) => {
    if (!e.sql.rollup || !e.sql.raw || !e.question || !e.windowMs) {
      throw new ApilogError(`query ${name} in docs/queries.sql needs a question, a window, and both a rollup and a raw version`);
    }
    return { name, question: e.question, windowMs: e.windowMs, sql: { rollup: e.sql.rollup, raw: e.sql.raw } };
  });
}

export function loadAnalystQueries(): AnalystQuery[] {
  return parseAnalystQueries(readFileSync(QUERIES_FILE, 'utf8'));
}

/** The page names tables after `api_calls`; this renames the raw table and its rollups after `table`. */
export function forTable(sql: string, table: string): string {
  const name = checkTableName(table);
  return sql.replace(/\bapi_calls(_1m|_1h|_clients_1h)?\b/g, (_, suffix: string | undefined) => `${name}${suffix ?? ''}`);
}

/** ClickHouse DateTime text (UTC, whole seconds) for a query parameter. */
export function dateTimeParam(ms: number): string {
  return new Date(Math.floor(ms / 1000) * 1000).toISOString().slice(0, 19).replace('T', ' ');
}

/**
 * The window [to - windowMs, to), with `to` moved to the end of the minute that contains `toMs`: rollup and raw
 * windows agree, and the minute in progress counts ("failing right now" must see this minute's errors).
 */
export function windowParams(windowMs: number, toMs: number): { from: string; to: string } {
  const to = Math.floor(toMs / 60_000) * 60_000 + 60_000;
  return { from: dateTimeParam(to - windowMs), to: dateTimeParam(to) };
}
