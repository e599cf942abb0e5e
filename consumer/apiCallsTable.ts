/** Creates the API-call table a sink writes to, in the dialect its ClickHouse version speaks. */
import { readFileSync } from 'node:fs';
import { checkTableName, type Sink } from './sink.ts';

const CURRENT = readFileSync(new URL('../schemas/clickhouse/api_calls.sql', import.meta.url), 'utf8');
const LEGACY = readFileSync(new URL('../schemas/clickhouse/api_calls.legacy.sql', import.meta.url), 'utf8');

export const DEFAULT_TABLE = 'api_calls';

/** True for servers that lack DateTime64 and Map (before 20.x). */
export async function isLegacyServer(sink: Sink): Promise<boolean> {
  const major = Number.parseInt((await sink.version()).split('.')[0] ?? '0', 10);
  return major < 20;
}

export async function ensureApiCallsTable(sink: Sink, table = DEFAULT_TABLE): Promise<void> {
  const ddl = (await isLegacyServer(sink)) ? LEGACY : CURRENT;
  const sql = ddl
    .split('\n')
    .filter((line) => !line.trimStart().startsWith('--'))
    .join('\n')
    .replaceAll('{table}', checkTableName(table));
  await sink.command(sql);
}
