/**
 * Why the raw table looks the way it does (schemas/clickhouse/migrations/0001_api_calls.sql): the same generated
 * events loaded into variants of that table in the embedded engine, with bytes per event on disk and the time of
 * three typical reads, side by side with the chosen layout.
 *
 *   npx tsx bench/tableLayout.ts [--events 2000000]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { ChdbSink } from '../clickhouse/chdbSink.ts';
import { DEFAULT_RETENTION, loadMigrations, renderStatement } from '../clickhouse/migrations.ts';
import { loadGeneratedEvents } from './generateEvents.ts';
import { bestOf, bytesOnDisk } from './measure.ts';

const { values } = parseArgs({ options: { events: { type: 'string', default: '2000000' } } });
const events = Number(values.events);
if (!Number.isInteger(events) || events <= 0) throw new Error('--events must be a positive integer');

const chosen = renderStatement(loadMigrations('current')[0]!.statements[0]!, 'layout_variant', DEFAULT_RETENTION);
const variants: { name: string; note: string; ddl: string }[] = [
  { name: 'chosen', note: 'ORDER BY (api, ts), codecs, projection by_offset', ddl: chosen },
  { name: 'lz4', note: 'same, default LZ4 instead of the codecs', ddl: chosen.replace(/\s+CODEC\((?:[^()]|\([^()]*\))*\)/g, '') },
  { name: 'ts_first', note: 'ORDER BY ts', ddl: chosen.replace('ORDER BY (api, ts)', 'ORDER BY ts') },
  { name: 'hour_api', note: 'ORDER BY (toStartOfHour(ts), api, ts)', ddl: chosen.replace('ORDER BY (api, ts)', 'ORDER BY (toStartOfHour(ts), api, ts)') },
  { name: 'no_projection', note: 'chosen without the projection', ddl: chosen.replace(/,\s*PROJECTION by_offset \([^\n]*\)\)/, '') },
];

const startMs = Date.UTC(2026, 0, 1);
const spanMs = 24 * 3600_000;
const at = (ms: number) => new Date(ms).toISOString().slice(0, 19).replace('T', ' ');
const params = {
  from: at(startMs + spanMs - 900_000),
  to: at(startMs + spanMs),
  api: 'orders.get',
  topic: 'api-calls',
  partition: 1,
  offset: Math.floor(events * 0.9),
};
const reads = {
  // Which APIs fail in the last 15 minutes of the day: a time range across every API.
  last_15_min: (t: string) =>
    `SELECT api, count() AS n, countIf(status >= 500 OR error_class IS NOT NULL) AS errors FROM ${t}
     WHERE ts >= {from:DateTime64(3, 'UTC')} AND ts < {to:DateTime64(3, 'UTC')} GROUP BY api ORDER BY errors DESC`,
  // One API's p99 minute by minute over the day: one API, all times.
  one_api_day: (t: string) =>
    `SELECT toStartOfMinute(ts) AS m, quantileExact(0.99)(latency_us) FROM ${t} WHERE api = {api:String} GROUP BY m ORDER BY m`,
  // The consumer's exactly-once lookup: the last offset of one partition.
  offset_lookup: (t: string) =>
    `SELECT max(_offset) FROM ${t} WHERE _topic = {topic:String} AND _partition = {partition:UInt32} AND _offset >= {offset:UInt64}`,
};

const dir = mkdtempSync(join(tmpdir(), 'apilog-layout-'));
const sink = new ChdbSink(dir);
try {
  process.stdout.write(`${events} generated events per variant (embedded ClickHouse ${await sink.version()})\n`);
  process.stdout.write(`${'variant'.padEnd(14)} ${'load s'.padStart(7)} ${'B/event'.padStart(8)} ${Object.keys(reads).map((r) => `${r} ms`.padStart(17)).join(' ')}  layout\n`);
  for (const v of variants) {
    const table = `layout_${v.name}`;
    await sink.command(v.ddl.replace(/\blayout_variant\b/, table));
    const t0 = performance.now();
    await loadGeneratedEvents(sink, table, { count: events, startMs, spanMs });
    await sink.command(`OPTIMIZE TABLE ${table} FINAL`);
    const loadS = (performance.now() - t0) / 1000;
    const perEvent = (await bytesOnDisk(sink, table)) / events;
    const times: string[] = [];
    for (const read of Object.values(reads)) times.push((await bestOf(3, () => sink.query(read(table), params))).toFixed(1).padStart(17));
    process.stdout.write(`${v.name.padEnd(14)} ${loadS.toFixed(1).padStart(7)} ${perEvent.toFixed(1).padStart(8)} ${times.join(' ')}  ${v.note}\n`);
    await sink.command(`DROP TABLE ${table}`);
  }
} finally {
  await sink.close();
  rmSync(dir, { recursive: true, force: true });
}
